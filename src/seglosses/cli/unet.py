"""A small U-Net (Ronneberger et al. 2015) for 2-D images and 3-D volumes."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._spec import check_choice, fail

__all__ = ["UNet"]

NORMS = ("batch", "instance", "group", "none")


def _norm(kind: str, dims: int, channels: int) -> nn.Module:
    if kind == "batch":
        return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(channels)
    if kind == "instance":
        return (nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    return nn.Identity()


class _Block(nn.Sequential):
    """(conv 3×3 → norm → ReLU) × 2."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, norm: str):
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        layers: list[nn.Module] = []
        for channels in (in_channels, out_channels):
            layers += [conv(channels, out_channels, 3, padding=1, bias=norm == "none"),
                       _norm(norm, dims, out_channels), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class UNet(nn.Module):
    """U-Net: ``depth`` down steps (max-pool 2) and as many up steps (transposed conv 2, then
    concatenation with the encoder's feature map at that scale), each step a double
    conv-norm-ReLU block; a 1×1 convolution gives the class logits.

    Widths are ``base_width · 2^level`` (level 0 … depth, the bottleneck being level
    ``depth``). An input whose spatial sizes are not multiples of ``2**depth`` is zero-padded
    at the end of each axis up to the next multiple and the logits are cropped back, so any
    size works and the output always has the input's spatial size.

    Convolutions get Kaiming-normal weights (ReLU gain) and zero biases, drawn from torch's
    global generator: ``torch.manual_seed(s)`` before construction gives the same model.

    Args:
        in_channels: image channels.
        num_classes: output channels (C logits; 1 for a binary sigmoid model).
        dims: 2 (``(N, C, H, W)``) or 3 (``(N, C, D, H, W)``).
        base_width: channels of the first block.
        depth: number of down-sampling steps (>= 1).
        norm: ``"batch"``, ``"instance"``, ``"group"`` (8 groups or fewer) or ``"none"``.

    Shape:
        input ``(N, in_channels, *spatial)`` → logits ``(N, num_classes, *spatial)``.

    Example:
        >>> model = UNet(1, 7, base_width=4, depth=2)
        >>> model(torch.zeros(1, 1, 30, 41)).shape
        torch.Size([1, 7, 30, 41])
    """

    def __init__(self, in_channels: int, num_classes: int, *, dims: int = 2,
                 base_width: int = 16, depth: int = 3, norm: str = "batch"):
        super().__init__()
        function = "UNet"
        for name, value, low in (("in_channels", in_channels, 1),
                                 ("num_classes", num_classes, 1),
                                 ("base_width", base_width, 1), ("depth", depth, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise fail(function, name, f"be an int >= {low}", repr(value))
        if dims not in (2, 3):
            raise fail(function, "dims", "be 2 or 3", repr(dims))
        check_choice(function, "norm", norm, NORMS)
        self.in_channels, self.num_classes = in_channels, num_classes
        self.dims, self.depth, self.base_width, self.norm = dims, depth, base_width, norm
        widths = [base_width * 2 ** level for level in range(depth + 1)]
        pool = nn.MaxPool2d if dims == 2 else nn.MaxPool3d
        up = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.pool = pool(2)
        self.down = nn.ModuleList(
            _Block(dims, in_channels if level == 0 else widths[level - 1], widths[level], norm)
            for level in range(depth + 1))
        self.upsample = nn.ModuleList(up(widths[level + 1], widths[level], 2, stride=2)
                                      for level in reversed(range(depth)))
        self.up = nn.ModuleList(_Block(dims, 2 * widths[level], widths[level], norm)
                                for level in reversed(range(depth)))
        self.head = conv(widths[0], num_classes, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d,
                                   nn.ConvTranspose3d)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.dims + 2 or x.shape[1] != self.in_channels:
            raise fail("UNet.forward", "x", f"have shape (N, {self.in_channels}, "
                       f"{', '.join('DHW'[-self.dims:])})", tuple(x.shape))
        spatial = x.shape[2:]
        multiple = 2 ** self.depth
        padding = [(-size) % multiple for size in spatial]
        if any(padding):
            # F.pad lists (before, after) pairs from the last axis backwards
            x = F.pad(x, [amount for p in reversed(padding) for amount in (0, p)])
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for upsample, block in zip(self.upsample, self.up, strict=True):
            x = block(torch.cat([skips.pop(), upsample(x)], dim=1))
        logits = self.head(x)
        if any(padding):
            logits = logits[(..., *(slice(0, size) for size in spatial))]
        return logits
