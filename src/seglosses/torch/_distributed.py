"""Sums across the ranks of the default ``torch.distributed`` process group.

``aggregate="global"`` sums statistics over every rank. The forward is an all-reduce (every
rank then holds the same value); its backward all-reduces the incoming gradients too, so each
rank's gradient is ``world_size`` times its share of the global loss's gradient and DDP's
gradient *averaging* yields exactly the single-process gradient (nnU-Net's convention).
Without an initialised group, or with one rank, every function here is the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    if not dist.is_available() or not dist.is_initialized():
        return 1
    return dist.get_world_size()


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor):
        out = tensor.detach().clone().contiguous()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone().contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def global_sum(tensor: torch.Tensor, *, differentiable: bool = True) -> torch.Tensor:
    """Σ over ranks of ``tensor`` (same shape on every rank); identity on one process."""
    if world_size() == 1:
        return tensor
    if differentiable and tensor.requires_grad:
        return _AllReduceSum.apply(tensor)
    out = tensor.detach().clone().contiguous()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out
