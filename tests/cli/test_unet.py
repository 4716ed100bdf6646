"""The CLI's U-Net: shapes in 2-D and 3-D, odd sizes, gradients, deterministic init."""

from __future__ import annotations

import pytest
import torch

from seglosses.cli.unet import UNet


@pytest.mark.parametrize("dims, shape, depth", [
    (2, (2, 1, 32, 48), 3),
    (2, (1, 3, 31, 45), 3),  # odd sizes: padded inside, cropped back
    (2, (1, 1, 5, 7), 2),  # smaller than 2**depth
    (3, (2, 1, 16, 16, 8), 2),
    (3, (1, 2, 9, 14, 11), 2),
])
def test_output_shape_matches_input(dims, shape, depth):
    model = UNet(shape[1], 5, dims=dims, base_width=4, depth=depth)
    logits = model(torch.randn(shape))
    assert logits.shape == (shape[0], 5, *shape[2:]) and logits.dtype == torch.float32


def test_padding_does_not_leak_into_the_kept_region():
    """The output at an odd size equals the output at the padded size, cropped."""
    torch.manual_seed(0)
    model = UNet(1, 3, base_width=4, depth=2, norm="none").eval()
    x = torch.randn(1, 1, 13, 10)
    padded = torch.nn.functional.pad(x, (0, 2, 0, 3))
    torch.testing.assert_close(model(x), model(padded)[..., :13, :10])


@pytest.mark.parametrize("norm", ["batch", "instance", "group", "none"])
def test_gradients_reach_every_parameter(norm):
    torch.manual_seed(0)
    model = UNet(1, 4, base_width=4, depth=2, norm=norm)
    x, y = torch.randn(2, 1, 12, 12), torch.randint(0, 4, (2, 12, 12))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert model.down[0][0].weight.grad.abs().sum() > 0


def test_a_few_steps_fit_one_batch():
    torch.manual_seed(0)
    model = UNet(1, 2, base_width=4, depth=2)
    x = torch.rand(2, 1, 16, 16)
    y = (x[:, 0] > 0.5).long()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.detach().item())
    assert losses[-1] < 0.5 * losses[0]


def test_init_is_deterministic_given_the_seed():
    torch.manual_seed(3)
    a = UNet(1, 3, base_width=4)
    torch.manual_seed(3)
    b = UNet(1, 3, base_width=4)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    torch.manual_seed(4)
    c = UNet(1, 3, base_width=4)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_widths_and_depth():
    model = UNet(1, 2, base_width=8, depth=3)
    assert [block[0].out_channels for block in model.down] == [8, 16, 32, 64]
    assert model.head.in_channels == 8 and model.head.out_channels == 2
    assert sum(p.numel() for p in model.parameters()) < 500_000


@pytest.mark.parametrize("options, message", [
    (dict(dims=1), "dims"), (dict(depth=0), "depth"), (dict(norm="layer"), "norm"),
    (dict(base_width=0), "base_width"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        UNet(1, 2, **options)


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"UNet.forward: x must have shape \(N, 1, H, W\)"):
        UNet(1, 2, base_width=4)(torch.zeros(1, 3, 8, 8))
