"""One read of an index map: the per-(image, class) sums that the losses need before their
kernels run, so that ignore labels, masks and class weights never become torch passes.

The softmax kernels drop ignored pixels themselves (``_common.label_status``) and read a mask
in its own dtype. What torch code would otherwise build from the labels (a float validity
map, labels rewritten with 0 at ignored pixels, an int64 copy to gather class weights with,
a ones map for ``index_add_``) is replaced by this scan, which writes

* ``weighted[n, c] = Σ v_i`` over the pixels of image n labelled c (ignored and out-of-range
  labels excluded; v the pixel weight, 1 without one): the "mean" normaliser is
  ``Σ_nc w_c weighted[n, c]``, an image counts for a region loss when its row sums to non-zero;
* ``counted[n, c]``, the same with the counting weight (the mask, without pixel weights): the
  class frequencies of the per-batch weight strategies (only when it differs from v);
* ``invalid[n]``: labels outside ``[0, C)`` that are not ignored (``validate=True`` raises on
  them; with ``validate=False`` their pixels become NaN, as on the torch path).

Binary / multilabel targets (0/1 per element, in the logits' shape) have the element scan
instead, which writes per (image, channel), over the elements that are not ignored:

* ``weighted = Σ v`` (the "mean" normaliser, and whether the pair counts for a region loss);
* ``counted = Σ m`` and ``positive = Σ m y`` (m the mask, 1 without one): the positive and
  negative frequencies of ``class_weights="balanced"``;
* ``invalid``: the targets outside [0, 1] (NaN included), for the value check.

Without class weights a loss needs none of the per-class sums: only ``Σ v`` per image (the
"mean" normaliser, and which images count for a region loss) and the invalid count. The
totals scan (``label_totals``) reads the map with far less work per label (no class loop, 16
times as many labels per program) and one program of ``_fold_kernel`` folds its partial sums
into the per-image sums, the invalid counts and the normaliser itself: two launches where the
class scan takes one plus seven torch reductions and selects.

Every program writes its sums to its own slot (no atomics); they are folded in float64 in a
fixed order, so the results are deterministic.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    COMPILER,
    accumulate_dtype,
    comparable_ignore,
    dense_rows,
    dummy,
    ignore_values,
    in_graph,
    label_status,
    ncs_strides,
    pixel_strides,
    result_dtype,
    row_tile,
    tensor_device,
    tile_at,
)

# labels per program, classes compared at once ([BLOCK, CHUNK] tiles), warps per program. One
# warp needs no barrier for its column sums; benchmarks/static.py (sm_90, C = 19, uint8):
# 512 / 16 / 4 warps took 189 registers and 9 barriers, 256 / 16 / 1 takes 64 and 1
BLOCK = 256
CHUNK = 16
WARPS = 1
# class counts without weights as a histogram (C + 1 bins, a power of two, at most this many:
# the largest that triton's own tests cover), with the totals scan's labels per program and
# warps
HISTOGRAM_BINS = 512
# the element scan: elements per step, steps per program (its partial sums, at most four
# per channel, are then at most 16 / 4096 bytes per element, 0.002 x bf16 logits), warps
ELEMENTS = 1024
ELEMENT_STEPS = 4
ELEMENT_WARPS = 4
# the totals scan: labels per program (one partial sum each: 16 KiB of partials per 2^24
# labels) and warps; the fold's single program reads its partials FOLD at a time
TOTAL_BLOCK = 4096
TOTAL_WARPS = 4
FOLD = 2048
FOLD_WARPS = 4


@triton.jit
def _scan_kernel(t_ptr, v_ptr, m_ptr, ignore_ptr, part_ptr, bad_ptr, N, S, C, P,
                 stn, sts, svn, svs, smn, sms,
                 IGNORE: tl.constexpr, HAS_V: tl.constexpr, HAS_M: tl.constexpr,
                 ACC: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr,
                 CLASSES: tl.constexpr, BINS: tl.constexpr):
    """The sums of one block of an image's labels, per class (``CLASSES``; ``part`` is then
    (1 or 2, N, C, P)) or in total (the totals scan: ``part`` is (N, P), no ``m``).

    Per class, a label is compared with each class, CHUNK classes at a time; without ``v``
    and ``m`` the sums are counts, and ``BINS`` > C takes them as one histogram instead (a
    few warp ballots per label and bit of the bin number, not a compare per class)."""
    block = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    pixels = block * BLOCK + tl.arange(0, BLOCK)
    inside = pixels < S
    pixels = pixels.to(tl.int64)
    raw = tl.load(t_ptr + n * stn + pixels * sts, mask=inside, other=0)
    dropped, invalid = label_status(raw, C, ignore_ptr, IGNORE)
    invalid = invalid & inside
    tl.store(bad_ptr + n * P + block, tl.sum(invalid.to(tl.int32), axis=0))
    kept = inside & ~dropped & ~invalid
    label = tl.where(kept, raw, 0).to(tl.int32)  # in [0, C) wherever it counts
    # 0 wherever the label does not count; the maps are loaded under the block's mask
    # (uniform along a vector, so the loads stay vectorised) and dropped after
    if HAS_V:
        weight = tl.where(kept, tl.load(v_ptr + n * svn + pixels * svs, mask=inside,
                                        other=0).to(ACC), 0.0)
    else:
        weight = kept.to(ACC)
    if not CLASSES:
        tl.store(part_ptr + n * P + block, tl.sum(weight, axis=0))
    elif BINS:  # bin C collects what does not count
        bins = tl.arange(0, BINS)
        counts = tl.histogram(tl.where(kept, raw, C).to(tl.int32), BINS)
        tl.store(part_ptr + (n * C + bins) * P + block, counts.to(ACC), mask=bins < C)
    else:
        if HAS_M:
            count = tl.where(kept, tl.load(m_ptr + n * smn + pixels * sms, mask=inside,
                                           other=0).to(ACC), 0.0)
        for start in tl.range(0, C, CHUNK):
            classes = start + tl.arange(0, CHUNK)
            hit = label[:, None] == classes[None, :]
            slots = part_ptr + (n * C + classes) * P + block
            tl.store(slots, tl.sum(tl.where(hit, weight[:, None], 0.0), axis=0),
                     mask=classes < C)
            if HAS_M:
                tl.store(slots + N * C * P, tl.sum(tl.where(hit, count[:, None], 0.0), axis=0),
                         mask=classes < C)


def _scan(labels: torch.Tensor, v: torch.Tensor | None, m: torch.Tensor | None,
          ignore: list[int], num_classes: int, dtype: torch.dtype
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sums, invalid)``: sums (1 or 2 with ``m``, N, C) in ``dtype`` (float32 or float64,
    also the accumulation dtype), invalid (N,) int64."""
    ignore = comparable_ignore(ignore, labels)
    n, spatial = labels.shape
    bins = triton.next_power_of_2(num_classes + 1)
    if v is None and m is None and bins <= HISTOGRAM_BINS:
        block, warps = TOTAL_BLOCK, TOTAL_WARPS
    else:
        block, warps, bins = BLOCK, WARPS, 0
    programs = triton.cdiv(spatial, block)
    rows = 2 if m is not None else 1
    part = torch.empty(rows, n, num_classes, programs, dtype=dtype, device=labels.device)
    bad = torch.empty(n, programs, dtype=torch.int32, device=labels.device)
    if n and spatial:  # every slot written (an empty image has no slots)
        holder = dummy(part)
        stn, sts = pixel_strides(labels)
        svn, svs = pixel_strides(v)
        smn, sms = pixel_strides(m)
        with tensor_device(labels):
            _scan_kernel[(programs, n)](
                labels, holder if v is None else v, holder if m is None else m,
                ignore_values(ignore, labels.device) if ignore else holder, part, bad,
                n, spatial, num_classes, programs, stn, sts, svn, svs, smn, sms,
                IGNORE=len(ignore), HAS_V=v is not None, HAS_M=m is not None,
                ACC=accumulate_dtype(dtype), BLOCK=block, CHUNK=min(CHUNK, triton.next_power_of_2(
                    num_classes)), CLASSES=True, BINS=bins, num_warps=warps, **COMPILER)
    return part.sum(-1, dtype=torch.float64).to(dtype), bad.sum(-1)


_scan_op = torch.library.custom_op("seglosses::label_sums", _scan, mutates_args=())


@_scan_op.register_fake
def _(labels, v, m, ignore, num_classes, dtype):
    rows = 2 if m is not None else 1
    return (labels.new_empty((rows, labels.shape[0], num_classes), dtype=dtype),
            labels.new_empty((labels.shape[0],), dtype=torch.int64))


def label_sums(labels: torch.Tensor, v: torch.Tensor | None, m: torch.Tensor | None,
               ignore: tuple[int, ...], num_classes: int, dtype: torch.dtype
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(weighted, counted, invalid)`` of an (N, S) index map in its own dtype (module
    docstring); ``v`` and ``m`` are (N, S) maps in any dtype, or None (1 everywhere);
    ``counted`` is ``weighted`` itself when ``m`` is None."""
    dtype = result_dtype(dtype)
    sums, invalid = (_scan_op if in_graph() else _scan)(labels, v, m, list(ignore),
                                                       num_classes, dtype)
    return sums[0], sums[-1], invalid


@triton.jit
def _fold_kernel(part_ptr, bad_ptr, weighted_ptr, invalid_ptr, norm_ptr, N, P,
                 ROWS: tl.constexpr, COLS: tl.constexpr):
    """One program: each image's ``Σ v`` and invalid count from its P partials (float64, in
    a fixed order), and the "mean" normaliser, their sum over the batch (NaN when a label
    was invalid: its pixel is NaN too, as ``v`` is on the torch path)."""
    total = tl.zeros([ROWS], tl.float64)
    total_bad = tl.zeros([ROWS], tl.int64)
    for first in tl.range(0, N, ROWS):
        images = first + tl.arange(0, ROWS)
        within = images < N
        row_starts = images.to(tl.int64)[:, None] * P
        sums = tl.zeros([ROWS, COLS], tl.float64)
        bad = tl.zeros([ROWS, COLS], tl.int64)
        for start in tl.range(0, P, COLS):
            columns = start + tl.arange(0, COLS)
            at = row_starts + columns[None, :]
            inside = within[:, None] & (columns < P)[None, :]
            sums += tl.load(part_ptr + at, mask=inside, other=0).to(tl.float64)
            bad += tl.load(bad_ptr + at, mask=inside, other=0).to(tl.int64)
        image = tl.sum(sums, axis=1)
        image_bad = tl.sum(bad, axis=1)
        tl.store(weighted_ptr + images, image.to(weighted_ptr.dtype.element_ty), mask=within)
        tl.store(invalid_ptr + images, image_bad, mask=within)
        total += image
        total_bad += image_bad
    normaliser = tl.where(tl.sum(total_bad, axis=0) > 0, float("nan"), tl.sum(total, axis=0))
    tl.store(norm_ptr, normaliser.to(norm_ptr.dtype.element_ty))


def _totals(labels: torch.Tensor, v: torch.Tensor | None, ignore: list[int], num_classes: int,
            dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(weighted (N,), invalid (N,) int64, normaliser ())`` in ``dtype`` (float32 or
    float64, also the accumulation dtype of the partial sums)."""
    ignore = comparable_ignore(ignore, labels)
    n, spatial = labels.shape
    programs = triton.cdiv(spatial, TOTAL_BLOCK)
    part = torch.empty(n, programs, dtype=dtype, device=labels.device)
    bad = torch.empty(n, programs, dtype=torch.int32, device=labels.device)
    weighted = torch.empty(n, dtype=dtype, device=labels.device)
    invalid = torch.empty(n, dtype=torch.int64, device=labels.device)
    normaliser = torch.empty((), dtype=dtype, device=labels.device)
    holder = dummy(part)
    if n and spatial:  # every slot written (an empty image has no slots)
        stn, sts = pixel_strides(labels)
        svn, svs = pixel_strides(v)
        with tensor_device(labels):
            _scan_kernel[(programs, n)](
                labels, holder if v is None else v, holder,
                ignore_values(ignore, labels.device) if ignore else holder, part, bad,
                n, spatial, num_classes, programs, stn, sts, svn, svs, 0, 0,
                IGNORE=len(ignore), HAS_V=v is not None, HAS_M=False,
                ACC=accumulate_dtype(dtype), BLOCK=TOTAL_BLOCK, CHUNK=1, CLASSES=False, BINS=0,
                num_warps=TOTAL_WARPS, **COMPILER)
    columns = min(triton.next_power_of_2(max(programs, 1)), FOLD)
    with tensor_device(part):
        _fold_kernel[(1,)](part, bad, weighted, invalid, normaliser, n, programs,
                           ROWS=max(1, min(triton.next_power_of_2(max(n, 1)), FOLD // columns)),
                           COLS=columns, num_warps=FOLD_WARPS, **COMPILER)
    return weighted, invalid, normaliser


_totals_op = torch.library.custom_op("seglosses::label_totals", _totals, mutates_args=())


@_totals_op.register_fake
def _(labels, v, ignore, num_classes, dtype):
    n = labels.shape[0]
    return (labels.new_empty((n,), dtype=dtype), labels.new_empty((n,), dtype=torch.int64),
            labels.new_empty((), dtype=dtype))


def label_totals(labels: torch.Tensor, v: torch.Tensor | None, ignore: tuple[int, ...],
                 num_classes: int, dtype: torch.dtype
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(weighted, invalid, normaliser)`` of an (N, S) index map in its own dtype, for a loss
    without class weights: ``weighted`` (N, 1) is ``Σ v`` over each image's pixels that count
    (``label_sums``' row sums), ``invalid`` (N,) the labels outside ``[0, C)`` that are not
    ignored, ``normaliser`` (0-d) the "mean" denominator ``Σ v``, NaN when a label is
    invalid."""
    dtype = result_dtype(dtype)
    weighted, invalid, normaliser = (_totals_op if in_graph() else _totals)(
        labels, v, list(ignore), num_classes, dtype)
    return weighted.unsqueeze(1), invalid, normaliser


@triton.jit
def _element_scan_kernel(t_ptr, v_ptr, m_ptr, ignore_ptr, part_ptr, N, S, K, P,
                         stn, stk, sts, svn, svk, svs, smn, smk, sms,
                         IGNORE: tl.constexpr, HAS_V: tl.constexpr, HAS_M: tl.constexpr,
                         COUNTS: tl.constexpr, CHECK: tl.constexpr, ACC: tl.constexpr,
                         BLOCK: tl.constexpr, STEPS: tl.constexpr, CH: tl.constexpr,
                         DENSE: tl.constexpr):
    """``[BLOCK pixels, CH channels]`` tiles, walking the channels CH at a time (CH = 1 for
    pixel-contiguous targets, all channels for channel-contiguous ones; ``DENSE``: rows of
    exactly CH adjacent targets, addressed as one span so that a row is one vector load).

    A program covers ``STEPS`` blocks of pixels, summing in per-thread accumulators, and
    reduces each sum once per channel group; it writes only the sums asked for: Σ v, then
    Σ m and Σ m y (``COUNTS``), then the invalid count (``CHECK``)."""
    block = tl.program_id(0)
    n = tl.program_id(1).to(tl.int64)
    rows = N * K * P
    for first in tl.range(0, K, CH):
        channels = first + tl.arange(0, CH)
        within = channels < K
        channels = channels.to(tl.int64)[None, :]
        weighted = tl.zeros([BLOCK, CH], ACC)
        counted = tl.zeros([BLOCK, CH], ACC)
        positive = tl.zeros([BLOCK, CH], ACC)
        invalid = tl.zeros([BLOCK, CH], ACC)
        for step in tl.range(0, STEPS):
            pixels = (block * STEPS + step) * BLOCK + tl.arange(0, BLOCK)
            inside = pixels < S
            pixels = pixels.to(tl.int64)[:, None]
            tile = inside[:, None] & within[None, :]
            t_at, t_mask = tile_at(t_ptr, n, stn, sts, stk, pixels, channels, inside, tile,
                                   CH, DENSE)
            raw = tl.load(t_at, mask=t_mask, other=0)
            kept = tile
            if IGNORE:  # integer targets only
                kept = kept & ~label_status(raw, 2, ignore_ptr, IGNORE)[0]
            y = raw.to(ACC)
            # the maps are loaded under the tile's mask (uniform along a vector, so the loads
            # stay vectorised) and the ignored elements dropped after
            if HAS_V:
                weighted += tl.where(kept, tl.load(v_ptr + n * svn + pixels * svs +
                                                   channels * svk, mask=tile, other=0).to(ACC),
                                     0.0)
            else:
                weighted += kept.to(ACC)
            if COUNTS:
                if HAS_M:
                    count = tl.where(kept, tl.load(m_ptr + n * smn + pixels * sms +
                                                   channels * smk, mask=tile,
                                                   other=0).to(ACC), 0.0)
                else:
                    count = kept.to(ACC)
                counted += count
                positive += tl.where(kept, count * y, 0.0)
            if CHECK:
                invalid += (kept & ~((y >= 0.0) & (y <= 1.0))).to(ACC)  # NaN fails both
        slots = part_ptr + (n * K + channels) * P + block
        store = within[None, :]
        tl.store(slots, tl.sum(weighted, axis=0)[None, :], mask=store)
        if COUNTS:
            tl.store(slots + rows, tl.sum(counted, axis=0)[None, :], mask=store)
            tl.store(slots + 2 * rows, tl.sum(positive, axis=0)[None, :], mask=store)
        if CHECK:
            tl.store(slots + (3 if COUNTS else 1) * rows, tl.sum(invalid, axis=0)[None, :],
                     mask=store)


def _element_scan(target: torch.Tensor, v: torch.Tensor | None, m: torch.Tensor | None,
                  ignore: list[int], axis: int, dtype: torch.dtype, counts: bool,
                  check: bool) -> torch.Tensor:
    """(R, N, K) sums in ``dtype`` (float32 or float64, also the accumulation dtype) of 3-D
    arranged maps (class axis ``axis``; ``v``, ``m`` may be broadcast views): Σ v, then
    Σ m and Σ m y when ``counts``, then the invalid count when ``check``."""
    ignore = comparable_ignore(ignore, target)
    n, channels, spatial = target.shape[0], target.shape[axis], target.shape[3 - axis]
    rows = row_tile(target, axis)  # channel-contiguous: whole rows per tile
    tile = rows[1] if rows else 1
    block = max(16, min(ELEMENTS // tile, triton.next_power_of_2(max(spatial, 1))))
    steps = max(1, min(ELEMENT_STEPS, triton.cdiv(spatial, block)))
    programs = triton.cdiv(spatial, block * steps)
    part = torch.empty(1 + 2 * counts + check, n, channels, programs, dtype=dtype,
                       device=target.device)
    if n and spatial and channels:
        holder = dummy(part)
        with tensor_device(target):
            _element_scan_kernel[(programs, n)](
                target, holder if v is None else v, holder if m is None else m,
                ignore_values(ignore, target.device) if ignore else holder, part,
                n, spatial, channels, programs,
                *ncs_strides(target, axis), *ncs_strides(v, axis), *ncs_strides(m, axis),
                IGNORE=len(ignore), HAS_V=v is not None, HAS_M=m is not None, COUNTS=counts,
                CHECK=check, ACC=accumulate_dtype(dtype), BLOCK=block, STEPS=steps, CH=tile,
                DENSE=rows is not None and dense_rows(target, axis, tile),
                num_warps=max(1, min(ELEMENT_WARPS, block * tile // 256)), **COMPILER)
    return part.sum(-1, dtype=torch.float64).to(dtype)


_element_scan_op = torch.library.custom_op("seglosses::element_sums", _element_scan,
                                           mutates_args=())


@_element_scan_op.register_fake
def _(target, v, m, ignore, axis, dtype, counts, check):
    return target.new_empty((1 + 2 * counts + check, target.shape[0], target.shape[axis]),
                            dtype=dtype)


def element_sums(target: torch.Tensor, v: torch.Tensor | None, m: torch.Tensor | None,
                 ignore: tuple[int, ...], axis: int, dtype: torch.dtype, *,
                 counts: bool = True, check: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None,
                            torch.Tensor | None]:
    """``(weighted, counted, positive, invalid)``, each (N, K), of a binary / multilabel
    target arranged as (N, K, S) (``axis=1``) or (N, S, K) (``axis=2``) in its own dtype
    (module docstring); ``v`` (the pixel weight) and ``m`` (the counting weight) are maps of
    the same arrangement in any dtype (broadcast views welcome), or None (1 everywhere).
    ``counted`` and ``positive`` are None unless ``counts``, ``invalid`` unless ``check``:
    the scan sums only what is asked for."""
    dtype = result_dtype(dtype)
    sums = (_element_scan_op if in_graph() else _element_scan)(target, v, m, list(ignore),
                                                               axis, dtype, counts, check)
    counted, positive = (sums[1], sums[2]) if counts else (None, None)
    return sums[0], counted, positive, sums[-1] if check else None
