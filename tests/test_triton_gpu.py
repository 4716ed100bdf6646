"""The Triton kernels compiled for a CUDA device: what the interpreter cannot show.

Run on a GPU machine with ``TRITON_INTERPRET=0 python -m pytest -m gpu tests/test_triton_gpu.py``
(skipped everywhere else). Each test compares against the torch path on the same device.
"""

from __future__ import annotations

import pytest
import torch

import seglosses.torch as sl
from _helpers import assert_grad_close
from seglosses import triton as kernels

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available() or not kernels.available()
                       or kernels.interpreting(),
                       reason="needs CUDA, triton and TRITON_INTERPRET=0"),
]


def _grad_of(loss_fn, x, *args, upstream=1.0, **kwargs):
    x = x.detach().clone().requires_grad_()
    value = loss_fn(x, *args, **kwargs)
    (value * upstream).sum().backward()
    return value.detach(), x.grad


@pytest.mark.parametrize("loss_name,options", [
    ("cross_entropy", {}),
    ("cross_entropy", {"ignore_index": 255, "class_weights": "median_frequency",
                       "label_smoothing": 0.1}),
    ("dice_ce_loss", {"ignore_index": 255}),
    ("focal_loss", {"gamma": 2.0}),
    ("dice_loss", {"aggregate": "batch"}),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_large_shapes_match_the_torch_path(loss_name, options, dtype, channels_last):
    generator = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(4, 19, 256, 512, device="cuda", generator=generator, dtype=dtype) * 3
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 19, (4, 256, 512), device="cuda", generator=generator,
                           dtype=torch.uint8)
    labels[:, ::7] = 255
    if "ignore_index" not in options:
        labels[labels == 255] = 0
    fn = getattr(sl, loss_name)
    value, grad = _grad_of(fn, x, labels, impl="triton", upstream=0.7, **options)
    reference, ref_grad = _grad_of(fn, x.float(), labels.long(), impl="torch", upstream=0.7,
                                   **options)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(value.float(), reference, rtol=tolerance, atol=1e-6)
    assert_grad_close(grad.float().cpu().numpy(), ref_grad.cpu().numpy(), tolerance)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("target_kind", ["labels", "nchw one-hot", "channels_last soft"])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "dice_ce_loss"])
def test_whole_row_tiles_match_the_torch_path(loss_name, target_kind, dtype):
    """channels_last logits with C=4: each row is one thread's vector or less, so the labels
    or the target beside them are read in the tile's own layout (WHOLE / ACROSS /
    DENSE_T in the row-tile kernel), with a partial last block."""
    generator = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(3, 4, 129, 257, device="cuda", generator=generator, dtype=dtype) * 3
    x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 4, (3, 129, 257), device="cuda", generator=generator,
                           dtype=torch.uint8)
    options = {}
    if target_kind == "labels":
        labels[:, ::5] = 255
        target, reference_target, options = labels, labels.long(), {"ignore_index": 255}
    elif target_kind == "nchw one-hot":
        target = torch.nn.functional.one_hot(labels.long(), 4).permute(0, 3, 1, 2).to(
            torch.uint8).contiguous()
        reference_target = target.float()
    else:
        target = torch.softmax(torch.randn(x.shape, device="cuda", generator=generator), 1)
        target = target.contiguous(memory_format=torch.channels_last)
        reference_target = target
    if loss_name == "dice_ce_loss" and target_kind != "labels":
        options["soft_label"] = True
    fn = getattr(sl, loss_name)
    value, grad = _grad_of(fn, x, target, impl="triton", upstream=0.7, **options)
    reference, ref_grad = _grad_of(fn, x.float(), reference_target, impl="torch",
                                   upstream=0.7, **options)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    torch.testing.assert_close(value.float(), reference, rtol=tolerance, atol=1e-6)
    assert_grad_close(grad.float().cpu().numpy(), ref_grad.cpu().numpy(), tolerance)


@pytest.mark.parametrize("walk", [False, True])
@pytest.mark.parametrize("loss_name,mode", [("cross_entropy", "multiclass"),
                                            ("dice_ce_loss", "multiclass"),
                                            ("binary_cross_entropy", "multilabel")])
def test_odd_channels_last_rows_match_the_torch_path(loss_name, mode, walk, monkeypatch):
    """channels_last bf16 logits with C=19 (38-byte rows) in the row tile and, with
    ``WALK_ODD_ROWS``, in the class walk over strided pixels (``STRIDED``), with a partial
    last block and an NCHW target beside them."""
    from seglosses.triton import _common

    monkeypatch.setattr(_common, "WALK_ODD_ROWS", walk)
    generator = torch.Generator(device="cuda").manual_seed(2)
    x = torch.randn(2, 19, 129, 257, device="cuda", generator=generator, dtype=torch.bfloat16)
    x = (x * 3).contiguous(memory_format=torch.channels_last)
    if mode == "multiclass":
        target = torch.randint(0, 19, (2, 129, 257), device="cuda", generator=generator,
                               dtype=torch.uint8)
        target[:, ::5] = 255
        reference_target, options = target.long(), {"ignore_index": 255}
    else:
        target = torch.randint(0, 2, x.shape, device="cuda", generator=generator,
                               dtype=torch.uint8)
        reference_target, options = target.float(), {"pos_weight": torch.linspace(
            0.5, 2.0, 19, device="cuda")}
    fn = getattr(sl, loss_name)
    value, grad = _grad_of(fn, x, target, mode=mode, impl="triton", upstream=0.7, **options)
    reference, ref_grad = _grad_of(fn, x.float(), reference_target, mode=mode, impl="torch",
                                   upstream=0.7, **options)
    torch.testing.assert_close(value.float(), reference, rtol=1e-2, atol=1e-6)
    assert_grad_close(grad.float().cpu().numpy(), ref_grad.cpu().numpy(), 1e-2)


@pytest.mark.parametrize("classes,dtype", [(19, torch.bfloat16), (3, torch.float32)])
def test_flat_rows_match_the_torch_path(classes, dtype):
    """Multilabel BCE and sigmoid focal over channels_last logits with a channels_last
    target: one span per image (``_sigmoid_flat_kernel``), pos_weight, α and a mask
    included, an image whose span is not a multiple of the block."""
    generator = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(2, classes, 129, 257, device="cuda", generator=generator, dtype=dtype)
    x = (x * 3).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 2, x.shape, device="cuda", generator=generator,
                           dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    mask = torch.rand(2, 129, 257, device="cuda", generator=generator) > 0.2
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2
    for fn, options in [(sl.binary_cross_entropy, {"pos_weight": torch.linspace(
                            0.5, 2.0, classes, device="cuda"), "mask": mask}),
                        (sl.focal_loss, {"gamma": 2.0, "alpha": 0.25})]:
        value, grad = _grad_of(fn, x, target, mode="multilabel", impl="triton", upstream=0.7,
                               **options)
        reference, ref_grad = _grad_of(fn, x.float(), target.float(), mode="multilabel",
                                       impl="torch", upstream=0.7, **options)
        torch.testing.assert_close(value.float(), reference, rtol=tolerance, atol=1e-6)
        assert_grad_close(grad.float().cpu().numpy(), ref_grad.cpu().numpy(), tolerance)


def test_multilabel_bce_dice_on_cuda():
    x = torch.randn(2, 5, 64, 96, device="cuda")
    target = torch.randint(0, 2, x.shape, device="cuda", dtype=torch.uint8)
    for fn, options in [(sl.binary_cross_entropy, {"pos_weight": [1, 2, 3, 4, 5]}),
                        (sl.dice_ce_loss, {"class_weights": "balanced"}),
                        (sl.focal_loss, {"gamma": 2.0, "alpha": 0.25})]:
        value, grad = _grad_of(fn, x, target, mode="multilabel", impl="triton", **options)
        reference, ref_grad = _grad_of(fn, x, target.float(), mode="multilabel", impl="torch",
                                       **options)
        torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-6)
        assert_grad_close(grad.cpu().numpy(), ref_grad.cpu().numpy(), 1e-5)


def test_multilabel_ignore_index_on_cuda():
    """The sigmoid kernel's ignore labels and the element scan, against the torch path."""
    x = torch.randn(2, 5, 64, 96, device="cuda")
    target = torch.randint(0, 2, x.shape, device="cuda", dtype=torch.uint8)
    target[..., :5] = 255
    mask = torch.rand(2, 64, 96, device="cuda") > 0.2
    for fn, options in [(sl.binary_cross_entropy, {"class_weights": "balanced", "mask": mask}),
                        (sl.dice_ce_loss, {"pos_weight": [1, 2, 3, 4, 5]}),
                        (sl.dice_loss, {})]:
        value, grad = _grad_of(fn, x, target, mode="multilabel", impl="triton",
                               ignore_index=255, **options)
        reference, ref_grad = _grad_of(fn, x, target, mode="multilabel", impl="torch",
                                       ignore_index=255, **options)
        torch.testing.assert_close(value, reference, rtol=1e-5, atol=1e-6)
        assert_grad_close(grad.cpu().numpy(), ref_grad.cpu().numpy(), 1e-5)
    target[1, 2, 3, 4] = 7
    with pytest.raises(ValueError, match=r"got values \[7\]"):
        sl.binary_cross_entropy(x, target, mode="multilabel", impl="triton", ignore_index=255)
    torch.cuda.synchronize()


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_a_tensor_on_another_gpu_than_the_current_one():
    """Triton launches on the current device: the kernels of a loss over tensors on cuda:1,
    with cuda:0 current, run on cuda:1 (forward and backward), and cuda:0 stays current."""
    torch.cuda.set_device(0)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 33, 47, generator=g).to("cuda:1")
    y = torch.randint(0, 5, (2, 33, 47), generator=g).to("cuda:1")
    y[0, :3] = 255
    for loss_name in ("cross_entropy", "dice_ce_loss", "focal_loss"):
        options = {"ignore_index": 255, "impl": "triton"}
        got = _grad_of(getattr(sl, loss_name), x, y, upstream=0.5, **options)
        want = _grad_of(getattr(sl, loss_name), x, y, upstream=0.5, **dict(options, impl="torch"))
        torch.cuda.synchronize(1)
        assert got[1].device == torch.device("cuda:1")
        torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
        assert_grad_close(got[1], want[1])
    assert torch.cuda.current_device() == 0


def test_deterministic_over_ten_runs():
    x = torch.randn(8, 19, 128, 256, device="cuda", dtype=torch.bfloat16)
    labels = torch.randint(0, 19, (8, 128, 256), device="cuda", dtype=torch.uint8)
    runs = [_grad_of(sl.dice_ce_loss, x, labels, impl="triton") for _ in range(10)]
    for value, grad in runs[1:]:
        assert torch.equal(value, runs[0][0]) and torch.equal(grad, runs[0][1])


def test_bad_label_raises_and_the_context_survives():
    x = torch.randn(2, 4, 32, 32, device="cuda")
    labels = torch.randint(0, 4, (2, 32, 32), device="cuda")
    labels[1, 3, 3] = 9
    with pytest.raises(ValueError, match=r"hold class indices in \[0, 4\)"):
        sl.dice_ce_loss(x, labels, impl="triton")
    torch.cuda.synchronize()  # no device-side assert was raised
    labels[1, 3, 3] = 0
    assert torch.isfinite(sl.dice_ce_loss(x, labels, impl="triton"))


def test_cuda_graph_capture():
    x = torch.randn(2, 4, 64, 64, device="cuda", requires_grad=True)
    labels = torch.randint(0, 4, (2, 64, 64), device="cuda", dtype=torch.uint8)
    multilabel = torch.randint(0, 2, x.shape, device="cuda", dtype=torch.uint8)
    multilabel[..., :3] = 255

    def losses(z, y, m, impl, validate):
        return sl.dice_ce_loss(z, y, impl=impl, validate=validate) + \
            sl.cross_entropy(z, y, impl=impl, validate=validate) + \
            sl.binary_cross_entropy(z, m, mode="multilabel", impl=impl, validate=validate,
                                    ignore_index=255)

    def step():
        x.grad = None
        loss = losses(x, labels, multilabel, "triton", False)
        loss.backward()
        return loss

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm up: compile kernels, fill caches
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    x.grad = None
    with torch.cuda.graph(graph):
        captured = step()
    with torch.no_grad():
        x.add_(0.5)
    graph.replay()
    expected, expected_grad = _grad_of(
        lambda z, y: losses(z, y, multilabel, "torch", True), x, labels.long())
    torch.testing.assert_close(captured, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x.grad, expected_grad, rtol=1e-4, atol=1e-6)


def test_fp16_many_pixels_equals_fp32():
    """A sum over > 65 504 pixels accumulates in float32, never overflowing fp16."""
    x = torch.randn(1, 3, 400, 400, device="cuda")
    labels = torch.randint(0, 3, (1, 400, 400), device="cuda")
    for fn in (sl.cross_entropy, sl.dice_loss):
        half = fn(x.half(), labels, impl="triton", reduction="sum" if fn is sl.cross_entropy
                  else "mean")
        full = fn(x.half().float(), labels, impl="torch", reduction="sum"
                  if fn is sl.cross_entropy else "mean")
        assert torch.isfinite(half)
        torch.testing.assert_close(half, full, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_past_two_to_the_31_elements():
    """int64 offsets: the last pixels' loss and gradient rows equal a chunked reference."""
    num_classes, height, width = 2, 32768, 32800  # 2 · 32768 · 32800 > 2^31 elements
    x = torch.randn(1, num_classes, height, width, device="cuda", dtype=torch.bfloat16)
    assert x.numel() > 2**31
    labels = torch.randint(0, num_classes, (1, height, width), device="cuda", dtype=torch.uint8)
    per_pixel = sl.cross_entropy(x, labels, impl="triton", reduction="none")
    tail = slice(height - 4, height)
    expected = sl.cross_entropy(x[:, :, tail].float(), labels[:, tail].long(), impl="torch",
                                reduction="none")
    # "none" keeps the input's dtype: both sides computed in fp32, then rounded to bf16
    torch.testing.assert_close(per_pixel[:, tail], expected.to(per_pixel.dtype))
    x.requires_grad_()
    sl.cross_entropy(x, labels, impl="triton", reduction="sum").backward()
    rows = x[:, :, tail].detach().float().requires_grad_()
    sl.cross_entropy(rows, labels[:, tail].long(), impl="torch", reduction="sum").backward()
    torch.testing.assert_close(x.grad[:, :, tail].float(), rows.grad, rtol=1e-2, atol=1e-2)
