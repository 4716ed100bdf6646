"""The Triton kernels against the torch path, on the CPU under ``TRITON_INTERPRET=1``.

The torch path is itself checked against the float64 oracle (test_torch_vs_oracle.py), so the
kernels are held to it (docs/semantics.md, tolerances): float64 to rounding (1e-10), float32
at 1e-5, fp16/bf16 at 1e-2 against float64 on the same rounded input. Every comparison also
checks the gradient with a random (non-unit) upstream gradient. CUDA-only behaviour is in
test_triton_gpu.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import seglosses.torch as sl
from _helpers import assert_compiled_like_eager, assert_grad_close, to_torch, torch_kwargs
from cases import CASES, Case, make_case
from seglosses import triton as kernels

pytestmark = pytest.mark.skipif(not (kernels.available() and kernels.interpreting()),
                                reason="needs triton and TRITON_INTERPRET=1 (set by conftest)")

LOGIT_CASES = [c for c in CASES if not c.probabilities]

# the three ways pixel-contiguous logits reach the softmax kernels: the class walk reading
# them from memory, the class walk holding a pixel's classes in registers, [pixels, classes]
# tiles; each budget raised so that every class count here takes its way
KERNEL_MODES = {"class_loop": (0, 0), "held": (0, 1024), "pixel_tiles": (256, 0)}


@pytest.fixture(params=list(KERNEL_MODES))
def kernel_mode(request, monkeypatch):
    from seglosses.triton import _common

    tile_values, held_values = KERNEL_MODES[request.param]
    monkeypatch.setattr(_common, "PIXEL_TILE_VALUES", tile_values)
    monkeypatch.setattr(_common, "HELD_VALUES", held_values)
    monkeypatch.setattr(_common, "HELD_STATS_VALUES", held_values)
    return request.param


def _run(loss_name, x, target, kwargs, impl, dtype, seed=3):
    """Value and gradient of one call, with a random upstream gradient of the output's shape."""
    input = x.clone().to(dtype).requires_grad_()
    loss = getattr(sl, loss_name)(input, target, impl=impl, **kwargs)
    upstream = torch.from_numpy(np.random.default_rng(seed).normal(size=tuple(loss.shape)))
    (loss * upstream.to(loss.dtype)).sum().backward()
    return loss.detach(), input.grad


def _both(loss_name, x, target, kwargs, dtype=torch.float64, reference_dtype=None):
    got = _run(loss_name, x, target, kwargs, "triton", dtype)
    expected = _run(loss_name, x, target, kwargs, "torch", reference_dtype or dtype)
    return got, expected


@pytest.mark.parametrize("case", LOGIT_CASES, ids=lambda c: c.id)
def test_case_table_float64(case):
    x, target, kwargs = make_case(case)
    (loss, grad), (ref, ref_grad) = _both(case.loss, to_torch(x), to_torch(target),
                                          torch_kwargs(kwargs))
    assert loss.shape == ref.shape and loss.dtype == ref.dtype
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)


@pytest.mark.parametrize("walk_odd_rows", [False, True])
@pytest.mark.parametrize("case", [c for c in LOGIT_CASES if len(c.shape) >= 3],
                         ids=lambda c: c.id)
def test_case_table_class_contiguous(case, walk_odd_rows, monkeypatch):
    """The same table with the class axis innermost in memory (channels_last): the softmax
    losses then take the row-tile kernel, or with ``WALK_ODD_ROWS`` and a class count
    that is not a power of two, the class walk over strided pixels (``STRIDED``)."""
    from seglosses.triton import _common

    monkeypatch.setattr(_common, "WALK_ODD_ROWS", walk_odd_rows)
    x, target, kwargs = make_case(case)
    class_dim = kwargs.get("class_dim", 1)
    x = to_torch(x).movedim(class_dim, -1).contiguous().movedim(-1, class_dim)
    assert x.shape[class_dim] == 1 or x.stride(class_dim) == 1
    (loss, grad), (ref, ref_grad) = _both(case.loss, x, to_torch(target), torch_kwargs(kwargs))
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)


@pytest.mark.parametrize("case", LOGIT_CASES, ids=lambda c: c.id)
def test_case_table_pixel_tiles(case, monkeypatch):
    """The same table with pixel-contiguous logits read in whole ``[pixels, classes]`` tiles
    (``PIXEL_TILE_VALUES`` raised so that every class count here takes them)."""
    from seglosses.triton import _common, softmax

    monkeypatch.setattr(_common, "PIXEL_TILE_VALUES", 256)
    tiles = []
    monkeypatch.setattr(softmax, "pixel_tile",
                        lambda x, axis, **k: tiles.append(_common.pixel_tile(x, axis, **k))
                        or tiles[-1])
    x, target, kwargs = make_case(case)
    (loss, grad), (ref, ref_grad) = _both(case.loss, to_torch(x), to_torch(target),
                                          torch_kwargs(kwargs))
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
    if case.shape[1] > 1:  # every softmax launch over pixel-contiguous logits took a tile
        assert all(tiles), tiles


@pytest.mark.parametrize("case", LOGIT_CASES, ids=lambda c: c.id)
def test_case_table_float32(case, kernel_mode):
    x, target, kwargs = make_case(case)
    (loss, grad), (ref, ref_grad) = _both(case.loss, to_torch(x), to_torch(target, torch.float32),
                                          torch_kwargs(kwargs, torch.float32), torch.float32,
                                          torch.float64)
    assert loss.dtype == torch.float32
    np.testing.assert_allclose(loss.double().numpy(), ref.numpy(), rtol=1e-5, atol=1e-6)
    assert_grad_close(grad.double().numpy(), ref_grad.numpy(), 1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", LOGIT_CASES[::4], ids=lambda c: c.id)
def test_case_table_half(case, dtype):
    x, target, kwargs = make_case(case)
    rounded = torch.from_numpy(x).to(dtype).double()  # the reference sees the same input
    (loss, grad), (ref, ref_grad) = _both(case.loss, rounded, to_torch(target),
                                          torch_kwargs(kwargs), dtype, torch.float64)
    if loss.ndim == 0:
        assert loss.dtype == torch.float32  # reduced in float32 (docs/semantics.md, precision)
    assert grad.dtype == dtype
    np.testing.assert_allclose(loss.double().numpy(), ref.numpy(), rtol=1e-2, atol=1e-3)
    # the interpreter converts float32 → bfloat16 by truncation (a GPU rounds to nearest), so
    # a bf16 gradient scaled after it was stored loses up to two units in the last place here
    assert_grad_close(grad.double().numpy(), ref_grad.numpy(),
                      2e-2 if dtype == torch.bfloat16 else 1e-2)


def _labels(shape, num_classes, dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_classes, shape, generator=generator).to(dtype)


# shapes chosen against the kernel's geometry: spatial size not a multiple of the block, more
# than one program per image (S > 1024), one pixel, 3-D, C = 2, 3, 19 and 300
GEOMETRY = [
    (2, 2, 33, 37),
    (1, 3, 1, 1),
    (3, 19, 7, 9),
    (1, 4, 5, 6, 7),
    (2, 300, 3, 5),
    (1, 3, 1500),
]


@pytest.mark.parametrize("shape", GEOMETRY, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("loss_name,options", [
    ("cross_entropy", {}),
    ("cross_entropy", {"reduction": "none", "label_smoothing": 0.1}),
    ("focal_loss", {"gamma": 2.0, "class_weights": "median_frequency"}),
    ("dice_loss", {"aggregate": "batch"}),
    ("dice_ce_loss", {"ignore_index": 255, "lambda_ce": 0.5}),
])
def test_kernel_geometry(shape, loss_name, options, kernel_mode):
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    target = _labels((shape[0], *shape[2:]), shape[1], torch.int64)
    if "ignore_index" in options:
        target[..., ::5] = 255
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, options)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)


@pytest.mark.parametrize("classes,block,warps,dense,expected", [
    (19, 512, 4, False, (256, 19)),   # 2-D CE, C=19: two pixels per thread
    (4, 512, 4, False, (512, 4)),     # 3-D CE, C=4: four
    (40, 512, 4, False, (128, 40)),   # the most classes held, one pixel per thread
    (41, 512, 4, False, (512, 0)),    # more: read from memory
    (10, 512, 4, True, (256, 10)),    # a one-hot target is held too
    (19, 16, 4, False, (16, 19)),     # a block of fewer pixels than lanes
])
def test_held_classes(classes, block, warps, dense, expected):
    from seglosses.triton import _common

    assert _common.held_classes(classes, block, warps, dense=dense) == expected


@pytest.mark.parametrize("classes,spatial,dense,l1,expected", [
    (19, 1 << 19, False, False, (512, 32, 1)),   # 2-D Dice+CE, C=19: one pixel per step
    (14, 1 << 22, False, False, (512, 32, 1)),   # 3-D CT, C=14
    (4, 1 << 21, False, False, (512, 128, 1)),   # 3-D, C=4: four pixels per thread
    (4, 1 << 21, True, True, (512, 128, 1)),     # with a one-hot target and L1: 96
    (5, 1 << 21, True, True, (512, 64, 1)),      # one class more: two
    (24, 1 << 19, False, False, (512, 32, 1)),   # the most classes held (96 values)
    (25, 1 << 19, False, False, None),           # more: the class loop
    (19, 1 << 19, True, False, (512, 32, 1)),    # with a one-hot target: 95
    (20, 1 << 19, True, False, None),
    (3, 20, False, False, (32, 32, 1)),          # a small image: one step
])
def test_stats_walk(classes, spatial, dense, l1, expected):
    from seglosses.triton import _common

    assert _common.stats_walk(classes, spatial, dense=dense, l1=l1) == expected


def test_held_classes_read_the_logits_once(monkeypatch):
    """With the classes held, a fused cross-entropy reads each logit once, plus the label's
    logit of each pixel for the loss; read from memory, twice (the interpreter's loads from
    the logits' storage, counted by element)."""
    from seglosses.triton import _common

    x = torch.randn(2, 5, 7, 9, dtype=torch.float64, requires_grad=True)
    target = _labels((2, 7, 9), 5, torch.uint8)
    reads = {}
    for held in (0, 40):
        monkeypatch.setattr(_common, "HELD_VALUES", held)
        reads[held] = _elements_read(x, lambda: sl.cross_entropy(x, target, impl="triton"))
    pixels = x.numel() // x.shape[1]
    assert reads == {0: 2 * x.numel(), 40: x.numel() + pixels}


def test_statistics_pass_reads_the_logits_once(monkeypatch):
    """Dice+CE: the statistics pass over held classes reads each logit once, plus the label's
    logit of each pixel for the cross-entropy (the gradient pass once more); the class loop
    reads them twice in each pass."""
    from seglosses.triton import _common

    x = torch.randn(2, 5, 7, 90, dtype=torch.float64, requires_grad=True)
    target = _labels((2, 7, 90), 5, torch.uint8)
    reads = {}
    for held in (0, 96):
        monkeypatch.setattr(_common, "HELD_VALUES", held)
        monkeypatch.setattr(_common, "HELD_STATS_VALUES", held)
        reads[held] = _elements_read(x, lambda: sl.dice_ce_loss(x, target, impl="triton"))
    pixels = x.numel() // x.shape[1]
    assert reads == {0: 4 * x.numel(), 96: 2 * x.numel() + pixels}


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 40, 40), (1, 19, 4, 8, 50)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("loss_name,options,target_kind", [
    ("dice_ce_loss", {"ignore_index": 255, "lambda_ce": 0.5}, "index"),
    ("dice_loss", {"aggregate": "batch"}, "one-hot"),
    ("tversky_loss", {"alpha": 0.3, "beta": 0.7, "gamma": 1.5}, "index"),
])
def test_statistics_pass_shifts_its_last_block(shape, shift, loss_name, options, target_kind,
                                               monkeypatch):
    """S = 1600 pixels (a multiple of 16, not of the statistics pass's 512-pixel block): with
    ``SHIFT_BLOCKS`` the last program reads pixels 1088-1599 unmasked and counts only its
    own (1536-1599). The loss and gradient match the torch path, pixel weights and ignored
    labels included, and the launch took the shift it was asked for."""
    from seglosses.triton import _common, softmax

    monkeypatch.setattr(_common, "SHIFT_BLOCKS", shift)
    seen = _spy_launches(monkeypatch, softmax, "_softmax_stats_kernel", lambda c: c["SHIFTED"])
    generator = torch.Generator().manual_seed(7)
    x = torch.randn(shape, dtype=torch.float64, generator=generator) * 3
    labels = _labels((shape[0], *shape[2:]), shape[1], torch.int64, seed=8)
    if target_kind == "one-hot":
        target = torch.nn.functional.one_hot(labels, shape[1]).movedim(-1, 1).to(torch.uint8)
    else:
        target = labels
        target.view(-1)[::7] = 255 if "ignore_index" in options else 0
    weights = torch.rand((shape[0], *shape[2:]), dtype=torch.float64, generator=generator)
    options = dict(options, pixel_weights=weights)
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, options)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
    assert seen == [shift], seen


@pytest.mark.parametrize("classes", [19, 45])  # held, and walked from memory
@pytest.mark.parametrize("options,second", [
    ({}, False),
    ({"reduction": "none", "class_weights": "median_frequency"}, False),
    ({"ignore_index": 255, "gamma": 0.5}, False),
    ({"label_smoothing": 0.1}, True),
    ({"one_hot": True}, True),
])
def test_focal_over_labels_takes_the_label_term_only(classes, options, second, monkeypatch):
    """Softmax focal loss over an index map without smoothing: only the label's term is not
    0, so the kernel takes the cross-entropy's walk with the label's (1 - p)^γ and φ per
    pixel (no second walk); smoothing or a dense target keep the per-class walk. Both
    against the torch path in float64, with a non-unit upstream gradient."""
    from seglosses.triton import softmax

    seen = _spy_launches(monkeypatch, softmax, "_softmax_kernel", lambda c: c["SECOND"])
    options = dict(options)
    one_hot = options.pop("one_hot", False)
    shape = (2, classes, 5, 7)
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9)) * 3
    target = _labels((2, 5, 7), classes, torch.int64, seed=10)
    if "ignore_index" in options:
        target[..., ::3] = 255
    if one_hot:
        target = torch.nn.functional.one_hot(target, classes).movedim(-1, 1).double()
    (loss, grad), (ref, ref_grad) = _both("focal_loss", x, target, options)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
    assert seen and set(seen) == {second}, seen


def test_float32_softplus_within_a_few_ulp():
    """The sigmoid kernel's float32 log1p(e^{-|x|}) (a degree-9 polynomial in e) and σ(x),
    per element against float64, over logits whose terms run from 0.69 down to 1e-9, for
    both targets. The bound grows with |x| as the device's exponential does: e^x is taken
    as 2^(x log2 e), whose rounded argument carries a relative error of ~|x| × 1e-7."""
    x = torch.linspace(-21.0, 21.0, 4097, dtype=torch.float32).reshape(1, 1, 1, -1)
    bound = 1.5e-7 * (2.0 + x.double().abs())
    for value in (0.0, 1.0):
        t = torch.full_like(x, value)
        got = sl.binary_cross_entropy(x, t, reduction="none", impl="triton")
        want = torch.nn.functional.binary_cross_entropy_with_logits(
            x.double(), t.double(), reduction="none")
        assert ((got.double() - want).abs() / want <= bound).all()
    x = x.clone().requires_grad_()
    sl.binary_cross_entropy(x, torch.ones_like(x), reduction="sum", impl="triton").backward()
    want = torch.sigmoid(x.detach().double()) - 1.0  # d/dx of softplus(-x)
    # σ(x) - 1 cancels in float32 once σ(x) rounds to 1 (as in torch): one ulp of 1 more
    assert ((x.grad.double() - want).abs() <= bound * want.abs() + 2.0**-23).all()


def _spy_launches(monkeypatch, module, name, record, seen=None) -> list:
    """Replace the Triton kernel ``module.name`` by one that appends ``record(constants)`` of
    each launch to ``seen`` (a new list by default, returned) and then launches it."""
    seen = [] if seen is None else seen
    kernel = getattr(module, name)

    class Spy:
        def __getitem__(self, grid):
            def launch(*args, **constants):
                seen.append(record(constants))
                return kernel[grid](*args, **constants)
            return launch

    monkeypatch.setattr(module, name, Spy())
    return seen


def _elements_read(x, call) -> int:
    """How many elements of ``x``'s storage the interpreter's loads read during ``call``."""
    from triton.runtime import interpreter

    builder = interpreter.interpreter_builder
    start = x.untyped_storage().data_ptr()
    end = start + x.untyped_storage().nbytes()
    seen = []
    original = builder.create_masked_load

    def load(ptrs, mask, *args):
        addresses = np.asarray(ptrs.data)[np.asarray(mask.data, dtype=bool)]
        seen.append(int(((addresses >= start) & (addresses < end)).sum()))
        return original(ptrs, mask, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builder, "create_masked_load", load)
        call().backward()
    return sum(seen)


@pytest.mark.parametrize("label_dtype", [torch.uint8, torch.int8, torch.int16, torch.int32,
                                         torch.int64, torch.bool])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "dice_ce_loss"])
def test_label_dtypes_need_no_conversion(label_dtype, loss_name):
    num_classes = 2 if label_dtype == torch.bool else 5
    x = torch.randn(2, num_classes, 9, 11, dtype=torch.float64)
    target = _labels((2, 9, 11), num_classes, label_dtype)
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, {})
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)


def test_labels_are_read_in_their_own_dtype():
    """uint8 labels reach the kernel as uint8 (no int64 copy of the index map)."""
    from seglosses.torch._targets import prepare_multiclass

    x = torch.randn(2, 4, 8, 8)
    target = _labels((2, 8, 8), 4, torch.uint8)
    problem = prepare_multiclass("cross_entropy", x, target, class_dim=1, from_logits=True,
                                 ignore_index=None, mask=None, pixel_weights=None,
                                 class_weights=None, beta=0.999, validate=True, native=True)
    assert problem.labels.dtype == torch.uint8
    assert problem.labels.data_ptr() == target.data_ptr()
    bf16 = prepare_multiclass("cross_entropy", x.bfloat16(), target, class_dim=1,
                              from_logits=True, ignore_index=None, mask=None,
                              pixel_weights=None, class_weights=None, beta=0.999, validate=True,
                              native=True)
    assert bf16.x.dtype == torch.bfloat16


@pytest.mark.parametrize("target_dtype", [torch.uint8, torch.bool, torch.int64,
                                          torch.float16, torch.float64])
@pytest.mark.parametrize("loss_name,options", [
    ("cross_entropy", {"mask": "bool"}),
    ("focal_loss", {"gamma": 2.0, "pixel_weights": "float"}),
    ("dice_ce_loss", {"mask": "bool", "pixel_weights": "float"}),
    ("dice_loss", {"class_weights": "inverse_frequency", "mask": "bool"}),
])
def test_one_hot_targets_in_their_own_dtype(target_dtype, loss_name, options, kernel_mode):
    """A one-hot target (uint8, bool, int64, half or double) and a lone mask or pixel-weight
    map reach the kernels without a float copy, and give the torch path's numbers."""
    from seglosses.torch._targets import prepare_multiclass

    x = torch.randn(2, 4, 9, 11, dtype=torch.float64) * 2
    onehot = torch.nn.functional.one_hot(_labels((2, 9, 11), 4, torch.int64), 4).movedim(-1, 1)
    target = onehot.to(target_dtype)
    generator = torch.Generator().manual_seed(4)
    side = {"bool": torch.rand(2, 9, 11, generator=generator) > 0.3,
            "float": torch.rand(2, 9, 11, generator=generator, dtype=torch.float64)}
    kwargs = {k: side[v] if k in ("mask", "pixel_weights") else v for k, v in options.items()}
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, kwargs)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
    problem = prepare_multiclass(loss_name, x, target, class_dim=1, from_logits=True,
                                 ignore_index=None, mask=side["bool"], pixel_weights=None,
                                 class_weights=None, beta=0.999, validate=True, native=True)
    assert problem.dense.data_ptr() == target.data_ptr()
    assert problem.v.data_ptr() == side["bool"].data_ptr()


@pytest.mark.parametrize("layout", ["channels_last", "class_dim_last", "sliced", "transposed"])
@pytest.mark.parametrize("loss_name,mode", [("dice_ce_loss", "multiclass"),
                                            ("cross_entropy", "multiclass"),
                                            ("dice_ce_loss", "multilabel"),
                                            ("binary_cross_entropy", "multilabel")])
def test_layouts(layout, loss_name, mode):
    base = torch.randn(4, 3, 6, 7, dtype=torch.float64) * 2
    if mode == "multiclass":
        target = _labels((4, 6, 7), 3, torch.int64)
    else:
        target = _labels((4, 3, 6, 7), 2, torch.uint8)
    options = {"mode": mode}
    if layout == "channels_last":
        x = base.contiguous(memory_format=torch.channels_last)
    elif layout == "class_dim_last":
        x = base.movedim(1, -1).contiguous()
        target = target if mode == "multiclass" else target.movedim(1, -1).contiguous()
        options["class_dim"] = -1
    elif layout == "sliced":
        x, target = base[::2], target[::2]
    else:
        x = base.transpose(2, 3)
        target = target.transpose(-1, -2)
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, options)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)


@pytest.mark.parametrize("classes", [3, 4, 19])
@pytest.mark.parametrize("loss_name", ["binary_cross_entropy", "dice_ce_loss"])
def test_nchw_target_beside_channels_last_logits(classes, loss_name, monkeypatch):
    """channels_last logits with an NCHW multilabel target and a mask: the sigmoid kernel
    takes whole rows of logits and reads the target across them (``ACROSS``), the mask too,
    against the torch path."""
    from seglosses.triton import sigmoid

    across = _spy_launches(monkeypatch, sigmoid, "_sigmoid_kernel", lambda c: c["ACROSS"])
    shape = (2, classes, 5, 67)
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 2
    x = x.contiguous(memory_format=torch.channels_last)
    target = _labels(shape, 2, torch.uint8)
    mask = _labels((2, 5, 67), 2, torch.bool)
    options = {"mode": "multilabel", "mask": mask}
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, options)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
    assert across and all(across), across


@pytest.mark.parametrize("loss_name,options", [
    ("cross_entropy", {"mode": "multiclass", "class_weights": "strided"}),
    ("focal_loss", {"mode": "multiclass", "alpha": "strided"}),
    ("binary_cross_entropy", {"mode": "multilabel", "pos_weight": "strided"}),
    ("focal_loss", {"mode": "multilabel", "alpha": "strided"}),
    ("dice_loss", {"mode": "multiclass", "class_weights": "strided"}),
    ("dice_ce_loss", {"mode": "multiclass", "class_weights": "strided"}),
    ("jaccard_loss", {"mode": "multilabel", "class_weights": "strided"}),
    ("dice_ce_loss", {"mode": "multilabel", "class_weights": "strided"}),
])
def test_strided_class_vectors(loss_name, options):
    """A per-class vector given as a strided view (every other entry of a longer tensor) is
    read by the kernels as C adjacent values only after a copy; each entry is distinct, so
    reading the wrong ones shows."""
    shape = (2, 3, 5, 7)
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    vector = torch.tensor([0.5, 0.9, 0.1, 0.9, 0.25, 0.9], dtype=torch.float64)[::2]
    assert not vector.is_contiguous()
    options = {k: vector if v == "strided" else v for k, v in options.items()}
    target = (_labels(shape[:1] + shape[2:], 3, torch.uint8) if options["mode"] == "multiclass"
              else _labels(shape, 2, torch.uint8))
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, options)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("target_layout", ["channels_last", "nchw"])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "dice_ce_loss"])
def test_soft_target_beside_channels_last_logits(classes, dtype, target_layout, loss_name,
                                                 monkeypatch):
    """channels_last logits with a probability target: a channels_last target is read as rows
    of C adjacent values (``DENSE_T``), an NCHW one across the rows, in the tile's own layout
    when a thread holds whole rows (``WHOLE`` and ``ACROSS``: fp32 C=4, fp64 C=2), against
    the torch path in float64."""
    from seglosses.triton import softmax

    seen = _spy_launches(monkeypatch, softmax, "_softmax_rows_kernel",
                         lambda c: {k: c[k] for k in ("DENSE_T", "WHOLE", "ACROSS")})
    shape = (2, classes, 5, 67)
    generator = torch.Generator().manual_seed(6)
    x = (torch.randn(shape, dtype=torch.float64, generator=generator) * 2).contiguous(
        memory_format=torch.channels_last)
    target = torch.softmax(torch.randn(shape, dtype=torch.float64, generator=generator), 1)
    if target_layout == "channels_last":
        target = target.contiguous(memory_format=torch.channels_last)
    options = {"soft_label": True} if loss_name == "dice_ce_loss" else {}
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, options, dtype=dtype,
                                          reference_dtype=torch.float64)
    tolerance = 1e-10 if dtype == torch.float64 else 2e-5
    np.testing.assert_allclose(loss.double().numpy(), ref.numpy(), rtol=tolerance,
                               atol=tolerance)
    assert_grad_close(grad.double().numpy(), ref_grad.numpy(), tolerance)
    whole = classes * dtype.itemsize <= 16
    expected = {"DENSE_T": target_layout == "channels_last", "WHOLE": whole,
                "ACROSS": whole and target_layout == "nchw"}
    assert seen and all(flags == expected for flags in seen), seen


@pytest.mark.parametrize("classes", [2, 4, 8])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("loss_name,options", [
    ("cross_entropy", {"mode": "multiclass"}),
    ("focal_loss", {"mode": "multiclass", "gamma": 2.0, "reduction": "none"}),
    ("dice_ce_loss", {"mode": "multiclass", "ignore_index": 255}),
    ("binary_cross_entropy", {"mode": "multilabel", "label_smoothing": 0.1}),
    ("dice_loss", {"mode": "multilabel"}),
])
def test_dense_rows(classes, batch, loss_name, options, monkeypatch):
    """channels_last logits with a power-of-two class count: rows of C adjacent logits, read
    as one span per tile (the DENSE path), against the torch path; a batch of one (whose
    image stride a view may report as anything) included."""
    from seglosses.triton import sigmoid, softmax

    taken = []
    for module in (softmax, sigmoid):
        dense_rows = module.dense_rows
        monkeypatch.setattr(module, "dense_rows", lambda *a, _f=dense_rows: taken.append(_f(*a))
                            or taken[-1])
    shape = (batch, classes, 5, 67)  # 335 pixels: several programs, the last one partial
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 2
    x = x.contiguous(memory_format=torch.channels_last)
    if options["mode"] == "multiclass":
        target = _labels((batch, 5, 67), classes, torch.uint8)
        if "ignore_index" in options:
            target[..., ::7] = 255
    else:  # a channels_last target too: its rows are read as one span as well
        target = _labels(shape, 2, torch.uint8).contiguous(memory_format=torch.channels_last)
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, options)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
    assert taken and all(taken), taken


@pytest.mark.parametrize("classes", [3, 19])
@pytest.mark.parametrize("loss_name,options,target_kind", [
    ("cross_entropy", {"mode": "multiclass", "ignore_index": 255, "label_smoothing": 0.1},
     "labels"),
    ("cross_entropy", {"mode": "multiclass", "class_weights": "inverse_frequency",
                       "reduction": "none"}, "labels"),
    ("focal_loss", {"mode": "multiclass", "gamma": 2.0, "pixel_weights": True}, "labels"),
    ("cross_entropy", {"mode": "multiclass"}, "soft nchw"),
    ("cross_entropy", {"mode": "multiclass", "reduction": "sum"}, "soft channels_last"),
    ("dice_ce_loss", {"mode": "multiclass", "ignore_index": 255}, "labels"),
    ("dice_loss", {"mode": "multiclass", "pixel_weights": True}, "labels"),
    ("binary_cross_entropy", {"mode": "multilabel", "pos_weight": True}, "mask nchw"),
    ("dice_loss", {"mode": "multilabel"}, "mask channels_last"),
])
def test_odd_rows_take_the_class_walk(classes, loss_name, options, target_kind, monkeypatch):
    """``WALK_ODD_ROWS``: channels_last logits whose class count is not a power of two
    take the class walk (softmax: ``STRIDED``, the maps beside the logits read one pixel per
    thread; sigmoid: one channel at a time), never the row tile, and match the torch path in
    float64 with every kind of target and per-pixel map."""
    from seglosses.triton import _common, sigmoid, softmax

    monkeypatch.setattr(_common, "WALK_ODD_ROWS", True)
    seen = []
    for module, name in ((softmax, "_softmax_kernel"), (softmax, "_softmax_stats_kernel"),
                         (softmax, "_softmax_rows_kernel"), (sigmoid, "_sigmoid_kernel")):
        _spy_launches(monkeypatch, module, name,
                      lambda c, name=name: (name, c.get("STRIDED"), c.get("CH")), seen)
    shape = (2, classes, 5, 67)  # 335 pixels: several programs, the last one partial
    generator = torch.Generator().manual_seed(classes)
    x = (torch.randn(shape, dtype=torch.float64, generator=generator) * 2).contiguous(
        memory_format=torch.channels_last)
    options = dict(options)
    if options.pop("pixel_weights", False):
        options["pixel_weights"] = torch.rand((2, 5, 67), dtype=torch.float64,
                                              generator=generator)
    if options.pop("pos_weight", False):
        options["pos_weight"] = torch.rand(classes, dtype=torch.float64, generator=generator) + 0.5
    if target_kind == "labels":
        target = _labels((2, 5, 67), classes, torch.uint8)
        if "ignore_index" in options:
            target[..., ::7] = 255
    elif target_kind.startswith("soft"):
        target = torch.softmax(torch.randn(shape, dtype=torch.float64, generator=generator), 1)
    else:
        target = _labels(shape, 2, torch.uint8)
    if target_kind.endswith("channels_last"):
        target = target.contiguous(memory_format=torch.channels_last)
    (loss, grad), (ref, ref_grad) = _both(loss_name, x, target, options)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
    assert seen and all(name != "_softmax_rows_kernel" for name, _, _ in seen), seen
    assert all(strided for name, strided, _ in seen if name.startswith("_softmax")), seen
    assert all(channels == 1 for name, _, channels in seen if name == "_sigmoid_kernel"), seen


@pytest.mark.parametrize("flat_rows", [1, 2])
@pytest.mark.parametrize("classes", [1, 3, 4, 19])
@pytest.mark.parametrize("loss_name,options", [
    ("binary_cross_entropy", {"pos_weight": True, "label_smoothing": 0.1}),
    ("binary_cross_entropy", {"ignore_index": 255, "pixel_weights": True, "reduction": "sum"}),
    ("binary_cross_entropy", {"reduction": "none", "class_dim": -1}),
    ("binary_cross_entropy", {"reduction": "none"}),
    ("focal_loss", {"gamma": 2.0, "alpha": 0.25, "pixel_weights": True}),
])
def test_flat_rows(flat_rows, classes, loss_name, options, monkeypatch):
    """Binary / multilabel losses over channels_last logits with a target in the same layout
    are elementwise over one span per image (``_sigmoid_flat_kernel``): every class count
    with ``FLAT_ROWS`` = 2, those that are not a power of two with 1, against the torch path
    in float64 with a non-uniform upstream gradient; a batch of one and a partial last block
    included. A per-element loss whose class axis is not last stays with the row tile, since
    its output is contiguous in the other order (one class aside)."""
    from seglosses.triton import _common, sigmoid

    monkeypatch.setattr(_common, "FLAT_ROWS", flat_rows)
    seen = _spy_launches(monkeypatch, sigmoid, "_sigmoid_flat_kernel", lambda c: c["CLASSES"])
    options = dict(options)
    generator = torch.Generator().manual_seed(classes)
    for batch in (1, 3):
        shape = (batch, classes, 5, 67)  # 335 pixels
        x = (torch.randn(shape, dtype=torch.float64, generator=generator) * 2).contiguous(
            memory_format=torch.channels_last)
        target = _labels(shape, 2, torch.uint8).contiguous(memory_format=torch.channels_last)
        kwargs = {k: v for k, v in options.items()
                  if k not in ("pos_weight", "pixel_weights", "class_dim")}
        if options.get("pos_weight"):
            kwargs["pos_weight"] = torch.rand(classes, dtype=torch.float64,
                                              generator=generator) + 0.5
        if options.get("pixel_weights"):
            kwargs["pixel_weights"] = torch.rand((batch, 5, 67), dtype=torch.float64,
                                                 generator=generator)
        if "ignore_index" in options:
            target[..., ::7] = 255
        if options.get("class_dim") == -1:  # (N, H, W, C), the class axis last and contiguous
            x, target, kwargs["class_dim"] = x.permute(0, 2, 3, 1), target.permute(0, 2, 3, 1), -1
        seen.clear()
        results = []
        for impl in ("triton", "torch"):
            logits = x.detach().clone().requires_grad_()
            value = getattr(sl, loss_name)(logits, target, mode="multilabel", impl=impl,
                                           **kwargs)
            weights = torch.linspace(0.5, 1.5, value.numel(), dtype=value.dtype)
            (value * weights.reshape(value.shape)).sum().backward()
            results.append((value.detach(), logits.grad))
        (loss, grad), (ref, ref_grad) = results
        np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10, atol=1e-12)
        assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
        odd = classes & (classes - 1) != 0
        expected = (flat_rows == 2 or odd) and not (  # (with one class both orders agree)
            options.get("reduction") == "none" and options.get("class_dim") != -1
            and classes > 1)
        assert bool(seen) == expected, (seen, batch)


@pytest.mark.parametrize("loss_name,mode", [("cross_entropy", "multiclass"),
                                            ("dice_ce_loss", "multiclass"),
                                            ("binary_cross_entropy", "multilabel")])
def test_gradient_is_the_kernels_own_buffer(monkeypatch, loss_name, mode):
    """dX is written in x's layout, so autograd keeps the kernel's buffer as x.grad: no
    logits-sized copy to honour the gradient layout contract (channels_last included)."""
    from seglosses.triton import sigmoid, softmax

    written = []
    for module in (softmax, sigmoid):
        launch = module._launch

        def spy(*args, _launch=launch, **kwargs):
            out = _launch(*args, **kwargs)
            if out[2] is not None:
                written.append(out[2].data_ptr())
            return out

        monkeypatch.setattr(module, "_launch", spy)
    for memory_format in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(2, 5, 6, 7).contiguous(memory_format=memory_format).requires_grad_()
        target = (_labels((2, 6, 7), 5, torch.uint8) if mode == "multiclass"
                  else _labels((2, 5, 6, 7), 2, torch.uint8))
        written.clear()
        getattr(sl, loss_name)(x, target, mode=mode, impl="triton").backward()
        assert x.grad.stride() == x.stride()
        assert x.grad.data_ptr() in written, memory_format


def test_channels_last_3d_and_spatial_rank_zero():
    x = torch.randn(2, 4, 3, 4, 5, dtype=torch.float64).contiguous(
        memory_format=torch.channels_last_3d)
    target = _labels((2, 3, 4, 5), 4, torch.int64)
    (loss, grad), (ref, ref_grad) = _both("dice_ce_loss", x, target, {})
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
    flat = torch.randn(6, 5, dtype=torch.float64)  # (N, C): no spatial axis
    (loss, grad), (ref, ref_grad) = _both("cross_entropy", flat, _labels((6,), 5, torch.int64),
                                          {"reduction": "none"})
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)


def test_empty_batch_and_empty_image():
    for shape in [(0, 3, 4, 4), (2, 3, 0, 4)]:
        x = torch.randn(shape, dtype=torch.float64)
        target = torch.zeros((shape[0], *shape[2:]), dtype=torch.int64)
        for loss_name in ("cross_entropy", "dice_ce_loss", "dice_loss"):
            (loss, grad), (ref, _) = _both(loss_name, x, target, {})
            assert torch.equal(torch.isnan(loss), torch.isnan(ref))
            np.testing.assert_allclose(loss.numpy(), ref.numpy())
            assert grad.shape == x.shape and not grad.abs().sum()


def test_everything_ignored_gives_zero_with_zero_gradient():
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    target = torch.full((2, 5, 5), 255)
    loss = sl.cross_entropy(x, target, ignore_index=255, impl="triton")
    loss.backward()
    assert loss.item() == 0.0 and not x.grad.abs().sum()


def test_deterministic_bitwise():
    """No float atomics: the same call gives the same bits (and works in deterministic mode)."""
    x = torch.randn(3, 5, 40, 41) * 4
    target = _labels((3, 40, 41), 5, torch.uint8)
    results = []
    torch.use_deterministic_algorithms(True)
    try:
        for _ in range(3):
            results.append(_run("dice_ce_loss", x, target, {}, "triton", torch.float32))
    finally:
        torch.use_deterministic_algorithms(False)
    for loss, grad in results[1:]:
        assert torch.equal(loss, results[0][0]) and torch.equal(grad, results[0][1])


def test_fused_backward_scales_and_refuses_a_second_pass():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    target = _labels((2, 6, 6), 3, torch.int64)
    loss = sl.cross_entropy(x, target, impl="triton")
    (loss * 2.5).backward(retain_graph=True)
    reference = x.detach().clone().requires_grad_()
    (sl.cross_entropy(reference, target, impl="torch") * 2.5).backward()
    torch.testing.assert_close(x.grad, reference.grad, rtol=1e-12, atol=1e-14)
    with pytest.raises(RuntimeError, match="differentiated once"):
        loss.backward()


def test_no_gradient_needed_uses_the_plain_kernel():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    target = _labels((2, 6, 6), 3, torch.int64)
    with torch.no_grad():
        loss = sl.focal_loss(x, target, impl="triton", gamma=1.5)
    assert loss.grad_fn is None
    torch.testing.assert_close(loss, sl.focal_loss(x, target, impl="torch", gamma=1.5),
                               rtol=1e-12, atol=0)


def test_modules_take_impl():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    target = _labels((2, 6, 6), 3, torch.int64)
    module = sl.DiceCELoss(impl="triton", class_weights="inverse_frequency")
    expected = sl.dice_ce_loss(x, target, class_weights="inverse_frequency", impl="torch")
    torch.testing.assert_close(module(x, target), expected, rtol=1e-10, atol=0)


def test_compiles_without_graph_break():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = _labels((2, 8, 8), 3, torch.int64)

    def step(logits, labels):
        return sl.dice_ce_loss(logits, labels, impl="triton", validate=False) + \
            sl.cross_entropy(logits, labels, impl="triton", validate=False)

    assert_compiled_like_eager(step, x, target)


def test_bad_label_raises_before_any_kernel():
    x = torch.randn(2, 3, 4, 4)
    target = _labels((2, 4, 4), 3, torch.int64)
    target[0, 0, 0] = 7
    messages = []
    for impl in ("torch", "triton"):
        with pytest.raises(ValueError) as info:
            sl.dice_ce_loss(x, target, impl=impl)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "hold class indices in [0, 3)" in messages[0]


def test_unvalidated_bad_label_gives_nan_not_a_crash():
    x = torch.randn(2, 3, 4, 4)
    target = _labels((2, 4, 4), 3, torch.int64)
    target[0, 0, 0] = 7
    for impl in ("torch", "triton"):
        value = sl.cross_entropy(x, target, impl=impl, validate=False)
        assert torch.isnan(value)


def test_impl_triton_refusals(monkeypatch):
    x = torch.randn(2, 3, 4, 4)
    target = _labels((2, 4, 4), 3, torch.int64)
    with pytest.raises(ValueError, match=r"dice_loss: from_logits must be True with "
                                         r"impl='triton'.*Use impl='auto' or 'torch'"):
        sl.dice_loss(x.softmax(1), target, from_logits=False, impl="triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match=r"cross_entropy: impl must be 'auto' or 'torch' for a "
                                         r"tensor on cpu; got 'triton'\. The Triton kernels run "
                                         r"on CUDA tensors"):
        sl.cross_entropy(x, target, impl="triton")
    assert sl.cross_entropy(x, target, impl="auto") == sl.cross_entropy(x, target, impl="torch")
    monkeypatch.setattr(kernels, "available", lambda: False)
    with pytest.raises(ValueError, match=r"dice_ce_loss: impl must be 'auto' or 'torch' when "
                                         r"triton is not installed; got 'triton'\. Install it"):
        sl.dice_ce_loss(x, target, impl="triton")


def test_kernels_launch_on_the_tensors_gpu(monkeypatch):
    """Triton launches on the current CUDA device: ``tensor_device`` makes the tensor's GPU
    current around a launch when another one is, and does nothing otherwise."""
    import types

    from seglosses.triton import _common

    made_current = []

    class Guard:
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            made_current.append(self.device)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device", Guard)
    for index, expected in ((1, [torch.device("cuda", 1)]), (0, [])):
        made_current.clear()
        with _common.tensor_device(types.SimpleNamespace(is_cuda=True,
                                                         device=torch.device("cuda", index))):
            pass
        assert made_current == expected
    with _common.tensor_device(torch.ones(1)):  # a CPU tensor: the interpreter
        pass
    assert made_current == []


def test_every_kernel_launch_is_on_the_tensors_gpu():
    """Each ``kernel[grid](...)`` in the kernel modules runs inside ``with tensor_device(...)``
    (a launch added without it would run on whichever GPU happens to be current)."""
    import ast
    import pathlib

    import seglosses.triton

    launches = 0
    for path in pathlib.Path(seglosses.triton.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.With) and any(
                    isinstance(item.context_expr, ast.Call)
                    and getattr(item.context_expr.func, "id", None) == "tensor_device"
                    for item in node.items):
                guarded |= {id(inner) for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript):
                launches += 1
                assert id(node) in guarded, f"{path.name}:{node.lineno}: launch outside " \
                    "tensor_device"
    assert launches >= 9


class _ReportsCuda(torch.Tensor):
    """A CPU tensor that says it is on a CUDA device (what a ROCm build says of an AMD GPU)."""

    @property
    def is_cuda(self):
        return True


def test_rocm_gpus_take_the_torch_path(monkeypatch):
    from seglosses.torch._dispatch import resolve_impl

    monkeypatch.setenv("TRITON_INTERPRET", "0")  # the stand-in's device is the CPU
    x = torch.randn(2, 3, 4, 4).as_subclass(_ReportsCuda)
    assert resolve_impl("cross_entropy", "auto", x) == "triton"  # an NVIDIA GPU
    monkeypatch.setattr(torch.version, "hip", "6.4.43482")
    assert kernels.rocm()
    assert resolve_impl("cross_entropy", "auto", x) == "torch"
    with pytest.raises(ValueError, match=r"dice_ce_loss: impl must be 'auto' or 'torch' for a "
                                         r"tensor on cpu \(a ROCm build: an AMD GPU\); got "
                                         r"'triton'\. The Triton kernels use NVIDIA PTX"):
        sl.dice_ce_loss(x, _labels((2, 4, 4), 3, torch.int64), impl="triton")
    target = _labels((2, 4, 4), 3, torch.int64)  # auto computes on the torch path
    assert torch.equal(sl.cross_entropy(x, target).as_subclass(torch.Tensor),
                       sl.cross_entropy(x.as_subclass(torch.Tensor), target, impl="torch"))


def test_auto_keeps_cpu_tensors_on_the_torch_path():
    from seglosses.torch._dispatch import resolve_impl

    x = torch.randn(2, 3)
    assert resolve_impl("cross_entropy", "auto", x) == "torch"
    assert resolve_impl("cross_entropy", "triton", x) == "triton"
    assert resolve_impl("cross_entropy", "torch", x) == "torch"


@pytest.mark.parametrize("mode", ["multiclass", "multilabel"])
def test_region_finalize_folds_the_lambdas_and_runs_without_gradient(mode):
    """The one-program finalize (region losses and compounds, eager mode) against the torch
    arithmetic: λ weights folded into the loss and into the coefficients of the gradient pass,
    ignored pixels, and a call that needs no gradient."""
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64) * 2
    if mode == "multiclass":
        target = _labels((3, 5, 6), 4, torch.int64)
        target[1] = 255  # a wholly ignored image: its pairs leave the mean
        target[0, :2] = 255
    else:
        target = _labels((3, 4, 5, 6), 2, torch.int64)
        target[2, :, :3] = 255
    options = {"mode": mode, "ignore_index": 255, "lambda_ce": 0.3, "lambda_dice": 1.7}
    (loss, grad), (ref, ref_grad) = _both("dice_ce_loss", x, target, options)
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)
    with torch.no_grad():
        value = sl.dice_ce_loss(x, target, impl="triton", **options)
    np.testing.assert_allclose(value.numpy(), ref.numpy(), rtol=1e-10)


def test_global_aggregate_without_group_equals_batch():
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    target = _labels((3, 5, 5), 4, torch.int64)
    for loss_name, options in [("dice_loss", {}), ("cross_entropy", {}),
                               ("dice_ce_loss", {"class_weights": "inverse_frequency"})]:
        got = getattr(sl, loss_name)(x, target, aggregate="global", impl="triton", **options)
        expected = getattr(sl, loss_name)(x, target, aggregate="batch", impl="torch", **options)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=0)


def test_large_class_count_matches():
    case = Case("cross_entropy", "soft", (2, 130, 3, 2), options={"label_smoothing": 0.1})
    x, target, kwargs = make_case(case)
    (loss, grad), (ref, ref_grad) = _both("dice_ce_loss", to_torch(x), to_torch(target),
                                          torch_kwargs(kwargs))
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-10)
    assert_grad_close(grad.numpy(), ref_grad.numpy(), 1e-10)


def test_gpu_benchmark_script_runs(tmp_path):
    """benchmarks/gpu.py --smoke: the GPU benchmark's code runs (tiny shapes, interpreter)."""
    import os
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).parents[1] / "benchmarks" / "gpu.py"
    env = dict(os.environ, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "| seglosses.dice_ce_loss [triton] |" in done.stdout
    assert "failed" not in done.stdout


def test_static_report_runs():
    """benchmarks/static.py --smoke: the launches of one call are recorded, compiled for sm_90
    and read back (registers, loads, layout) with no GPU, for both NCHW paths."""
    import os
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).parents[1] / "benchmarks" / "static.py"
    env = dict(os.environ, TRITON_INTERPRET="0", TRITON_DEFAULT_FP_FUSION="1")
    done = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split(" | ") for line in done.stdout.splitlines() if "_kernel" in line]
    # | case | pixel tile | walk odd rows | flat rows | held | launch | kernel | BLOCK | warps
    # | registers | local B | ...
    kernels_seen = {(row[1], row[4], row[6]) for row in rows}
    assert ("0", "4", "_softmax_kernel") in kernels_seen  # the 4 classes held in registers
    assert ("32", "-", "_softmax_rows_kernel") in kernels_seen
    for row in rows:
        assert row[10] == "0", row  # no spill
    tile = next(row for row in rows if row[6] == "_softmax_rows_kernel")
    assert tile[-1].startswith("in thread"), tile  # no split


def test_every_kernel_variant_compiles_for_sm90():
    """The interpreter runs kernels as Python; the compiler is stricter. Lower each variant the
    launchers can request to PTX for an H100 (no GPU needed) in a TRITON_INTERPRET=0 process."""
    import os
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).parent / "triton_compile_check.py"
    env = dict(os.environ, TRITON_INTERPRET="0")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert done.stdout.count("OK   sm_90 ") >= 100


def test_kernels_compile_for_other_nvidia_gpus():
    """The first and the last variant of each kernel compile for a T4, an A100, an RTX 30xx /
    A10, an RTX 40xx / L4, a B200 and an RTX 50xx, within each one's shared memory per block
    (the whole table: ``tests/triton_compile_check.py --arch 75,80,86,89,100,120``)."""
    import os
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).parent / "triton_compile_check.py"
    archs = (75, 80, 86, 89, 100, 120)
    done = subprocess.run([sys.executable, str(script), "--sample",
                           "--arch", ",".join(map(str, archs))], capture_output=True, text=True,
                          env=dict(os.environ, TRITON_INTERPRET="0"), timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "TRITON_DEFAULT_FP_FUSION" not in done.stderr  # the launch options say it
    for arch in archs:
        assert done.stdout.count(f"OK   sm_{arch} ") >= 10, arch
