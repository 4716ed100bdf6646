r"""Softmax kernels: cross-entropy / focal per pixel and the region statistics, with dX.

The logits arrive as the engine's 3-D view ``(N, C, S)`` or ``(N, S, C)`` in their own dtype;
targets as an index map ``(N, S)`` in its own integer dtype (uint8 … int64, never converted)
or a one-hot / soft tensor of the logits' arrangement. One program owns ``BLOCK`` pixels of
one image and walks the classes one at a time, so each pixel's class vector stays in the
thread that owns it and any C fits (the registers hold one class at a time). Where a
thread's share fits (``_common.held_classes``: C up to ~40 at one pixel per thread) the
kernel is specialised to C instead: the first walk loads every class at once and holds the
values, so the later walks read no memory and the logits are read once. A statistics pass
over few enough classes (``_common.stats_walk``: 3 accumulators per class and pixel held too)
has its own kernel, ``_softmax_stats_kernel``, which walks its block a step of pixels at a
time and reduces its statistics once per program:

1. ``lse = log Σ_c exp(x_c)``, one exponential per logit: over held classes the max first
   and e_c = exp(x_c - max) kept (p_c = e_c / Σe later); otherwise the online (max, sum)
   recurrence;
2. per class: ``p_c = exp(x_c - lse)``, the pixel term
   ``a_c q_c (1 - p_c)^γ (lse - x_c)`` (``q`` the smoothed target, ``a`` the class scale,
   γ = 0 for cross-entropy), the statistics ``Σ v p t, Σ v p, Σ v t, Σ v |p - t|`` and, when a
   gradient is wanted, ``r_c = p_c ∂F/∂p_c`` summed over the classes;
3. (gradient only) ``dX_c = r_c - p_c Σ_k r_k`` — the softmax Jacobian applied without
   ever forming it.

With a reduced pixel loss and nothing else (``cross_entropy``/``focal_loss`` with ``"mean"`` or
``"sum"``) the gradient of the *normalised* loss is written in the same pass (its normaliser
is a device scalar computed before the launch) and backward only scales it by grad_output,
in place, on the device. Otherwise the forward writes the per-pixel terms and statistics and
backward re-reads the logits once with the coefficient table
``A = ∂L/∂ΣVP, B = ∂L/∂ΣVPT, L1 = ∂L/∂Σv|p-t|`` and the per-pixel upstream gradient.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    COMPILER,
    LOG2E,
    absent,
    accumulate_dtype,
    coefficient_table,
    comparable_ignore,
    dense_rows,
    differentiable,
    distinct_outputs,
    dummy,
    exp2,
    fast_exp,
    fast_log,
    focal_power,
    fused_backward,
    geometry,
    held_classes,
    ignore_values,
    inverse_normaliser,
    is_eager,
    label_status,
    load_params,
    logit_rows,
    ncs_strides,
    params,
    pixel_strides,
    pixel_tile,
    result_dtype,
    setup_fused,
    shifted_blocks,
    statistics_slope,
    statistics_sums,
    stats_walk,
    store_statistics,
    tensor_device,
    tile_at,
    whole_rows,
)

PIXEL_NONE, PIXEL_EACH, PIXEL_SUM = 0, 1, 2
GRAD_NONE, GRAD_BACKWARD, GRAD_FUSED = 0, 1, 2


@triton.jit
def _focal_factors(p, neg_log_p, gamma, tiny):
    """``(m, φ)`` of the focal term ``-q m log p``, m = ``(1 - p)^γ``: ``p ∂/∂p`` of the term
    is ``-q φ``, φ = ``m + γ p (1 - p)^(γ-1) (-log p)`` (1 - p floored at ``tiny``)."""
    rest = tl.maximum(1.0 - p, tiny)
    modulation = focal_power(rest, gamma)
    slope = tl.where(1.0 - p > tiny, gamma * p * (modulation / rest), 0.0)
    return modulation, modulation + slope * neg_log_p


@triton.jit
def _term(q, p, neg_log_p, gamma, tiny, FOCAL: tl.constexpr):
    """The pixel term ``q m (-log p)`` of one class (q: smoothed target times class scale,
    m = ``(1 - p)^γ`` for focal, 1 for cross-entropy) and ``p ∂/∂p`` of it per unit of
    upstream gradient (``-q`` for cross-entropy)."""
    if FOCAL:
        modulation, factor = _focal_factors(p, neg_log_p, gamma, tiny)
        return q * modulation * neg_log_p, -q * factor
    return q * neg_log_p, -q


@triton.jit
def _smoothed(t, c, eps, smooth_share, scale_ptr, ACC: tl.constexpr, HAS_SCALE: tl.constexpr):
    """``a_c q_c``: the smoothed target of class c times its class scale."""
    q = t * (1.0 - eps) + smooth_share
    if HAS_SCALE:
        q = q * tl.load(scale_ptr + c).to(ACC)
    return q


@triton.jit
def _target_at(t_at, held, label, c, inside, INDEX: tl.constexpr, HELD: tl.constexpr,
               ACC: tl.constexpr):
    """The target of class c: one-hot from the label, the held value, or the one-hot / soft
    target loaded at ``t_at`` (class c's row)."""
    if INDEX:
        return (label == c).to(ACC)
    elif HELD:
        return held[c].to(ACC)
    else:
        return tl.load(t_at, mask=inside, other=0.0).to(ACC)


@triton.jit
def _pixel_sums(q_sum, qx_sum, x, t, c, eps, smooth_share, scale_ptr, ACC: tl.constexpr,
                HAS_SCALE: tl.constexpr, WANT_LOSS: tl.constexpr, CE_GRAD: tl.constexpr):
    """Class c's share of ``Σ a q`` and ``Σ a q x`` (the loss is ``lse Σ a q - Σ a q x``)."""
    if WANT_LOSS or CE_GRAD:
        q = _smoothed(t, c, eps, smooth_share, scale_ptr, ACC, HAS_SCALE)
        q_sum += q
        if WANT_LOSS:
            qx_sum += q * x
    return q_sum, qx_sum


@triton.jit
def _held_dx(e, inverse, r_total, t, label, c, v, gv, eps, smooth_share, scale_ptr, slopes,
             ACC: tl.constexpr, INDEX: tl.constexpr, HAS_SCALE: tl.constexpr,
             CE_GRAD: tl.constexpr, HAS_COEF: tl.constexpr):
    """dX of held class c when r_c = v p_c s_c - g v a_c q_c (no second walk):
    ``p_c (v s_c - Σ r) - g v a_c q_c`` with p_c = e_c * inverse, so cross-entropy alone
    costs a compare, a select and one FFMA per logit (``slopes``: `_held_slopes`)."""
    if HAS_COEF:  # (inverse v and inverse Σ r are common to all classes)
        dx = e * ((inverse * v) * _held_slope(slopes, c, t, label, INDEX) - inverse * r_total)
    else:
        dx = e * (-inverse * r_total)
    if CE_GRAD:
        if INDEX:  # q_c = 1 - eps + eps / C at the label, eps / C elsewhere
            gq = tl.where(label == c, gv * (1.0 - eps + smooth_share), gv * smooth_share)
        else:
            gq = gv * (t * (1.0 - eps) + smooth_share)
        if HAS_SCALE:
            gq = gq * tl.load(scale_ptr + c).to(ACC)
        dx -= gq
    return dx


@triton.jit
def _walk(running_max, running_sum, q_sum, qx_sum, slope_sum, x, t, c, n, N, C, eps,
          smooth_share, scale_ptr, coef_ptr, ACC: tl.constexpr, HAS_SCALE: tl.constexpr,
          SUMS: tl.constexpr, WANT_LOSS: tl.constexpr, CE_GRAD: tl.constexpr,
          HAS_COEF: tl.constexpr):
    """One class of the log-sum-exp walk: the online (max, sum) recurrence with one exp, and
    (``SUMS``, no second pass) what the loss and Σ_c r_c need: Σ a q, Σ a q x and
    Σ e^(x - max) s, rescaled with the running sum."""
    shift = x - running_max
    e = fast_exp(-tl.abs(shift))  # e^(min - max) of (x, running max)
    grows = shift > 0
    running_sum = tl.where(grows, running_sum * e + 1.0, running_sum + e)
    running_max = tl.maximum(running_max, x)
    if SUMS:
        q_sum, qx_sum = _pixel_sums(q_sum, qx_sum, x, t, c, eps, smooth_share, scale_ptr, ACC,
                                    HAS_SCALE, WANT_LOSS, CE_GRAD)
        if HAS_COEF:  # s_c = A + B t (no L1 term here); the p argument is unused
            slope = statistics_slope(coef_ptr, n, N, C, c, c < C, x, t, ACC, False)
            slope_sum = tl.where(grows, slope_sum * e + slope, slope_sum + e * slope)
    return running_max, running_sum, q_sum, qx_sum, slope_sum


@triton.jit
def _class_grad(x, p, lse, t, c, v, gv, n, N, C, P, block, eps, smooth_share, scale_ptr,
                coef_ptr, part_ptr, gamma, tiny, ACC: tl.constexpr, HAS_SCALE: tl.constexpr,
                FOCAL: tl.constexpr, CE_GRAD: tl.constexpr, HAS_COEF: tl.constexpr,
                WANT_LOSS: tl.constexpr, STATS: tl.constexpr, L1: tl.constexpr):
    """``(pixel term, r_c = p_c ∂F/∂p_c)`` of class c with probability ``p`` (both 0 where
    not wanted); with ``STATS`` it also stores the class's statistics of this program."""
    term = tl.zeros_like(x)
    r = tl.zeros_like(x)
    if WANT_LOSS or CE_GRAD:
        q = _smoothed(t, c, eps, smooth_share, scale_ptr, ACC, HAS_SCALE)
        term, r_ce = _term(q, p, lse - x, gamma, tiny, FOCAL)
        if CE_GRAD:
            r += gv * r_ce
    if HAS_COEF:
        r += v * p * statistics_slope(coef_ptr, n, N, C, c, c < C, p, t, ACC, L1)
    if STATS:
        store_statistics(part_ptr, (n * C + c) * P + block, N * C * P, v, p, t, L1)
    return term, r


@triton.jit
def _pixel_inputs(v_ptr, t_row, n, svn, svs, pixels, inside, C, ignore_ptr, ACC: tl.constexpr,
                  INDEX: tl.constexpr, IGNORE: tl.constexpr, HAS_V: tl.constexpr):
    """``(v, label, labelled)`` of a block of pixels: the pixel weight (0 outside the image
    and at an ignored label, NaN at a label outside [0, C) that is not ignored, possible only
    with validate=False, as on the torch path), the index label as int32 (0 for a one-hot /
    soft target) and where that label may address a class."""
    if HAS_V:
        v = tl.load(v_ptr + n * svn + pixels * svs, mask=inside, other=0.0).to(ACC)
    else:
        v = inside.to(ACC)
    label = tl.zeros_like(pixels).to(tl.int32)
    labelled = inside
    if INDEX:
        raw = tl.load(t_row, mask=inside, other=0)
        dropped, invalid = label_status(raw, C, ignore_ptr, IGNORE)
        v = tl.where(invalid, float("nan"), tl.where(dropped, 0.0, v))
        label = raw.to(tl.int32)
        labelled = inside & (raw >= 0) & (raw < C)
    return v, label, labelled


GATHER_CLASSES: tl.constexpr = tl.constexpr(8)


@triton.jit
def _held_slopes(coef_ptr, n, N, C, ACC: tl.constexpr, INDEX: tl.constexpr,
                 HELD: tl.constexpr):
    """Image n's row of the (3, N, C) coefficient table for ``HELD`` classes, the statistics'
    slope of class c being ``A_c + B_c t`` (no L1 term): ``(A_0, B_0, A_1, B_1, …)``, or
    for an index map (t is 0 or 1) ``(A_0, A_0 + B_0, …)``, so that the slope is a select.

    Loaded once per program, before any store: read at each of its two uses (Σ_c e_c s_c in
    the walk, then dX), each is loaded twice, since the dX stores between the uses might
    alias the table (bf16 C=19 Dice+CE gradient pass: 1108 -> 871 SASS instructions;
    with the select and `_held_walk`'s gathered B_label, 779 and 95 registers instead of
    112; benchmarks/static.py)."""
    slopes = ()
    row = coef_ptr + n * C
    for c in tl.static_range(HELD):
        a = tl.load(row + c).to(ACC)
        b = tl.load(row + N * C + c).to(ACC)
        if INDEX:
            b = a + b
        slopes = slopes + (a, b)
    return slopes


@triton.jit
def _held_slope(slopes, c: tl.constexpr, t, label, INDEX: tl.constexpr):
    """Held class c's statistics slope ``A_c + B_c t`` from `_held_slopes`."""
    if INDEX:
        return tl.where(label == c, slopes[2 * c + 1], slopes[2 * c])
    else:
        return slopes[2 * c] + slopes[2 * c + 1] * t


@triton.jit
def _block_pixels(block, S, BLOCK: tl.constexpr, start, SUB: tl.constexpr,
                  SHIFTED: tl.constexpr):
    """``(pixels as int64, inside)``: the ``SUB`` pixels at ``start`` of program ``block``'s
    ``BLOCK``, and which of them are the program's. With ``SHIFTED`` (S ≥ BLOCK) a block
    that would run past S starts at S - BLOCK instead: every pixel is in the image, so the
    loads of the logits need no mask (`_common.shifted_blocks`), and the pixels before the
    program's own start are not inside."""
    first = block * BLOCK
    if SHIFTED:
        pixels = tl.minimum(first, S - BLOCK) + start + tl.arange(0, SUB)
        inside = pixels >= first
    else:
        pixels = first + start + tl.arange(0, SUB)
        inside = pixels < S
    return pixels.to(tl.int64), inside


@triton.jit
def _held_walk(x_row, t_row, label, labelled, inside, sxc, stc, C, eps, smooth_share,
               scale_ptr, slopes, b_row, ACC: tl.constexpr, INDEX: tl.constexpr,
               HAS_SCALE: tl.constexpr, SUMS: tl.constexpr, WANT_LOSS: tl.constexpr,
               CE_GRAD: tl.constexpr, HAS_COEF: tl.constexpr, SMOOTH: tl.constexpr,
               HELD: tl.constexpr, SHIFTED: tl.constexpr):
    """Step 1 over ``HELD`` classes held in registers: every load first (HELD vectors in
    flight per thread, each logit read once), the max, then e_c = 2^((x_c - max) log2 e)
    kept. Returns ``(xs, ts, es, max, Σ e, Σ a q, Σ a q x, Σ e s)``: the logits as loaded
    and the targets (one-hot / soft; empty for an index map) as tuples, and with ``SUMS``
    what the loss and Σ_c r_c need without a second walk (``slopes``: `_held_slopes`;
    ``b_row``: image n's row of B in the coefficient table)."""
    zero = tl.zeros_like(inside).to(ACC)
    q_sum = zero
    qx_sum = zero
    slope_sum = zero
    x_label = zero
    if (SUMS and INDEX) and (not HAS_SCALE and WANT_LOSS):  # (triton 3.3: no chains)
        # the label's logit, read where the label is in [0, C) (the loss is then
        # lse - (1 - eps) x_label - eps / C Σ x, with no compare per class)
        x_label = tl.load(x_row + label.to(tl.int64) * sxc, mask=labelled, other=0.0).to(ACC)
    xs = ()
    ts = ()
    x_class = x_row
    t_class = t_row
    for _ in tl.static_range(HELD):  # held as loaded, widened to ACC where used
        if SHIFTED:  # every pixel of the block is in the image (`_block_pixels`)
            xs = xs + (tl.load(x_class),)
            if not INDEX:
                ts = ts + (tl.load(t_class),)
        else:
            xs = xs + (tl.load(x_class, mask=inside, other=0.0),)
            if not INDEX:
                ts = ts + (tl.load(t_class, mask=inside, other=0.0),)
        x_class += sxc
        t_class += stc
    running_max = xs[0].to(ACC)
    for c in tl.static_range(1, HELD):
        running_max = tl.maximum(running_max, xs[c].to(ACC))
    shift = running_max * LOG2E
    running_sum = zero
    es = ()
    for c in tl.static_range(HELD):
        x = xs[c].to(ACC)
        e = exp2(x * LOG2E - shift)
        es = es + (e,)
        running_sum += e
        if SUMS:
            t = _target_at(t_row, ts, label, c, inside, INDEX, HELD, ACC)
            if INDEX and not HAS_SCALE:  # Σ q x = (1 - eps) x_label + eps / C Σ x
                if WANT_LOSS and SMOOTH:
                    qx_sum += x
            else:
                q_sum, qx_sum = _pixel_sums(q_sum, qx_sum, x, t, c, eps, smooth_share,
                                            scale_ptr, ACC, HAS_SCALE, WANT_LOSS, CE_GRAD)
            if (HAS_COEF and INDEX) and HELD >= GATHER_CLASSES:  # Σ e_c A_c; then B_label
                slope_sum += e * slopes[2 * c]
            elif HAS_COEF:  # s_c = A + B t (no L1 term here)
                slope_sum += e * _held_slope(slopes, c, t, label, INDEX)
    if (SUMS and INDEX) and (HAS_COEF and HELD >= GATHER_CLASSES):
        # + e_label B_label, gathered: a compare per class here would be kept for dX's
        # (predicates saved to registers and restored, 2 instructions per logit: bf16 C=19
        # Dice+CE gradient pass 840 -> 779 SASS, 127 -> 95 registers; for few classes the
        # two gathers per pixel cost more than the compares: fp32 C=4 389 -> 444)
        x_at = tl.load(x_row + label.to(tl.int64) * sxc, mask=labelled, other=0.0).to(ACC)
        b_at = tl.load(b_row + label, mask=labelled, other=0.0).to(ACC)
        slope_sum += tl.where(labelled, exp2(x_at * LOG2E - shift), 0.0) * b_at
    if (SUMS and INDEX) and not HAS_SCALE:
        # Σ_c q_c = 1 wherever it counts: an ignored label's pixel has v = 0, an
        # out-of-range one is NaN (validate=False)
        q_sum = zero + 1.0
        if SMOOTH:
            qx_sum = (1.0 - eps) * x_label + smooth_share * qx_sum
        else:
            qx_sum = x_label
    return xs, ts, es, running_max, running_sum, q_sum, qx_sum, slope_sum


@triton.jit(do_not_specialize=["opaque"])
def _softmax_kernel(
        x_ptr, t_ptr, v_ptr, scale_ptr, g_ptr, coef_ptr, norm_ptr, pixel_ptr, part_ptr, dx_ptr,
        N, S, C, P,
        sxn, sxc, sxs, stn, stc, sts, svn, svs, sgn, sgs, sdn, sdc, sds,
        params_ptr, ignore_ptr, opaque,
        INDEX: tl.constexpr, IGNORE: tl.constexpr, HAS_V: tl.constexpr, HAS_SCALE: tl.constexpr,
        FOCAL: tl.constexpr, PIXEL: tl.constexpr, STATS: tl.constexpr, L1: tl.constexpr,
        GRAD: tl.constexpr, HAS_G: tl.constexpr, HAS_COEF: tl.constexpr,
        WANT_LOSS: tl.constexpr, CE_GRAD: tl.constexpr, SECOND: tl.constexpr,
        SUMS: tl.constexpr, SMOOTH: tl.constexpr, UPSTREAM: tl.constexpr, ACC: tl.constexpr,
        BLOCK: tl.constexpr,
        UNROLL: tl.constexpr, HELD: tl.constexpr, STRIDED: tl.constexpr):
    """``HELD`` = 0: the classes are walked from memory (any C; the later walks re-read the
    logits). ``HELD`` = C: the kernel is specialised to C classes and the first walk keeps
    every logit (and a one-hot / soft target) of its pixels in registers, so the logits are
    read once (``_common.held_classes`` decides).

    ``STRIDED``: the logits' pixel stride is not 1 (class-contiguous rows that take the class
    walk, ``_common.logit_rows``). The pixel strides of the maps beside them (labels or a
    dense target, v, the upstream gradient per pixel, the per-pixel loss) are then multiplied
    by ``opaque`` (1, never specialised), so the compiler loads them one pixel per thread as
    it loads the logits, instead of vectorising them and moving every per-pixel value
    between the two layouts through shared memory (bf16 C=19: 39 block barriers -> 1,
    benchmarks/static.py)."""
    sps = 1
    if STRIDED:
        sts = sts * opaque
        svs = svs * opaque
        sgs = sgs * opaque
        sps = opaque
    eps, gamma, tiny = load_params(params_ptr, ACC)
    block = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    pixels, inside = _block_pixels(block, S, BLOCK, 0, BLOCK, False)
    x_row = x_ptr + n * sxn + pixels * sxs
    t_row = t_ptr + n * stn + pixels * sts

    v, label, labelled = _pixel_inputs(v_ptr, t_row, n, svn, svs, pixels, inside, C,
                                       ignore_ptr, ACC, INDEX, IGNORE, HAS_V)
    gv = tl.zeros([BLOCK], ACC)
    if GRAD == 2:  # the normalised loss: upstream gradient 1 / normaliser
        g = inverse_normaliser(norm_ptr, ACC)
        gv = g * v
    elif CE_GRAD:
        gv = tl.load(g_ptr + n * sgn + pixels * sgs, mask=inside, other=0.0).to(ACC) * v
    if UPSTREAM:  # a backward pass alone: grad_output (at norm_ptr) scales all of dX
        upstream = tl.load(norm_ptr).to(ACC)
        v = v * upstream
        gv = gv * upstream
    smooth_share = eps / C
    # class scales over an index map without smoothing (and no second walk): a_c q_c is a_y
    # at the label and 0 elsewhere, so the label's scale, gathered once per pixel, multiplies
    # the pixel's loss and gv, and the walks below take no scale (CLASS_SCALE)
    LABEL_SCALE: tl.constexpr = (HAS_SCALE and INDEX) and not (SMOOTH or SECOND)
    CLASS_SCALE: tl.constexpr = HAS_SCALE and not LABEL_SCALE
    label_scale = 1.0
    if LABEL_SCALE:
        label_scale = tl.load(scale_ptr + label, mask=labelled, other=0.0).to(ACC)
        gv = gv * label_scale

    # 1. log-sum-exp, one exp per logit: over held classes the max first, then e_c =
    #    e^(x_c - max) (kept, so p_c = e_c / Σe later costs a multiply); over the class loop
    #    the online (max, sum) recurrence. Without a second walk (no statistics, no focal
    #    term, no L1 slope) the same walk also sums what the loss and Σ_c r_c need, since then
    #    r_c = p_c s_c - g v a_c q_c with s_c free of p.
    running_max = tl.full([BLOCK], float("-inf"), ACC)
    running_sum = tl.zeros([BLOCK], ACC)
    q_sum = tl.zeros([BLOCK], ACC)
    qx_sum = tl.zeros([BLOCK], ACC)
    slope_sum = tl.zeros([BLOCK], ACC)
    xs = ()
    ts = ()
    es = ()
    slopes = ()
    x_class = x_row
    t_class = t_row
    if HELD:
        if HAS_COEF and not SECOND:  # (a second walk loads its own, with the L1 term)
            slopes = _held_slopes(coef_ptr, n, N, C, ACC, INDEX, HELD)
        xs, ts, es, running_max, running_sum, q_sum, qx_sum, slope_sum = _held_walk(
            x_row, t_row, label, labelled, inside, sxc, stc, C, eps, smooth_share, scale_ptr,
            slopes, coef_ptr + (N + n) * C, ACC, INDEX, CLASS_SCALE, SUMS, WANT_LOSS, CE_GRAD,
            HAS_COEF, SMOOTH, HELD, False)
    else:
        for c in tl.range(0, C, loop_unroll_factor=UNROLL):
            x = tl.load(x_class, mask=inside, other=0.0).to(ACC)
            t = tl.zeros([BLOCK], ACC)
            if SUMS:
                t = _target_at(t_class, ts, label, c, inside, INDEX, HELD, ACC)
            running_max, running_sum, q_sum, qx_sum, slope_sum = _walk(
                running_max, running_sum, q_sum, qx_sum, slope_sum, x, t, c, n, N, C, eps,
                smooth_share, scale_ptr, coef_ptr, ACC, CLASS_SCALE, SUMS, WANT_LOSS, CE_GRAD,
                HAS_COEF)
            x_class += sxc
            t_class += stc
    lse = running_max + fast_log(running_sum)
    lse2 = lse * LOG2E  # p_c = 2^(x_c log2(e) - lse2): one FFMA and one exp2
    inverse = 1.0 / running_sum  # p_c = e_c * inverse over held classes

    loss = tl.zeros([BLOCK], ACC)
    r_total = tl.zeros([BLOCK], ACC)
    if not SECOND:
        if FOCAL:
            # an index map without smoothing (`flags`): q is 0 but at the label, so the focal
            # loss is the cross-entropy's times m = (1 - p_y)^γ and its p ∂/∂p is -q φ, the
            # cross-entropy's times φ: gv φ in place of gv, one label's worth of exponentials
            # and logarithms per pixel where a second walk takes them for every class
            if WANT_LOSS:  # the label's logit, as the walk summed it (no smoothing or scale)
                x_at = qx_sum
            else:
                x_at = tl.load(x_row + label.to(tl.int64) * sxc, mask=labelled,
                               other=0.0).to(ACC)
            modulation, factor = _focal_factors(exp2(x_at * LOG2E - lse2), lse - x_at, gamma,
                                                tiny)
            gv = gv * factor
        if WANT_LOSS:
            loss = lse * q_sum - qx_sum
            if LABEL_SCALE:
                loss = loss * label_scale
            if FOCAL:
                loss = loss * modulation
        if CE_GRAD:
            r_total = -gv * q_sum
        if HAS_COEF:
            r_total += v * slope_sum * inverse
    elif HELD:
        # 2. per class: pixel term, statistics, r_c = p_c ∂F/∂p_c and Σ_c r_c
        for c in tl.static_range(HELD):
            t = _target_at(t_row, ts, label, c, inside, INDEX, HELD, ACC)
            term, r = _class_grad(xs[c].to(ACC), es[c] * inverse, lse, t, c, v, gv, n, N, C,
                                  P, block, eps, smooth_share, scale_ptr, coef_ptr, part_ptr,
                                  gamma, tiny, ACC, CLASS_SCALE, FOCAL, CE_GRAD, HAS_COEF,
                                  WANT_LOSS, STATS, L1)
            loss += term
            r_total += r
    else:  # as above, reading the classes again
        for i in tl.range(0, C, loop_unroll_factor=UNROLL):
            c = C - 1 - i  # backwards: the classes read last are re-read first, while cached
            x = tl.load(x_row + c.to(tl.int64) * sxc, mask=inside, other=0.0).to(ACC)
            t = _target_at(t_row + c.to(tl.int64) * stc, ts, label, c, inside, INDEX, HELD,
                           ACC)
            term, r = _class_grad(x, exp2(x * LOG2E - lse2), lse, t, c, v, gv, n, N, C, P,
                                  block, eps, smooth_share, scale_ptr, coef_ptr, part_ptr,
                                  gamma, tiny, ACC, CLASS_SCALE, FOCAL, CE_GRAD, HAS_COEF,
                                  WANT_LOSS, STATS, L1)
            loss += term
            r_total += r

    if PIXEL == 1:
        tl.store(pixel_ptr + n * S + pixels * sps, v * loss, mask=inside)
    if PIXEL == 2:
        total = tl.sum(v * loss, axis=0)
        if GRAD == 2:  # the loss divided by its normaliser
            total = total * g
        tl.store(pixel_ptr + block * N + n, total)

    # 3. dX_c = r_c - p_c Σ_k r_k (recomputed class by class: nothing logits-sized is kept)
    if GRAD != 0:
        dx_row = dx_ptr + n * sdn + pixels * sds
        if HELD:
            dx_class = dx_row
            for c in tl.static_range(HELD):
                t = _target_at(t_row, ts, label, c, inside, INDEX, HELD, ACC)
                if SECOND:
                    p = es[c] * inverse
                    _, r = _class_grad(xs[c].to(ACC), p, lse, t, c, v, gv, n, N, C, P, block,
                                       eps, smooth_share, scale_ptr, coef_ptr, part_ptr,
                                       gamma, tiny, ACC, CLASS_SCALE, FOCAL, CE_GRAD, HAS_COEF,
                                       False, False, L1)
                    dx = r - p * r_total
                else:
                    dx = _held_dx(es[c], inverse, r_total, t, label, c, v, gv, eps,
                                  smooth_share, scale_ptr, slopes, ACC, INDEX, CLASS_SCALE,
                                  CE_GRAD, HAS_COEF)
                tl.store(dx_class, dx.to(dx_ptr.dtype.element_ty), mask=inside)
                dx_class += sdc
        else:
            for i in tl.range(0, C, loop_unroll_factor=UNROLL):
                if SECOND:  # against the direction of the walk before, as above
                    c = i
                else:
                    c = C - 1 - i
                x = tl.load(x_row + c.to(tl.int64) * sxc, mask=inside, other=0.0).to(ACC)
                t = _target_at(t_row + c.to(tl.int64) * stc, ts, label, c, inside, INDEX, HELD,
                               ACC)
                p = exp2(x * LOG2E - lse2)
                # (without a second walk a focal term is in gv already)
                _, r = _class_grad(x, p, lse, t, c, v, gv, n, N, C, P, block, eps,
                                   smooth_share, scale_ptr, coef_ptr, part_ptr, gamma, tiny,
                                   ACC, CLASS_SCALE, FOCAL and SECOND, CE_GRAD, HAS_COEF, False,
                                   False, L1)
                tl.store(dx_row + c.to(tl.int64) * sdc, (r - p * r_total).to(
                    dx_ptr.dtype.element_ty), mask=inside)


@triton.jit(do_not_specialize=["opaque"])
def _softmax_stats_kernel(
        x_ptr, t_ptr, v_ptr, scale_ptr, g_ptr, coef_ptr, norm_ptr, pixel_ptr, part_ptr, dx_ptr,
        N, S, C, P,
        sxn, sxc, sxs, stn, stc, sts, svn, svs, sgn, sgs, sdn, sdc, sds,
        params_ptr, ignore_ptr, opaque,
        INDEX: tl.constexpr, IGNORE: tl.constexpr, HAS_V: tl.constexpr, HAS_SCALE: tl.constexpr,
        FOCAL: tl.constexpr, PIXEL: tl.constexpr, STATS: tl.constexpr, L1: tl.constexpr,
        GRAD: tl.constexpr, HAS_G: tl.constexpr, HAS_COEF: tl.constexpr,
        WANT_LOSS: tl.constexpr, CE_GRAD: tl.constexpr, SECOND: tl.constexpr,
        SUMS: tl.constexpr, SMOOTH: tl.constexpr, UPSTREAM: tl.constexpr, ACC: tl.constexpr,
        BLOCK: tl.constexpr,
        SUB: tl.constexpr, HELD: tl.constexpr, STRIDED: tl.constexpr, SHIFTED: tl.constexpr):
    """A statistics pass (no gradient) over ``HELD`` = C classes held in registers: the
    program's ``BLOCK`` pixels are walked ``SUB`` at a time (a few per thread, so the logits
    and targets of every class fit), each logit read once with one exponential, and the
    statistics of every class are summed in per-thread accumulators, reduced once per
    program. Same arguments as ``_softmax_kernel`` (those of a gradient are unused)."""
    sps = 1
    if STRIDED:  # as in _softmax_kernel
        sts = sts * opaque
        svs = svs * opaque
        sps = opaque
    eps, gamma, tiny = load_params(params_ptr, ACC)
    block = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    smooth_share = eps / C
    tp = ()
    ps = ()
    ts_sum = ()
    l1 = ()
    for _class in tl.static_range(HELD):
        tp = tp + (tl.zeros([SUB], ACC),)
        ps = ps + (tl.zeros([SUB], ACC),)
        ts_sum = ts_sum + (tl.zeros([SUB], ACC),)
        if L1:
            l1 = l1 + (tl.zeros([SUB], ACC),)
    total = tl.zeros([SUB], ACC)
    for start in tl.range(0, BLOCK, SUB):
        pixels, inside = _block_pixels(block, S, BLOCK, start, SUB, SHIFTED)
        x_row = x_ptr + n * sxn + pixels * sxs
        t_row = t_ptr + n * stn + pixels * sts
        v, label, labelled = _pixel_inputs(v_ptr, t_row, n, svn, svs, pixels, inside, C,
                                           ignore_ptr, ACC, INDEX, IGNORE, HAS_V)
        # the cross-entropy sums in the walk, as without a second walk (not for focal)
        xs, ts, es, running_max, running_sum, q_sum, qx_sum, no_slope = _held_walk(
            x_row, t_row, label, labelled, inside, sxc, stc, C, eps, smooth_share, scale_ptr,
            (), coef_ptr, ACC, INDEX, HAS_SCALE, WANT_LOSS and not FOCAL, WANT_LOSS, False, False,
            SMOOTH, HELD, SHIFTED)
        lse = running_max + fast_log(running_sum)
        inverse = 1.0 / running_sum
        weight = v * inverse  # v p_c = e_c * weight: one multiply per logit
        loss = tl.zeros([SUB], ACC)
        if WANT_LOSS and not FOCAL:
            loss = lse * q_sum - qx_sum
        next_tp = ()
        next_ps = ()
        next_ts = ()
        next_l1 = ()
        for c in tl.static_range(HELD):
            t = _target_at(t_row, ts, label, c, inside, INDEX, HELD, ACC)
            vp = es[c] * weight
            if INDEX:  # t is 0 or 1: a predicated add each, not a select and a multiply
                hit = label == c
                next_tp = next_tp + (tl.where(hit, tp[c] + vp, tp[c]),)
                next_ts = next_ts + (tl.where(hit, ts_sum[c] + v, ts_sum[c]),)
            else:
                next_tp = next_tp + (tp[c] + vp * t,)
                next_ts = next_ts + (ts_sum[c] + v * t,)
            next_ps = next_ps + (ps[c] + vp,)
            if (WANT_LOSS and FOCAL) or L1:
                p = es[c] * inverse
                if WANT_LOSS and FOCAL:
                    q = _smoothed(t, c, eps, smooth_share, scale_ptr, ACC, HAS_SCALE)
                    loss += _term(q, p, lse - xs[c].to(ACC), gamma, tiny, FOCAL)[0]
                if L1:
                    next_l1 = next_l1 + (l1[c] + v * tl.abs(p - t),)
        tp = next_tp
        ps = next_ps
        ts_sum = next_ts
        l1 = next_l1
        if PIXEL == 1:
            tl.store(pixel_ptr + n * S + pixels * sps, v * loss, mask=inside)
        if PIXEL == 2:
            total += v * loss
    stride = N * C * P
    for c in tl.static_range(HELD):
        slot = part_ptr + (n * C + c) * P + block
        tl.store(slot, tl.sum(tp[c], axis=0))
        tl.store(slot + stride, tl.sum(ps[c], axis=0))
        tl.store(slot + 2 * stride, tl.sum(ts_sum[c], axis=0))
        if L1:
            tl.store(slot + 3 * stride, tl.sum(l1[c], axis=0))
    if PIXEL == 2:
        tl.store(pixel_ptr + block * N + n, tl.sum(total, axis=0))


@triton.jit(do_not_specialize=["opaque"])
def _softmax_rows_kernel(
        x_ptr, t_ptr, v_ptr, scale_ptr, g_ptr, coef_ptr, norm_ptr, pixel_ptr, part_ptr, dx_ptr,
        N, S, C, P,
        sxn, sxc, sxs, stn, stc, sts, svn, svs, sgn, sgs, sdn, sdc, sds,
        params_ptr, ignore_ptr, opaque,
        INDEX: tl.constexpr, IGNORE: tl.constexpr, HAS_V: tl.constexpr, HAS_SCALE: tl.constexpr,
        FOCAL: tl.constexpr, PIXEL: tl.constexpr, STATS: tl.constexpr, L1: tl.constexpr,
        GRAD: tl.constexpr, HAS_G: tl.constexpr, HAS_COEF: tl.constexpr,
        WANT_LOSS: tl.constexpr, CE_GRAD: tl.constexpr, SECOND: tl.constexpr,
        SUMS: tl.constexpr, SMOOTH: tl.constexpr, UPSTREAM: tl.constexpr, ACC: tl.constexpr,
        BLOCK: tl.constexpr,
        CP: tl.constexpr,
        DENSE: tl.constexpr,
        DENSE_T: tl.constexpr,
        WHOLE: tl.constexpr,
        ACROSS: tl.constexpr):
    """The same computation from one read of a ``[BLOCK pixels, CP ≥ C classes]`` tile: for
    class-contiguous logits (channels_last, class_dim=-1) the tile is read row by row, so
    every access is contiguous (per-class loads would stride by C elements); for few
    pixel-contiguous classes (``_common.pixel_tile``) it is read column by column, once,
    where the class loop reads every logit twice. The class reductions are row reductions;
    the statistics are column sums, one per quantity. ``DENSE`` / ``DENSE_T``: the logits
    and dX / a dense target are rows of exactly CP adjacent values (``tile_at``).

    ``WHOLE``: each row of the (class-contiguous, dense) tile is one thread's 16-byte vector,
    so a thread holds whole pixels. The per-pixel maps beside it (an index map, v, the
    upstream gradient per pixel, the per-pixel loss) and, with ``ACROSS``, a dense target
    whose classes are not contiguous (NCHW beside channels_last logits) are then addressed
    with their pixel strides times ``opaque`` (1, never specialised): the compiler keeps
    them in the tile's own layout (a thread's rows) instead of vectorising them along the
    pixels and moving every value between the two layouts through shared memory (fp32 C=4
    with uint8 labels: 11 block barriers per program -> 1, benchmarks/static.py). Where a
    row spans lanes, the tile's per-pixel layout repeats each pixel over them, no plain
    load has that layout, and the opaque stride only costs instructions."""
    sps = 1
    if WHOLE:
        svs = svs * opaque
        sgs = sgs * opaque
        sps = opaque
        if INDEX or ACROSS:
            sts = sts * opaque
    eps, gamma, tiny = load_params(params_ptr, ACC)
    block = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    pixels = block * BLOCK + tl.arange(0, BLOCK)
    inside = pixels < S
    pixels = pixels.to(tl.int64)
    classes = tl.arange(0, CP)
    valid = classes < C
    tile = inside[:, None] & valid[None, :]
    x_at, x_mask = tile_at(x_ptr, n, sxn, sxs, sxc, pixels[:, None], classes[None, :], inside,
                           tile, CP, DENSE)
    dx_at = tile_at(dx_ptr, n, sdn, sds, sdc, pixels[:, None], classes[None, :], inside, tile,
                    CP, DENSE)[0]
    x = tl.load(x_at, mask=x_mask, other=0.0).to(ACC)
    running_max = tl.max(tl.where(valid[None, :], x, float("-inf")), axis=1)
    lse = running_max + tl.log(tl.sum(tl.where(valid[None, :],
                                               tl.exp(x - running_max[:, None]), 0.0), axis=1))
    p = tl.where(valid[None, :], tl.exp(x - lse[:, None]), 0.0)

    if HAS_V:
        v = tl.load(v_ptr + n * svn + pixels * svs, mask=inside, other=0.0).to(ACC)
    else:
        v = inside.to(ACC)
    if INDEX:
        raw = tl.load(t_ptr + n * stn + pixels * sts, mask=inside, other=0)
        dropped, invalid = label_status(raw, C, ignore_ptr, IGNORE)  # as in the class loop
        v = tl.where(invalid, float("nan"), tl.where(dropped, 0.0, v))
        t = (raw.to(tl.int32)[:, None] == classes[None, :]).to(ACC)
    else:
        t_at, t_mask = tile_at(t_ptr, n, stn, sts, stc, pixels[:, None], classes[None, :],
                               inside, tile, CP, DENSE_T)
        t = tl.load(t_at, mask=t_mask, other=0.0).to(ACC)
    t = tl.where(valid[None, :], t, 0.0)
    if GRAD == 2:
        g = inverse_normaliser(norm_ptr, ACC)
        gv = g * v
    elif CE_GRAD:
        gv = tl.load(g_ptr + n * sgn + pixels * sgs, mask=inside, other=0.0).to(ACC) * v
    if UPSTREAM:  # as in the class walk
        upstream = tl.load(norm_ptr).to(ACC)
        v = v * upstream
        if CE_GRAD:
            gv = gv * upstream

    r = tl.zeros([BLOCK, CP], ACC)
    if WANT_LOSS or CE_GRAD:
        q = tl.where(valid[None, :], t * (1.0 - eps) + eps / C, 0.0)
        if HAS_SCALE:
            q = q * tl.load(scale_ptr + classes, mask=valid, other=0.0).to(ACC)[None, :]
        term, r_ce = _term(q, p, lse[:, None] - x, gamma, tiny, FOCAL)
        if CE_GRAD:
            r += gv[:, None] * r_ce
        if WANT_LOSS:
            loss = v * tl.sum(term, axis=1)
            if PIXEL == 1:
                tl.store(pixel_ptr + n * S + pixels * sps, loss, mask=inside)
            if PIXEL == 2:
                total = tl.sum(loss, axis=0)
                if GRAD == 2:  # the loss divided by its normaliser
                    total = total * g
                tl.store(pixel_ptr + block * N + n, total)
    if STATS:
        slots = part_ptr + (n * C + classes) * P + block
        tp, ps, ts, l1 = statistics_sums(v[:, None], p, t, L1)
        tl.store(slots, tp, mask=valid)
        tl.store(slots + N * C * P, ps, mask=valid)
        tl.store(slots + 2 * N * C * P, ts, mask=valid)
        if L1:
            tl.store(slots + 3 * N * C * P, l1, mask=valid)
    if GRAD != 0:
        if HAS_COEF:
            r += v[:, None] * p * statistics_slope(coef_ptr, n, N, C, classes[None, :],
                                                   valid[None, :], p, t, ACC, L1)
        dx = r - p * tl.sum(r, axis=1)[:, None]
        tl.store(dx_at, dx.to(dx_ptr.dtype.element_ty), mask=x_mask)


def flags(*, index, has_v, has_scale, focal, pixel, stats, l1, grad, has_g, has_coef,
          ignore=0, smooth=True, upstream=False):
    """The kernel's constexpr switches for one launch (also what the compile check builds);
    ``ignore``: how many ignore labels the kernel compares an index map with; ``smooth``:
    label smoothing is on (eps > 0)."""
    ce_grad = grad == GRAD_FUSED or (grad == GRAD_BACKWARD and has_g)
    want_loss = pixel != PIXEL_NONE
    # focal over an index map without smoothing takes the label's term only (no second walk)
    second = stats or (focal and not (index and not smooth)) or (has_coef and l1)
    return dict(INDEX=index, IGNORE=ignore if index else 0, HAS_V=has_v, HAS_SCALE=has_scale,
                FOCAL=focal, PIXEL=pixel,
                STATS=stats, L1=l1, GRAD=grad, HAS_G=has_g, HAS_COEF=has_coef,
                WANT_LOSS=want_loss, CE_GRAD=ce_grad, SECOND=second,
                SUMS=not second and (want_loss or ce_grad or has_coef), SMOOTH=smooth,
                UPSTREAM=upstream and grad == GRAD_BACKWARD)


def _launch(x, labels, dense, v, scale, axis, eps, gamma, *, pixel, stats, l1, grad,
            grad_pixel=None, coefficients=None, normaliser=None, upstream=None, ignore=()):
    """Run the kernel once; returns ``(pixel, stats, dx)`` (each None when not asked).
    ``ignore``: the labels of ``labels`` whose pixels the kernel leaves out."""
    ignore = comparable_ignore(ignore, labels)
    if scale is not None:  # the kernels read C adjacent values (a focal α may be expanded)
        scale = scale.contiguous()
    n = x.shape[0]
    num_classes = x.shape[axis]
    spatial = x.shape[3 - axis]
    out_dtype = result_dtype(x.dtype)
    block, warps, unroll = geometry(spatial, stats=stats)
    held = step = 0
    tile = logit_rows(x, axis)  # class-contiguous logits: whole rows per tile
    if tile:
        (block, padded), warps = tile, geometry(spatial)[1]
    else:  # few pixel-contiguous classes: whole tiles too, if enabled
        tile = pixel_tile(x, axis, stats=stats, target=dense)
        walk = stats and grad == GRAD_NONE and stats_walk(num_classes, spatial,
                                                          dense=dense is not None, l1=l1)
        if tile:
            block, padded, warps = tile
        elif walk:  # a statistics pass over held classes, a step of pixels at a time
            (block, step, warps), held = walk, num_classes
        elif not stats:  # the class walk, with a pixel's classes held if they fit
            block, held = held_classes(num_classes, block, warps, dense=dense is not None)
    programs = triton.cdiv(spatial, block)
    target = labels if labels is not None else dense
    pixel_out = part = dx = None
    if pixel == PIXEL_EACH:
        pixel_out = torch.empty(n, spatial, dtype=out_dtype, device=x.device)
    elif pixel == PIXEL_SUM:
        pixel_out = torch.empty(programs, n, dtype=out_dtype, device=x.device)
    if stats:
        part = torch.empty(4 if l1 else 3, n, num_classes, programs, dtype=out_dtype,
                           device=x.device)
    if grad != GRAD_NONE:
        dx = torch.empty_like(x)  # x's strides (channels_last stays channels_last)
    if n and spatial and programs:
        sxn, sxc, sxs = ncs_strides(x, axis)
        if labels is not None:
            stn, sts = pixel_strides(labels)
            stc = 0
        else:
            stn, stc, sts = ncs_strides(dense, axis)
        svn, svs = pixel_strides(v)
        sgn, sgs = pixel_strides(grad_pixel)
        sdn, sdc, sds = ncs_strides(dx, axis)
        holder = dummy(x)
        strided = sxs != 1  # class-contiguous rows in the class walk
        kernel, shape = _softmax_kernel, dict(BLOCK=block, UNROLL=unroll, HELD=held,
                                              STRIDED=strided, opaque=1, num_warps=warps)
        if step:
            kernel, shape = _softmax_stats_kernel, dict(
                BLOCK=block, SUB=step, HELD=held, STRIDED=strided, opaque=1, num_warps=warps,
                SHIFTED=shifted_blocks(spatial, block))
        elif tile:
            dense_tile = dense_rows(x, axis, padded) and dense_rows(dx, axis, padded)
            whole = dense_tile and whole_rows(x, axis, padded)
            kernel, shape = _softmax_rows_kernel, dict(
                BLOCK=block, CP=padded, num_warps=warps, DENSE=dense_tile, WHOLE=whole,
                DENSE_T=dense is not None and dense_rows(dense, axis, padded),
                ACROSS=whole and dense is not None and stc != 1, opaque=1)
        with tensor_device(x):
            kernel[(programs, n)](
                x, target, holder if v is None else v, holder if scale is None else scale,
                holder if grad_pixel is None else grad_pixel,
                holder if coefficients is None else coefficients,
                normaliser if normaliser is not None else holder if upstream is None else upstream,
                holder if pixel_out is None else pixel_out, holder if part is None else part,
                holder if dx is None else dx,
                n, spatial, num_classes, programs,
                sxn, sxc, sxs, stn, stc, sts, svn, svs, sgn, sgs, sdn, sdc, sds,
                params(float(eps), float(gamma), out_dtype, x.device),
                ignore_values(ignore, x.device) if ignore else holder,
                **flags(index=labels is not None, has_v=v is not None, has_scale=scale is not None,
                        focal=gamma != 0, pixel=pixel, stats=stats, l1=l1, grad=grad,
                        has_g=grad_pixel is not None, has_coef=coefficients is not None,
                        ignore=len(ignore), smooth=eps != 0, upstream=upstream is not None),
                ACC=accumulate_dtype(x.dtype), **shape, **COMPILER)
    elif part is not None or pixel == PIXEL_SUM:  # empty batch or image: sums are 0
        part = None if part is None else part.zero_()
        pixel_out = pixel_out.zero_() if pixel == PIXEL_SUM else pixel_out
    if dx is not None and not (n and spatial):
        dx.zero_()
    if pixel == PIXEL_SUM:
        pixel_out = pixel_out.sum()
    # one reduction for all statistics (views of one tensor: the custom op copies them)
    return pixel_out, (None if part is None else part.sum(-1).unbind(0)), dx


# --------------------------------------------------------------------------------------------
# Custom ops: opaque to torch.compile (no graph break), with the backward registered


def _terms(x: torch.Tensor, labels: torch.Tensor | None, dense: torch.Tensor | None,
           v: torch.Tensor | None, scale: torch.Tensor | None, axis: int,
           label_smoothing: float, gamma: float, pixel: int, stats: bool,
           l1: bool, ignore: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                 torch.Tensor, torch.Tensor]:
    """``(pixel term, TP, PS, TS, L1)``; absent outputs are empty tensors."""
    pixel_out, sums, _ = _launch(x, labels, dense, v, scale, axis, label_smoothing, gamma,
                                 pixel=pixel, stats=stats, l1=l1, grad=GRAD_NONE,
                                 ignore=ignore)
    like = torch.empty(0, dtype=result_dtype(x.dtype), device=x.device)
    pixel_out = absent(like) if pixel_out is None else pixel_out
    if sums is None:
        return pixel_out, absent(like), absent(like), absent(like), absent(like)
    return (pixel_out, sums[0], sums[1], sums[2], sums[3] if l1 else absent(like))


_terms_op = torch.library.custom_op("seglosses::softmax_terms", distinct_outputs(_terms),
                                      mutates_args=())


@_terms_op.register_fake
def _(x, labels, dense, v, scale, axis, label_smoothing, gamma, pixel, stats, l1, ignore):
    dtype = result_dtype(x.dtype)
    n, num_classes, spatial = x.shape[0], x.shape[axis], x.shape[3 - axis]
    shapes = {PIXEL_NONE: (0,), PIXEL_EACH: (n, spatial), PIXEL_SUM: ()}
    pixel_out = x.new_empty(shapes[pixel], dtype=dtype)
    stat = (lambda wanted: x.new_empty((n, num_classes) if wanted else (0,), dtype=dtype))
    return pixel_out, stat(stats), stat(stats), stat(stats), stat(stats and l1)


def _grad(x: torch.Tensor, labels: torch.Tensor | None, dense: torch.Tensor | None,
          v: torch.Tensor | None, scale: torch.Tensor | None,
          grad_pixel: torch.Tensor | None, coefficients: torch.Tensor | None,
          axis: int, label_smoothing: float, gamma: float, l1: bool,
          ignore: list[int], upstream: torch.Tensor | None = None) -> torch.Tensor:
    """dX from the per-pixel upstream gradient and the (3, N, C) coefficient table, all of it
    times the 0-d ``upstream`` if given (a fused region loss's grad_output: no torch
    multiplies before the launch)."""
    return _launch(x, labels, dense, v, scale, axis, label_smoothing, gamma, pixel=PIXEL_NONE,
                   stats=False, l1=l1, grad=GRAD_BACKWARD, grad_pixel=grad_pixel,
                   coefficients=coefficients, upstream=upstream, ignore=ignore)[2]


_grad_op = torch.library.custom_op("seglosses::softmax_grad", _grad, mutates_args=())


@_grad_op.register_fake
def _(x, labels, dense, v, scale, grad_pixel, coefficients, axis, label_smoothing, gamma, l1,
      ignore, upstream=None):
    return torch.empty_like(x)


def _setup_terms(ctx, inputs, output):
    x, labels, dense, v, scale, axis, eps, gamma, pixel, stats, l1, ignore = inputs
    ctx.set_materialize_grads(False)  # unused outputs: no zero tensors
    ctx.save_for_backward(x, labels, dense, v, scale)
    ctx.options = (axis, eps, gamma, pixel, stats, l1, ignore)


def _backward_terms(ctx, g_pixel, g_tp, g_ps, g_ts, g_l1):
    x, labels, dense, v, scale = ctx.saved_tensors
    axis, eps, gamma, pixel, stats, l1, ignore = ctx.options
    grad_pixel = g_pixel if pixel != PIXEL_NONE and g_pixel is not None else None
    coefficients = coefficient_table(x, axis, stats, l1, g_tp, g_ps, g_l1)
    if grad_pixel is None and coefficients is None:
        return (None,) * 12
    if grad_pixel is not None and grad_pixel.ndim:
        grad_pixel = grad_pixel.contiguous()
    grad = (_grad if is_eager(ctx) else _grad_op)(
        x, labels, dense, v, scale, grad_pixel, coefficients, axis, eps, gamma,
        l1 and coefficients is not None, ignore)
    return (grad,) + (None,) * 11


softmax_terms = differentiable("SoftmaxTerms", _terms, _terms_op, _setup_terms, _backward_terms)


def _fused(x: torch.Tensor, labels: torch.Tensor | None, dense: torch.Tensor | None,
           v: torch.Tensor | None, scale: torch.Tensor | None, normaliser: torch.Tensor,
           axis: int, label_smoothing: float, gamma: float,
           ignore: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Σ_i ℓ_i / normaliser, its gradient)`` from one read of the logits."""
    total, _, dx = _launch(x, labels, dense, v, scale, axis, label_smoothing, gamma,
                           pixel=PIXEL_SUM, stats=False, l1=False, grad=GRAD_FUSED,
                           normaliser=normaliser.reshape(()).to(result_dtype(x.dtype)),
                           ignore=ignore)
    return total, dx


_fused_op = torch.library.custom_op("seglosses::softmax_fused", _fused, mutates_args=())


@_fused_op.register_fake
def _(x, labels, dense, v, scale, normaliser, axis, label_smoothing, gamma, ignore):
    return (x.new_empty((), dtype=result_dtype(x.dtype)),
            torch.empty_like(x))


softmax_fused = differentiable("SoftmaxFused", _fused, _fused_op, setup_fused, fused_backward(10))
