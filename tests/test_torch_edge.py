"""Edge cases: empty masks, ignored pixels, empty tensors, numerics,
layouts and dtypes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as tF

import seglosses.torch as sl

REGION = [sl.dice_loss, sl.jaccard_loss, sl.tversky_loss,
          lambda x, y, **k: sl.tversky_loss(x, y, gamma=0.75, **k)]
ALL_LOSSES = [sl.cross_entropy, sl.focal_loss, sl.dice_loss, sl.jaccard_loss, sl.tversky_loss,
              sl.dice_ce_loss]
BIG = 30.0


def _loss_and_grad(fn, x, y, **kwargs):
    x = x.clone().requires_grad_()
    loss = fn(x, y, **kwargs)
    loss.backward()
    return loss.detach(), x.grad


# ---- empty-mask matrix ---------------------------------------------------------------------

@pytest.mark.parametrize("fn", REGION)
def test_empty_target_clean_prediction_scores_zero(fn):
    y = torch.zeros(2, 1, 16, 16)
    loss, _ = _loss_and_grad(fn, torch.full((2, 1, 16, 16), -BIG), y, mode="binary")
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("fn", REGION)
def test_empty_target_all_foreground_scores_one_with_gradient(fn):
    y = torch.zeros(2, 1, 16, 16)
    loss, grad = _loss_and_grad(fn, torch.full((2, 1, 16, 16), BIG), y, mode="binary")
    assert loss.item() == pytest.approx(1.0, abs=1e-2)
    x = torch.zeros(2, 1, 16, 16)  # at a softer prediction the gradient pushes down
    _, grad = _loss_and_grad(fn, x, y, mode="binary")
    assert torch.all(grad > 0)


@pytest.mark.parametrize("fn", REGION)
def test_full_target_full_prediction_is_zero_and_full_empty_is_one(fn):
    y = torch.ones(2, 1, 16, 16)
    full, _ = _loss_and_grad(fn, torch.full((2, 1, 16, 16), BIG), y, mode="binary")
    empty, _ = _loss_and_grad(fn, torch.full((2, 1, 16, 16), -BIG), y, mode="binary")
    assert full.item() == pytest.approx(0.0, abs=1e-6)
    assert empty.item() == pytest.approx(1.0, abs=1e-2)


@pytest.mark.parametrize("fn", REGION)
def test_smooth_zero_empty_both_is_zero_not_nan(fn):
    y = torch.zeros(1, 1, 8, 8)
    loss, grad = _loss_and_grad(fn, torch.full((1, 1, 8, 8), -200.0), y, mode="binary",
                                smooth=0.0) if fn is not REGION[3] else \
        _loss_and_grad(sl.tversky_loss, torch.full((1, 1, 8, 8), -200.0), y, mode="binary",
                       smooth=0.0, gamma=0.75)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.0, abs=1e-6)
    assert torch.isfinite(grad).all()


def test_absent_exclude_drops_empty_classes():
    logits = torch.randn(2, 3, 8, 8)
    labels = torch.randint(0, 2, (2, 8, 8))  # class 2 never present
    kept = sl.dice_loss(logits, labels, absent="exclude", reduction="none")
    assert torch.all(kept[:, 2] == 0)
    assert sl.dice_loss(logits, labels, absent="exclude") == pytest.approx(
        kept[:, :2].mean().item(), rel=1e-6)


# ---- ignored pixels --------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("fn", [sl.cross_entropy, sl.focal_loss, sl.dice_loss,
                                sl.jaccard_loss, sl.tversky_loss])
def test_all_ignored_is_zero_with_zero_gradient(fn, reduction):
    labels = torch.full((2, 6, 6), 255, dtype=torch.uint8)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    loss = fn(x, labels, ignore_index=255, reduction=reduction,
              **({"absent": "exclude"} if fn in (sl.dice_loss, sl.jaccard_loss,
                                                 sl.tversky_loss) else {}))
    loss.sum().backward()
    assert torch.all(loss == 0) and torch.count_nonzero(x.grad) == 0


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_all_ignored_compound_is_zero(reduction):
    labels = torch.full((2, 6, 6), 255)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    loss = sl.dice_ce_loss(x, labels, ignore_index=255, absent="exclude", reduction=reduction)
    loss.backward()
    assert loss.item() == 0 and torch.count_nonzero(x.grad) == 0


def test_all_ignored_with_absent_include_scores_zero_for_each_class():
    """No valid pixel: every (image, class) pair is 'empty target, no prediction' → 0."""
    labels = torch.full((2, 6, 6), 255)
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    loss = sl.dice_loss(x, labels, ignore_index=255)
    loss.backward()
    assert loss.item() == 0 and torch.count_nonzero(x.grad) == 0


def test_one_fully_ignored_image_does_not_poison_the_others():
    x = torch.randn(3, 4, 8, 8, requires_grad=True)
    labels = torch.randint(0, 4, (3, 8, 8))
    labels[1] = 255
    for fn in ALL_LOSSES:
        loss = fn(x, labels, ignore_index=255)
        expected = fn(x[[0, 2]], labels[[0, 2]], ignore_index=255)
        grad, = torch.autograd.grad(loss, x)
        assert torch.isfinite(loss) and torch.all(grad[1] == 0)
        # nor dilute their mean: an image without a valid pixel carries no evidence
        torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("fn", ALL_LOSSES)
def test_changing_logits_at_ignored_pixels_changes_nothing(fn):
    x = torch.randn(2, 4, 8, 8)
    labels = torch.randint(0, 4, (2, 8, 8))
    labels[:, :3] = 255
    other = x.clone()
    other[:, :, :3] = torch.randn(2, 4, 3, 8) * 50
    a, ga = _loss_and_grad(fn, x, labels, ignore_index=255)
    b, gb = _loss_and_grad(fn, other, labels, ignore_index=255)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(ga[:, :, 3:], gb[:, :, 3:])
    assert torch.all(ga[:, :, :3] == 0)


# ---- empty tensors ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 0, 4), (2, 3, 0)])
@pytest.mark.parametrize("fn", ALL_LOSSES)
def test_empty_tensors(fn, shape):
    x = torch.randn(*shape, requires_grad=True)
    labels = torch.zeros((shape[0], *shape[2:]), dtype=torch.long)
    loss = fn(x, labels)
    loss.backward()
    assert loss.shape == () and loss.item() == 0.0
    assert x.grad.shape == x.shape
    none = fn(x, labels, reduction="none") if fn is not sl.dice_ce_loss else None
    if none is not None and fn in (sl.cross_entropy, sl.focal_loss):
        assert none.shape == labels.shape


# ---- numerics --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,scale", [(torch.float32, 1e4), (torch.bfloat16, 1e4),
                                         (torch.float16, 6e4)])
@pytest.mark.parametrize("fn", ALL_LOSSES)
def test_extreme_logits_stay_finite(fn, dtype, scale):
    x = (torch.randn(2, 3, 8, 8).sign() * scale).to(dtype).requires_grad_()
    labels = torch.randint(0, 3, (2, 8, 8))
    loss = fn(x, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("fn", [sl.binary_cross_entropy, sl.focal_loss, sl.dice_loss,
                                sl.dice_ce_loss])
def test_probabilities_exactly_zero_and_one(fn):
    p = torch.tensor([[[0.0, 1.0, 1.0, 0.0, 0.5]]], requires_grad=True)
    y = torch.tensor([[[1.0, 0.0, 1.0, 0.0, 1.0]]])
    loss = fn(p, y, mode="binary", from_logits=False)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(p.grad).all()
    assert p.grad.abs().max() < 1e8


def test_multiclass_probabilities_with_exact_zeros():
    p = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]]).requires_grad_()  # (1, 3, 2)
    y = torch.tensor([[1, 2]])
    loss = sl.dice_ce_loss(p, y, from_logits=False)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("fn", [sl.cross_entropy, sl.dice_loss, sl.dice_ce_loss, sl.focal_loss])
def test_float16_beyond_65504_pixels_matches_float32(fn, reduction):
    torch.manual_seed(0)
    x = torch.randn(1, 3, 300, 300) * 3  # 90 000 pixels: torch's own fp16 sum overflows
    labels = torch.randint(0, 3, (1, 300, 300))
    half = fn(x.half(), labels, reduction=reduction)
    single = fn(x.half().float(), labels, reduction=reduction)
    assert half.dtype == torch.float32 and torch.isfinite(half)
    torch.testing.assert_close(half, single, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("logit_dtype", [torch.float32, torch.float16, torch.bfloat16,
                                         torch.float64])
@pytest.mark.parametrize("label_dtype", [torch.uint8, torch.int16, torch.int32, torch.int64])
def test_dtype_matrix(logit_dtype, label_dtype):
    torch.manual_seed(1)
    x = torch.randn(2, 4, 6, 6)
    labels = torch.randint(0, 4, (2, 6, 6))
    reference = sl.dice_ce_loss(x.to(logit_dtype).double(), labels)
    got = sl.dice_ce_loss(x.to(logit_dtype), labels.to(label_dtype))
    torch.testing.assert_close(got.double(), reference, rtol=1e-5, atol=1e-6)
    assert got.dtype == (torch.float64 if logit_dtype == torch.float64 else torch.float32)
    none = sl.cross_entropy(x.to(logit_dtype), labels.to(label_dtype), reduction="none")
    assert none.dtype == logit_dtype


# ---- layouts ---------------------------------------------------------------------------------

def _layouts_2d(x):
    yield "contiguous", x, 1
    yield "channels_last", x.contiguous(memory_format=torch.channels_last), 1
    yield "class_dim=-1", x.movedim(1, -1).contiguous(), -1
    yield "permuted view", x.movedim(1, -1).contiguous().movedim(-1, 1), 1
    yield "transposed spatial", x.transpose(2, 3).contiguous().transpose(2, 3), 1
    yield "sliced batch", torch.stack([x, -x], 1).flatten(0, 1)[::2], 1


@pytest.mark.parametrize("fn", ALL_LOSSES)
def test_layouts_give_the_contiguous_result(fn):
    torch.manual_seed(2)
    x = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    labels = torch.randint(0, 4, (2, 5, 7))
    reference, ref_grad = _loss_and_grad(fn, x, labels)
    for name, layout, class_dim in _layouts_2d(x):
        loss, grad = _loss_and_grad(fn, layout, labels, class_dim=class_dim)
        torch.testing.assert_close(loss, reference, msg=name)
        grad = grad.movedim(-1, 1) if class_dim == -1 else grad
        torch.testing.assert_close(grad, ref_grad, msg=name)


def test_channels_last_3d_and_expanded_targets():
    torch.manual_seed(3)
    x = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    labels = torch.randint(0, 3, (1, 4, 5, 6)).expand(2, 4, 5, 6)  # stride 0 along N
    reference, ref_grad = _loss_and_grad(sl.dice_ce_loss, x, labels.contiguous())
    cl = x.contiguous(memory_format=torch.channels_last_3d)
    loss, grad = _loss_and_grad(sl.dice_ce_loss, cl, labels)
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(grad, ref_grad)
    soft = tF.one_hot(labels, 3).movedim(-1, 1).double()  # an expanded float target
    torch.testing.assert_close(sl.dice_ce_loss(x, soft), reference)


@pytest.mark.parametrize("spatial", [(), (9,), (4, 5), (3, 4, 5), (2, 3, 2, 3)])
@pytest.mark.parametrize("classes", [2, 3])
def test_any_number_of_spatial_dims(spatial, classes):
    x = torch.randn(2, classes, *spatial, requires_grad=True)
    labels = torch.randint(0, classes, (2, *spatial))
    for fn in ALL_LOSSES:
        loss = fn(x, labels)
        assert loss.shape == () and torch.isfinite(loss)


def test_index_map_with_size_one_class_axis_is_squeezed():
    x = torch.randn(2, 3, 5, 5)
    labels = torch.randint(0, 3, (2, 5, 5))
    torch.testing.assert_close(sl.dice_ce_loss(x, labels.unsqueeze(1)),
                               sl.dice_ce_loss(x, labels))


def test_integer_one_hot_target_is_one_hot():
    x = torch.randn(2, 3, 5, 5)
    labels = torch.randint(0, 3, (2, 5, 5))
    onehot = tF.one_hot(labels, 3).movedim(-1, 1)  # int64 of the input's shape
    torch.testing.assert_close(sl.cross_entropy(x, onehot), sl.cross_entropy(x, labels))


def test_binary_input_without_channel_axis():
    x = torch.randn(2, 6, 6)
    y = torch.randint(0, 2, (2, 6, 6))
    torch.testing.assert_close(sl.dice_ce_loss(x, y, mode="binary"),
                               sl.dice_ce_loss(x.unsqueeze(1), y.unsqueeze(1), mode="binary"))
    assert sl.binary_cross_entropy(x, y, reduction="none").shape == (2, 6, 6)


def test_forward_under_no_grad_writes_nothing_and_backward_twice_agrees():
    x = torch.randn(2, 3, 6, 6)
    before = x.clone()
    labels = torch.randint(0, 3, (2, 6, 6))
    with torch.no_grad():
        for fn in ALL_LOSSES:
            fn(x, labels)
    assert torch.equal(x, before)
    x.requires_grad_()
    loss = sl.dice_ce_loss(x, labels)
    first, = torch.autograd.grad(loss, x, retain_graph=True)
    second, = torch.autograd.grad(loss, x)
    assert torch.equal(first, second)
    assert torch.equal(x.detach(), before)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 4, 3, 9)])
def test_inference_mode_first_then_training(shape):
    """Validation under ``torch.inference_mode()`` before the first training step: whatever
    the losses keep between calls (the "mean" pixel count, made once) must not be an
    inference tensor that autograd then refuses to save."""
    x = torch.randn(shape)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]))
    with torch.inference_mode():
        for fn in ALL_LOSSES:
            fn(x, labels, reduction="sum" if fn is sl.cross_entropy else "mean")
    for fn in ALL_LOSSES:
        for reduction in ("mean", "sum"):
            loss, grad = _loss_and_grad(fn, x, labels, reduction=reduction)
            assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_validate_false_invalid_label_gives_nan_not_a_crash():
    x = torch.randn(1, 3, 4, 4)
    labels = torch.randint(0, 3, (1, 4, 4))
    labels[0, 0, 0] = 7
    per_pixel = sl.cross_entropy(x, labels, validate=False, reduction="none")
    assert torch.isnan(per_pixel[0, 0, 0])
    assert torch.isfinite(per_pixel.flatten()[1:]).all()
