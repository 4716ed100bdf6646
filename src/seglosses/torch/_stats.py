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
    """Σ_c t_ic a_nc → (N, S).

    For (N, C, S) a loop of fused multiply-adds over the classes reads ``t`` once and beats a
    batched matrix-vector product (whose inner dimension C is tiny) by 3-5x on the CPU.
    """
    if axis == 2 or t.shape[1] > 64:
        return torch.einsum("ncs,nc->ns" if axis == 1 else "nsc,nc->ns", t, a)
    out = t[:, 0] * a[:, :1]
    for c in range(1, t.shape[1]):
        out.addcmul_(t[:, c], a[:, c:c + 1])
    return out


def _weighted_class_sum(t: torch.Tensor, w: torch.Tensor | None, axis: int) -> torch.Tensor:
    """Σ_c w_c t_ic → (N, S)."""
    if w is None:
        return t.sum(dim=axis)
    return torch.einsum("ncs,c->ns" if axis == 1 else "nsc,c->ns", t, w)


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
        bins = _class_bins(labels, num_classes)
        ts = _bin_classes(bins, labels, v, num_classes, like=logp)
        if want_stats:
            p_y = p.gather(axis, by_label).squeeze(axis)
            tp = _bin_classes(bins, labels, p_y if v is None else p_y * v, num_classes)
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


def _index_forward(x, labels, v, w, eps, axis, want_ce, want_stats):
    """Forward of an index map with as few passes over the logits as torch allows.

    With statistics one softmax ``p`` serves both terms and is kept for the backward:
    ``lse = max_c x - log(max_c p)`` (``max_c p >= 1/C`` never underflows) gives
    ``log p_y = x_y - lse`` without a log-softmax pass, and ``p_y = exp(log p_y)``.
    Cross-entropy alone keeps ``lse`` instead (returned in ``p_y``'s place).
    Returns ``ce, tp, ps, ts, p_y, p``.
    """
    num_classes = x.shape[axis]
    by_label = labels.unsqueeze(axis)
    ce = tp = ps = ts = p_y = p = None
    logp_sum = None
    if want_stats:
        p = torch.softmax(x, axis)
        ps = _class_sum(p, v, axis)
        lse = x.amax(axis) - torch.log(p.amax(axis))
        logp_y = x.gather(axis, by_label).squeeze(axis) - lse
        p_y = torch.exp(logp_y)
        bins = _class_bins(labels, num_classes)
        tp = _bin_classes(bins, labels, p_y if v is None else p_y * v, num_classes)
        ts = _bin_classes(bins, labels, v, num_classes, like=x)
        if want_ce and eps:
            logp_sum = _weighted_class_sum(x, w, axis) - lse * (num_classes if w is None
                                                                else w.sum())
    else:
        logp = torch.log_softmax(x, axis)
        logp_y = logp.gather(axis, by_label).squeeze(axis)
        logp_sum = _weighted_class_sum(logp, w, axis) if eps else None
        # keep only lse (1/C of the logits): backward rebuilds p = exp(x - lse) in place,
        # one pass cheaper than a second softmax
        first = logp.select(axis, 0)
        lse = x.select(axis, 0) - first
        del logp, first
        p_y = lse  # carried to backward in p_y's slot
    if want_ce:
        ce = -logp_y if w is None else -logp_y * w[labels]
        if eps:
            ce = ce * (1 - eps) - (eps / num_classes) * logp_sum
        if v is not None:
            ce = ce * v
    return ce, tp, ps, ts, p_y, p


def _class_bins(labels, num_classes):
    """Flat (image, class) bin of every pixel: ``n·C + y``."""
    offsets = torch.arange(labels.shape[0], device=labels.device).unsqueeze(1) * num_classes
    return (labels + offsets).flatten()


def _bin_classes(bins, labels, values, num_classes, like=None):
    """Σ_i values_i [y_i = c] per image → (N, C); ``values=None`` counts (dtype of ``like``).

    A 1-D ``scatter_add_`` into N·C bins: faster than ``bincount`` with weights on the CPU,
    and of fixed output size, so it traces under torch.compile.
    """
    n = labels.shape[0]
    if values is None:
        values = torch.ones(labels.shape, dtype=like.dtype, device=labels.device)
    out = torch.zeros(n * num_classes, dtype=values.dtype, device=labels.device)
    # out of place (the bins are tiny): torch.func.vmap cannot scatter into an unbatched out
    return out.scatter_add(0, bins, values.flatten()).view(n, num_classes)


class FusedSoftmax(torch.autograd.Function):
    """Softmax cross-entropy and region statistics from one activation, analytic backward.

    With statistics the softmax is computed once and saved (it replaces the logits among the
    saved tensors); cross-entropy alone saves the logits and recomputes it, as it needs
    nothing else.
    """

    @staticmethod
    def forward(ctx, x, labels, dense, v, w, label_smoothing, axis, want_ce, want_stats,
                want_l1, function):
        p_y = p = None
        if labels is not None:
            ce, tp, ps, ts, p_y, p = _index_forward(x, labels, v, w, label_smoothing, axis,
                                                    want_ce, want_stats)
            l1 = None
        else:
            problem = Multiclass(x, axis, labels, dense, v, w, (), None)
            logp = torch.log_softmax(x, axis)
            p = logp.exp() if want_stats else None
            ce, tp, ps, ts, l1 = softmax_terms(logp, p, problem, label_smoothing=label_smoothing,
                                               want_ce=want_ce, want_stats=want_stats,
                                               want_l1=want_l1)
            del logp
        saved = (x if p is None else p, labels, dense, v, w, p_y)
        ctx.present = tuple(t is not None for t in saved)  # torch.compile wants no None here
        ctx.save_for_backward(*[t for t in saved if t is not None])
        ctx.options = (label_smoothing, axis, want_ce, want_stats, want_l1, p is not None)
        ctx.function = function
        ctx.set_materialize_grads(False)
        outputs = [x.new_zeros(0) if t is None else t for t in (ce, tp, ps, ts, l1)]
        ctx.mark_non_differentiable(outputs[3])
        return tuple(outputs)

    @staticmethod
    def backward(ctx, g_ce, g_tp, g_ps, g_ts, g_l1):
        if torch.is_grad_enabled() and not torch.compiler.is_compiling():
            # create_graph=True: the analytic gradient is not itself differentiable
            raise RuntimeError(
                f"{ctx.function}: the gradient with respect to logits cannot be differentiated "
                "again (create_graph=True, double backward). Pass probabilities instead, "
                f"{ctx.function}(torch.softmax(logits, class_dim), target, from_logits=False): "
                "that path is plain autograd and supports it.")
        stored, saved = list(ctx.saved_tensors), []
        for kept in ctx.present:
            saved.append(stored.pop(0) if kept else None)
        x_or_p, labels, dense, v, w, p_y = saved
        eps, axis, want_ce, want_stats, want_l1, saved_softmax = ctx.options
        num_classes = x_or_p.shape[axis]
        g_ce = g_ce if want_ce else None
        stats = want_stats and (g_tp is not None or g_ps is not None or g_l1 is not None)
        if g_ce is None and not stats:
            return (None,) * 11
        # a recomputed softmax may become the gradient in place; a saved one must survive
        # (backward may run twice with retain_graph=True)
        if saved_softmax:
            p = x_or_p
        elif labels is not None:  # p_y holds lse here (see _index_forward)
            p = torch.sub(x_or_p, p_y.unsqueeze(axis)).exp_()
            p_y = None
        else:
            p = torch.softmax(x_or_p, axis)
        gv = None if g_ce is None else (g_ce if v is None else g_ce * v)
        zeros_nc = p.new_zeros(p.shape[0], num_classes)
        a = g_ps if g_ps is not None else zeros_nc
        b = g_tp if g_tp is not None else zeros_nc
        if labels is not None:
            grad = _index_backward(p, not saved_softmax, p_y, labels, v, w, gv, a, b, stats,
                                   eps, axis)
        else:
            c = g_l1 if (want_l1 and g_l1 is not None) else None
            grad = _dense_backward(p, dense, v, w, gv, a, b, c, stats, eps, axis)
        return (grad,) + (None,) * 10


def _index_backward(p, inplace, p_y, labels, v, w, gv, a, b, stats, eps, axis):
    """dX for an index map: ``p_ik (coef_i + v_i a_nk)`` plus the terms at ``k = y_i``."""
    num_classes = p.shape[axis]
    by_label = labels.unsqueeze(axis)
    coef = at_label = None  # (N, S) factor of p_ik, and the extra term at k = y_i
    if gv is not None:
        w_y = 1.0 if w is None else w[labels]
        w_total = float(num_classes) if w is None else w.sum()
        coef = gv * ((1 - eps) * w_y + (eps / num_classes) * w_total)
        at_label = -gv * ((1 - eps) * w_y)
    if stats:
        own = b.gather(1, labels) * p_y
        s = _pixel_dot(p, a, axis) + own
        if v is not None:
            s, own = s * v, own * v
        coef = -s if coef is None else coef - s
        at_label = own if at_label is None else at_label + own
        grad = _scale_by_class(p, a, v, coef, axis, inplace)
    else:
        grad = p.mul_(_per_pixel(coef, axis)) if inplace else p * _per_pixel(coef, axis)
    if gv is not None and eps:
        if w is None:
            grad.add_(_per_pixel(gv, axis), alpha=-eps / num_classes)
        else:
            grad.addcmul_(_per_pixel(gv, axis), _class_vector(w, axis), value=-eps / num_classes)
    return grad.scatter_add_(axis, by_label, at_label.unsqueeze(axis))


def _scale_by_class(p, a, v, coef, axis, inplace):
    """``p_ik (coef_i + v_i a_nk)`` without a temporary of the logits' size.

    For (N, C, S) the factor is built one class at a time in an (N, S) buffer; otherwise (or
    while torch.compile traces, which prefers no ``out=`` into views) it is broadcast.
    """
    num_classes = p.shape[axis]
    if axis == 1 and num_classes <= 256 and not torch.compiler.is_compiling():
        out = p if inplace else torch.empty_like(p)
        factor = torch.empty_like(coef)
        for c in range(num_classes):
            if v is None:
                torch.add(coef, a[:, c:c + 1], out=factor)
            else:
                torch.addcmul(coef, v, a[:, c:c + 1], out=factor)
            torch.mul(p[:, c], factor, out=out[:, c])
        return out
    scale = _per_class(a, axis) * (1.0 if v is None else _per_pixel(v, axis))
    scale = scale + _per_pixel(coef, axis)
    return p.mul_(scale) if inplace else p * scale


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
                     want_stats: bool, want_l1: bool = False, function: str = "loss"):
    """Dispatch to the fused logits path or the autograd probability path (also for logits
    under torch.func transforms, which cannot see through an autograd.Function's backward)."""
    if problem.probabilities is None and torch._C._are_functorch_transforms_active():
        logp = torch.log_softmax(problem.x, problem.axis)
        return softmax_terms(logp, logp.exp(), problem, label_smoothing=label_smoothing,
                             want_ce=want_ce, want_stats=want_stats, want_l1=want_l1)
    if problem.probabilities is None:
        ce, tp, ps, ts, l1 = FusedSoftmax.apply(
            problem.x, problem.labels, problem.dense, problem.v, problem.class_weights,
            label_smoothing, problem.axis, want_ce, want_stats, want_l1, function)
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
