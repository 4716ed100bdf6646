"""The expensive part on the torch path: per-pixel cross-entropy and per-(image, class) statistics.

Notation (multiclass, one image n, pixel i, class c): ``p = softmax(x)``, target ``t`` (one-hot or
soft, never materialised for index maps), ``q`` the label-smoothed target, ``v_i`` the pixel weight
(0 at ignored pixels), ``w_c`` class weights. The engine returns

* ``ce_i = v_i Σ_c w_c q_ic (-log p_ic)``,
* ``TP_nc = Σ_i v_i p_ic t_ic``, ``PS_nc = Σ_i v_i p_ic``, ``TS_nc = Σ_i v_i t_ic``,
* ``L1_nc = Σ_i v_i |p_ic - t_ic|`` (only for ``soft_label`` on soft targets).

``FP = PS - TP`` and ``FN = TS - TP`` follow, so index targets need only a gather and a
scatter-add. :class:`FusedSoftmax` computes all of it from one ``log_softmax`` and writes the
gradient analytically: backward recomputes ``p`` and turns it into ``dX`` in place,

    dX_ik = p_ik (g_i v_i W_i - s_i + v_i A_nk) - g_i v_i w_k q_ik + v_i B_nk t_ik p_ik,

with ``g`` the upstream gradient of ``ce``, ``A``/``B`` those of ``PS``/``TP``,
``W_i = Σ_c w_c q_ic`` and ``s_i = Σ_k p_ik v_i (A_nk + B_nk t_ik)`` (softmax backward). Peak
memory is the gradient plus one temporary of the logits' size; autograd through the same ops
would keep three to five.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._targets import Multiclass, Sigmoid


def _per_class(t: torch.Tensor, axis: int) -> torch.Tensor:
    """(N, C) → broadcastable against the 3-D arrangement."""
    return t.unsqueeze(2) if axis == 1 else t.unsqueeze(1)


def _per_pixel(t: torch.Tensor, axis: int) -> torch.Tensor:
    """(N, S) → broadcastable against the 3-D arrangement."""
    return t.unsqueeze(axis)


def _class_vector(w: torch.Tensor, axis: int) -> torch.Tensor:
    return w.view(1, -1, 1) if axis == 1 else w.view(1, 1, -1)


def _class_sum(t: torch.Tensor, v: torch.Tensor | None, axis: int) -> torch.Tensor:
    """Σ_i v_i t_ic → (N, C) (a batched matrix product: no temporary)."""
    if v is None:
        return t.sum(dim=3 - axis)
    return torch.einsum("ncs,ns->nc" if axis == 1 else "nsc,ns->nc", t, v)


def _pixel_dot(t: torch.Tensor, a: torch.Tensor, axis: int) -> torch.Tensor:
    """Σ_c t_ic a_nc → (N, S)."""
    return torch.einsum("ncs,nc->ns" if axis == 1 else "nsc,nc->ns", t, a)


def _weighted_class_sum(t: torch.Tensor, w: torch.Tensor | None, axis: int) -> torch.Tensor:
    """Σ_c w_c t_ic → (N, S)."""
    if w is None:
        return t.sum(dim=axis)
    return torch.einsum("ncs,c->ns" if axis == 1 else "nsc,c->ns", t, w)


def _scatter_classes(labels: torch.Tensor, values: torch.Tensor | None,
                     num_classes: int) -> torch.Tensor:
    """Σ_i values_i [y_i = c] → (N, C): a bincount per image that traces under compile."""
    if values is None:
        values = torch.ones(labels.shape, dtype=torch.get_default_dtype()
                            if not labels.is_floating_point() else labels.dtype,
                            device=labels.device)
    out = torch.zeros(labels.shape[0], num_classes, dtype=values.dtype, device=labels.device)
    return out.scatter_add(1, labels, values)


def softmax_terms(logp: torch.Tensor, p: torch.Tensor | None, problem: Multiclass, *,
                  label_smoothing: float, want_ce: bool, want_stats: bool, want_l1: bool):
    """The engine's forward quantities from log-probabilities ``logp`` (and ``p`` for stats).

    Out-of-place ops only, so it is differentiable by autograd (the ``from_logits=False`` path)
    and also serves as :class:`FusedSoftmax`'s forward.
    """
    axis, v, w = problem.axis, problem.v, problem.class_weights
    num_classes = logp.shape[axis]
    eps = label_smoothing
    ce = tp = ps = l1 = None
    if problem.labels is not None:
        labels = problem.labels
        by_label = labels.unsqueeze(axis)
        if want_ce:
            logp_y = logp.gather(axis, by_label).squeeze(axis)
            ce = -logp_y if w is None else -logp_y * w[labels]
            if eps:
                ce = ce * (1 - eps) - (eps / num_classes) * _weighted_class_sum(logp, w, axis)
            if v is not None:
                ce = ce * v
        ts = _scatter_classes(labels, v if v is not None else
                              torch.ones(labels.shape, dtype=logp.dtype, device=logp.device),
                              num_classes)
        if want_stats:
            p_y = p.gather(axis, by_label).squeeze(axis)
            tp = _scatter_classes(labels, p_y if v is None else p_y * v, num_classes)
            ps = _class_sum(p, v, axis)
    else:
        t = problem.dense
        if want_ce:
            q = t if not eps else t * (1 - eps) + eps / num_classes
            if w is not None:
                q = q * _class_vector(w, axis)
            ce = -(q * logp).sum(axis)
            if v is not None:
                ce = ce * v
        ts = _class_sum(t, v, axis)
        if want_stats:
            tp = _class_sum(p * t, v, axis)
            ps = _class_sum(p, v, axis)
            if want_l1:
                l1 = _class_sum((p - t).abs(), v, axis)
    return ce, tp, ps, ts, l1


class FusedSoftmax(torch.autograd.Function):
    """Softmax cross-entropy and region statistics from one activation, analytic backward."""

    @staticmethod
    def forward(ctx, x, labels, dense, v, w, label_smoothing, axis, want_ce, want_stats,
                want_l1):
        problem = Multiclass(x, axis, labels, dense, v, w, (), None)
        logp = torch.log_softmax(x, axis)
        p = logp.exp() if want_stats else None
        ce, tp, ps, ts, l1 = softmax_terms(logp, p, problem, label_smoothing=label_smoothing,
                                           want_ce=want_ce, want_stats=want_stats,
                                           want_l1=want_l1)
        del logp, p
        saved = (x, labels, dense, v, w)
        ctx.present = tuple(t is not None for t in saved)  # torch.compile wants no None here
        ctx.save_for_backward(*[t for t in saved if t is not None])
        ctx.options = (label_smoothing, axis, want_ce, want_stats, want_l1)
        ctx.set_materialize_grads(False)
        outputs = [x.new_zeros(0) if t is None else t for t in (ce, tp, ps, ts, l1)]
        ctx.mark_non_differentiable(outputs[3])
        return tuple(outputs)

    @staticmethod
    def backward(ctx, g_ce, g_tp, g_ps, g_ts, g_l1):
        stored, saved = list(ctx.saved_tensors), []
        for kept in ctx.present:
            saved.append(stored.pop(0) if kept else None)
        x, labels, dense, v, w = saved
        eps, axis, want_ce, want_stats, want_l1 = ctx.options
        num_classes = x.shape[axis]
        g_ce = g_ce if want_ce else None
        stats = want_stats and (g_tp is not None or g_ps is not None or g_l1 is not None)
        if g_ce is None and not stats:
            return (None,) * 10
        p = torch.softmax(x, axis)
        gv = None if g_ce is None else (g_ce if v is None else g_ce * v)
        zeros_nc = x.new_zeros(x.shape[0], num_classes)
        a = g_ps if g_ps is not None else zeros_nc
        b = g_tp if g_tp is not None else zeros_nc
        if labels is not None:
            grad = _index_backward(p, labels, v, w, gv, a, b, stats, eps, axis)
        else:
            c = g_l1 if (want_l1 and g_l1 is not None) else None
            grad = _dense_backward(p, dense, v, w, gv, a, b, c, stats, eps, axis)
        return (grad,) + (None,) * 9


def _index_backward(p, labels, v, w, gv, a, b, stats, eps, axis):
    """dX for an index map; ``p`` is overwritten with the result (one temporary at most)."""
    num_classes = p.shape[axis]
    by_label = labels.unsqueeze(axis)
    coef = at_label = None  # (N, S) factor of p_ik, and the extra term at k = y_i
    if gv is not None:
        w_y = 1.0 if w is None else w[labels]
        w_total = float(num_classes) if w is None else w.sum()
        coef = gv * ((1 - eps) * w_y + (eps / num_classes) * w_total)
        at_label = -gv * ((1 - eps) * w_y)
    if stats:
        p_y = p.gather(axis, by_label).squeeze(axis)
        b_y = b.gather(1, labels)
        own = b_y * p_y
        s = _pixel_dot(p, a, axis) + own
        if v is not None:
            s, own = s * v, own * v
        coef = -s if coef is None else coef - s
        at_label = own if at_label is None else at_label + own
        scale = _per_class(a, axis) * (1.0 if v is None else _per_pixel(v, axis))
        scale = scale + _per_pixel(coef, axis)
        grad = p.mul_(scale)
        del scale
    else:
        grad = p.mul_(_per_pixel(coef, axis))
    if gv is not None and eps:
        if w is None:
            grad.add_(_per_pixel(gv, axis), alpha=-eps / num_classes)
        else:
            grad.addcmul_(_per_pixel(gv, axis), _class_vector(w, axis), value=-eps / num_classes)
    return grad.scatter_add_(axis, by_label, at_label.unsqueeze(axis))


def _dense_backward(p, t, v, w, gv, a, b, c, stats, eps, axis):
    """dX for a one-hot / soft target (the target is full-size already, so temporaries are)."""
    num_classes = p.shape[axis]
    g = None
    if stats:
        g = _per_class(a, axis) + _per_class(b, axis) * t
        if c is not None:
            g = g + _per_class(c, axis) * torch.sign(p - t)
        if v is not None:
            g = g * _per_pixel(v, axis)
        g = g - _per_pixel((p * g).sum(axis), axis)
    if gv is not None:
        q = t if not eps else t * (1 - eps) + eps / num_classes
        if w is not None:
            q = q * _class_vector(w, axis)
        g_ce = _per_pixel(gv * q.sum(axis), axis)
        g = g_ce if g is None else g + g_ce
        return p * g - q * _per_pixel(gv, axis)
    return p * g


def multiclass_terms(problem: Multiclass, *, label_smoothing: float, want_ce: bool,
                     want_stats: bool, want_l1: bool = False):
    """Dispatch to the fused logits path or the autograd probability path."""
    if problem.probabilities is None:
        ce, tp, ps, ts, l1 = FusedSoftmax.apply(
            problem.x, problem.labels, problem.dense, problem.v, problem.class_weights,
            label_smoothing, problem.axis, want_ce, want_stats, want_l1)
        return (ce if want_ce else None, tp if want_stats else None,
                ps if want_stats else None, ts, l1 if want_l1 else None)
    p = problem.probabilities
    return softmax_terms(torch.log(p), p, problem, label_smoothing=label_smoothing,
                         want_ce=want_ce, want_stats=want_stats, want_l1=want_l1)


def sigmoid_parts(problem: Sigmoid, from_logits: bool):
    """``p``, ``log p`` and ``log(1 - p)`` of a sigmoid problem (differentiable)."""
    x = problem.x
    if from_logits:
        return torch.sigmoid(x), -F.softplus(-x), -F.softplus(x)
    return x, torch.log(x), torch.log1p(-x)


def binary_terms(problem: Sigmoid, logp, log1mp):
    """Elementwise BCE ``-(a_c y log p + b_c (1 - y) log(1 - p))``, unweighted by ``v``."""
    y = problem.smoothed
    positive = -(y * logp)
    negative = -((1 - y) * log1mp)
    if problem.positive_weights is not None:
        positive = positive * problem.positive_weights
    if problem.negative_weights is not None:
        negative = negative * problem.negative_weights
    return positive + negative


def sigmoid_stats(problem: Sigmoid, p, want_l1: bool):
    """TP, PS, TS (and L1) per (image, channel) → (N, C) each."""
    dims = tuple(a for a in range(p.ndim) if a not in (0, problem.class_dim))
    t, v = problem.target, problem.v
    pv = p if v is None else p * v
    tv = t if v is None else t * v
    tp = (pv * t).sum(dims)
    ps = pv.sum(dims)
    ts = tv.sum(dims) if tv.ndim == p.ndim else tv.expand_as(p).sum(dims)
    l1 = None
    if want_l1:
        diff = (p - t).abs()
        l1 = (diff if v is None else diff * v).sum(dims)
    return tp, ps, ts, l1
