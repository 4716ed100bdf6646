"""What both kernel families share: launch geometry, strides, partial sums, the grad scale.

Reductions never use float atomics: every program writes its partial sums to its own slot and
``torch.sum`` folds the slots in a fixed order, so every result is bitwise reproducible (and
``torch.use_deterministic_algorithms(True)`` needs no separate mode).
"""

from __future__ import annotations

import contextlib
import functools

import torch
import triton
import triton.language as tl

from . import interpreting

# Launch geometry: pixels and warps per program, class-loop unrolling. Chosen from
# benchmarks/tune.py on an H100 (BENCHMARKS.md): 512/4/2 was best or within noise on the
# issue's shapes except 2-D BCE and 2-D Dice+CE, where 1024 pixels were 5-8 % faster
MAX_BLOCK = 512
MAX_WARPS = 4
UNROLL = 2  # class-loop unrolling: loads of several classes in flight at once
# warps of a softmax statistics pass (3 block reductions per class per program: with one warp
# they need no shared memory); 0: as MAX_WARPS. One warp was 12 % faster on the 2-D Dice+CE
STATS_WARPS = 1


# The compiler options of every launch. FMA contraction on: the kernels are written for it (a
# softmax shift folded into the exponential's multiply, the softplus polynomial). Said
# explicitly because triton 3.9 warns on every first compile that leaves it to the default,
# and 3.10 turns that default off (TRITON_FORCE_DISABLE_FP_FUSION=1 still turns it off).
COMPILER = dict(enable_fp_fusion=True)


def tensor_device(t: torch.Tensor):
    """A context in which ``t``'s GPU is the current CUDA device. Triton launches on the
    current device, on its current stream: a tensor on cuda:1 while cuda:0 is current would
    be read by a kernel on the wrong GPU (an error, or an illegal address that poisons the
    CUDA context). Nothing to do for a tensor on the current device, or a CPU tensor (the
    interpreter)."""
    if t.is_cuda and t.device.index != torch.cuda.current_device():
        return torch.cuda.device(t.device)
    return contextlib.nullcontext()


def accumulate_dtype(dtype: torch.dtype):
    """fp16/bf16/fp32 accumulate in float32; float64 stays float64 (the oracle tests)."""
    return tl.float64 if dtype == torch.float64 else tl.float32


def result_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def geometry(spatial: int, *, stats: bool = False) -> tuple[int, int, int]:
    """``(BLOCK, num_warps, UNROLL)`` for ``spatial`` pixels per image: at most ``MAX_BLOCK``
    pixels, at least 32 pixels per warp (``STATS_WARPS`` for a statistics pass, if set)."""
    block = max(16, min(MAX_BLOCK, triton.next_power_of_2(max(spatial, 1))))
    warps = STATS_WARPS if stats and STATS_WARPS else MAX_WARPS
    return block, max(1, min(warps, block // 32)), UNROLL


# pixel-contiguous logits (NCHW) walk the classes one at a time. When a thread's share of its
# pixels' logits fits HELD_VALUES (classes x pixels per thread, twice that with a one-hot /
# soft target, also held), the kernel is specialised to the class count and its first walk
# keeps them in registers: the logits are read once instead of twice, and every class's load
# is in flight at once. sm_90 needs ~2.5 registers per held value
# (benchmarks/static.py: bf16 C=19 at 2 pixels per thread, 96 registers; at 4, 243), so the
# budget keeps 5 programs of 4 warps per SM. 0: always read from memory (for A/B timing:
# `benchmarks/tune.py --held 0,40`). Since the walks over held values take one exponential per
# logit (the max first), bf16 C=19 at 2 pixels per thread needs 64 registers; 80 values
# measured the same as 40 on an H100 for cross-entropy and up to 4 % slower for Dice+CE.
HELD_VALUES = 40


def held_classes(classes: int, block: int, warps: int, *, dense: bool) -> tuple[int, int]:
    """``(BLOCK, HELD)`` of the class walk over ``block`` pixels with ``warps`` warps: HELD =
    ``classes`` when a thread's share fits ``HELD_VALUES``, else 0; the block is halved
    (down to one pixel per thread) until it fits."""
    values = classes * (2 if dense else 1)
    if not HELD_VALUES or values > HELD_VALUES:
        return block, 0
    lanes = 32 * warps
    while block > lanes and block // lanes * values > HELD_VALUES:
        block //= 2
    return block, classes if max(1, block // lanes) * values <= HELD_VALUES else 0


# A statistics pass (no gradient) over few enough classes holds them too
# (softmax._softmax_stats_kernel): ``STATS_WARPS`` warps walk the program's STATS_BLOCK pixels a
# step at a time, up to STATS_PIXELS pixels per thread, with each class's logits (and one-hot /
# soft target) and its 3 statistic accumulators (4 with L1) in registers, reduced once per
# program: a thread holds pixels x classes x (1 + target + statistics) values, at most
# HELD_STATS_VALUES. The block sets the size of the partial sums (N x C x pixels / BLOCK
# each); 0: the class loop, reading the logits twice.
HELD_STATS_VALUES = 96
STATS_PIXELS = 4
STATS_BLOCK = 512


def stats_walk(classes: int, spatial: int, *, dense: bool,
               l1: bool) -> tuple[int, int, int] | None:
    """``(BLOCK, STEP, warps)`` of a statistics pass over held classes (``STEP`` pixels at a
    time), or None where a thread's share of one pixel per step does not fit."""
    per_pixel = classes * (1 + int(dense) + (4 if l1 else 3))
    pixels = STATS_PIXELS
    while pixels > 1 and pixels * per_pixel > HELD_STATS_VALUES:
        pixels //= 2
    if not HELD_STATS_VALUES or pixels * per_pixel > HELD_STATS_VALUES:
        return None
    warps = STATS_WARPS or MAX_WARPS
    block = max(16, min(STATS_BLOCK, triton.next_power_of_2(max(spatial, 1))))
    return block, min(block, 32 * warps * pixels), warps


# the sigmoid kernel over pixel-contiguous logits (NCHW) may load GROUP channels' logits and
# targets before it writes any dX (a load is not moved above a store that might alias it).
# On an H100 that was slower (2-D bf16 multilabel BCE: 0.440 ms at 1 channel, 0.528 at 4,
# 0.809 at 8: the registers of a group cost more occupancy than its loads in flight gained),
# so the default is 1; `benchmarks/tune.py --group 1,4` measures it again
SIGMOID_GROUP = 1
# pixels per program and channel-loop unrolling of the sigmoid kernel over NCHW logits
# (H100, same case: 1024 pixels without unrolling 0.372 ms; 512: 0.390; unrolled twice:
# 0.406 and 0.429)
SIGMOID_BLOCK = 1024
SIGMOID_UNROLL = 1


def sigmoid_geometry(spatial: int) -> tuple[int, int, int]:
    """``(BLOCK, num_warps, UNROLL)`` of the sigmoid kernel over NCHW logits."""
    block = max(16, min(SIGMOID_BLOCK, triton.next_power_of_2(max(spatial, 1))))
    return block, max(1, min(MAX_WARPS, block // 32)), SIGMOID_UNROLL


def channel_group(channels: int) -> int:
    """How many one-channel tiles the sigmoid kernel loads before writing (``GROUP``)."""
    return max(1, min(channels, SIGMOID_GROUP))


# class-contiguous logits (channels_last, class_dim=-1) with at most ROWS_MAX_CLASSES (padded)
# classes are read in [pixels, classes] row tiles of ROWS_ELEMENTS logits per program
ROWS_MAX_CLASSES = 64
ROWS_ELEMENTS = 1024


def row_tile(x: torch.Tensor, axis: int) -> tuple[int, int] | None:
    """``(BLOCK, CP)`` of the row-tile path for the 3-D view ``x`` when its class axis is the
    contiguous one (CP: the class count padded to a power of two); None otherwise."""
    classes, spatial = x.shape[axis], x.shape[3 - axis]
    padded = triton.next_power_of_2(max(classes, 1))
    if x.stride(axis) != 1 or x.stride(3 - axis) == 1 or padded > ROWS_MAX_CLASSES:
        return None
    return max(16, min(ROWS_ELEMENTS // padded, triton.next_power_of_2(max(spatial, 1)))), padded



# channels_last logits whose rows are not a power-of-two span (an odd class count: bf16 C=19
# is 38 bytes a row) compile, as row tiles, to scalar loads with a warp per pixel: ~216 SASS
# instructions per logit (benchmarks/static.py), compute-bound at 18 % of roofline on an H100.
# True: they take the class walk of NCHW logits instead, which reads any pixel stride, one
# pixel per thread (~17 per logit, the classes' loads hitting the lines L1 already holds).
# Row tiles stay the default until a GPU times both: `benchmarks/tune.py --walk-odd-rows 0,1`
WALK_ODD_ROWS = False


# A statistics pass (softmax._softmax_stats_kernel) whose block would run past the end of its
# image reads the last BLOCK pixels instead (the block starts at S - BLOCK), the pixels before
# its own start counting nothing: every load of the logits is then unmasked, where a masked
# load first zeroes its register (one more instruction per logit: bf16 C=19, 290 -> 270 SASS
# per step of the walk). Only where S is a multiple of 16, which keeps the compiler's
# alignment proof (and the vector loads) for every block, and S >= BLOCK. The gradient
# kernels gain less and some lose occupancy (class weights: 80 -> 111 registers), so they
# keep the mask. False: the last block is masked too (A/B: `benchmarks/tune.py --shifted`).
SHIFT_BLOCKS = True


def shifted_blocks(spatial: int, block: int) -> bool:
    """Whether a kernel over ``spatial`` pixels per image in blocks of ``block`` shifts its
    last block back into the image (``SHIFT_BLOCKS``)."""
    return SHIFT_BLOCKS and spatial >= block and spatial % 16 == 0


def logit_rows(x: torch.Tensor, axis: int) -> tuple[int, int] | None:
    """``row_tile`` of the logits, or None where ``WALK_ODD_ROWS`` sends their rows
    (class-contiguous, a class count that is not a power of two) to the class walk."""
    classes = x.shape[axis]
    if WALK_ODD_ROWS and classes & (classes - 1):
        return None
    return row_tile(x, axis)

# binary / multilabel losses over class-contiguous logits whose target (and dX) share their
# layout are elementwise over one span per image: the sigmoid flat kernel reads it in 16-byte
# vectors whatever the class count. 1: for rows of a class count that is not a power of two
# (as row tiles they take a warp per pixel and scalar loads: ~340 SASS per logit for bf16
# C=19, benchmarks/static.py); 2: for every class count; 0: never. For A/B timing:
# `benchmarks/tune.py --flat-rows 0,1,2`
FLAT_ROWS = 1


def flat_span(x: torch.Tensor, axis: int, *alike: torch.Tensor | None) -> bool:
    """True when ``FLAT_ROWS`` sends the 3-D view ``x`` (class axis ``axis``) to the flat
    kernel: each image one span of pixels × C adjacent values, and every tensor of ``alike``
    (None: absent) laid out the same way, image strides aside."""
    classes, spatial = x.shape[axis], x.shape[3 - axis]
    if not FLAT_ROWS or (FLAT_ROWS == 1 and not classes & (classes - 1)):
        return False
    return all(t is None or (t.shape == x.shape and (classes == 1 or t.stride(axis) == 1)
                             and (spatial == 1 or t.stride(3 - axis) == classes))
               for t in (x, *alike))

# row tiles of channels_last logits with a power-of-two class count are addressed as one
# span (16-byte loads); False: per-class strides and a class mask, as for any other C (for
# A/B timing: `benchmarks/tune.py --dense-rows 0,1`)
DENSE_ROWS = True


def dense_rows(t: torch.Tensor | None, axis: int, padded: int) -> bool:
    """True when ``t`` (a 3-D view, or None: nothing to write) holds rows of exactly
    ``padded`` adjacent classes, one pixel after another (channels_last with a power-of-two
    class count): a row tile of it is one contiguous span."""
    return DENSE_ROWS and (t is None or (
        t.shape[axis] == padded and t.stride(axis) == 1
        and (t.shape[3 - axis] == 1 or t.stride(3 - axis) == padded)))


# a dense row tile whose rows are each one thread's 16-byte vector (fp32 C <= 4, bf16 C <= 8)
# reads the per-pixel maps beside it in its own layout (softmax ``WHOLE``); False: as the
# compiler likes (for A/B timing: `benchmarks/tune.py --whole-rows 0,1`)
WHOLE_ROWS = True


def whole_rows(x: torch.Tensor, axis: int, padded: int) -> bool:
    """True when a row tile of ``x`` (a 3-D view, class-contiguous, ``padded`` classes a
    row) gives each thread whole rows: one 16-byte vector or less per row."""
    return WHOLE_ROWS and x.stride(axis) == 1 and padded * x.element_size() <= 16


# pixel-contiguous logits (NCHW) with few classes can take the same row-tile kernel: each
# logit is then read once instead of once per class walk. Triton lays a [pixels, classes] tile
# out with the pixel axis across lanes and warps; the class axis stays inside each thread (its
# reductions need no shuffle or shared memory) only when the tile's pixels fill every lane of
# every warp with one whole 16-byte vector, BLOCK = vector x 32 x warps. A thread then holds
# CP x vector logits; PIXEL_TILE_VALUES caps that (0: such logits always walk the classes).
# Off until measured on a GPU: `benchmarks/tune.py --pixel-tile 0,16,32`.
PIXEL_TILE_VALUES = 0


def pixel_tile(x: torch.Tensor, axis: int, *, stats: bool = False,
               target: torch.Tensor | None = None) -> tuple[int, int, int] | None:
    """``(BLOCK, CP, num_warps)`` of the row-tile kernel for the 3-D view ``x`` when its pixel
    axis is the contiguous one and a thread's share of the tile fits ``PIXEL_TILE_VALUES``;
    None otherwise (the class loop). A statistics pass takes ``STATS_WARPS`` warps, if set
    (its column sums cross warps through shared memory). ``target``, a one-hot / soft tile
    of narrower elements than ``x`` (uint8), sets the vector: its 16-byte loads span more
    pixels, and a block of fewer would spread its classes over warps."""
    classes, spatial = x.shape[axis], x.shape[3 - axis]
    padded = triton.next_power_of_2(max(classes, 1))
    size = x.element_size() if target is None else min(x.element_size(), target.element_size())
    vector = max(1, 16 // size)
    if x.stride(3 - axis) != 1 or classes < 2 or padded * vector > PIXEL_TILE_VALUES:
        return None
    warps = STATS_WARPS if stats and STATS_WARPS else MAX_WARPS
    block = min(vector * 32 * warps, max(16, triton.next_power_of_2(max(spatial, 1))))
    return block, padded, max(1, min(warps, block // (32 * vector)))


def _stride(t: torch.Tensor, dim: int) -> int:
    """``t.stride(dim)``, and 0 along a dimension of size 1: its only index is 0, and a view
    may carry any stride there (a channels_last batch of one views as (1, S, C) with image
    stride C), which would hide from the compiler that every row starts 16-byte aligned."""
    return 0 if t.shape[dim] == 1 else t.stride(dim)


def ncs_strides(t: torch.Tensor | None, axis: int) -> tuple[int, int, int]:
    """Strides (image, class, pixel) of a 3-D arrangement with its class axis at ``axis``."""
    if t is None:
        return 0, 0, 0
    return _stride(t, 0), _stride(t, axis), _stride(t, 3 - axis)


def pixel_strides(t: torch.Tensor | None) -> tuple[int, int]:
    """Strides (image, pixel) of an (N, S) map; (0, 0) for a scalar broadcast to all."""
    if t is None or t.ndim == 0:
        return 0, 0
    return _stride(t, 0), _stride(t, 1)


def dummy(like: torch.Tensor) -> torch.Tensor:
    """A placeholder pointer for an absent optional tensor (never read: a constexpr guards it)."""
    return torch.empty(1, dtype=like.dtype, device=like.device)


def absent(like: torch.Tensor) -> torch.Tensor:
    """The empty tensor a custom op returns in place of an output it did not compute."""
    return torch.empty(0, dtype=like.dtype, device=like.device)


@functools.lru_cache(maxsize=64)
def ignore_values(ignore: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The ignore labels as a cached int64 device tensor (a later call copies nothing)."""
    return torch.tensor(ignore, dtype=torch.int64, device=device)


def comparable_ignore(ignore, labels: torch.Tensor | None) -> tuple[int, ...]:
    """The ignore labels that a label of ``labels``' integer dtype can equal; the others
    (-100 for uint8 labels, 2^40 for int32 ones) never match and are not compared, so the
    kernels compare at 32 bits unless the labels are 64-bit (``label_status``)."""
    if labels is None or not ignore or labels.is_floating_point():
        return ()
    info = torch.iinfo(torch.uint8 if labels.dtype == torch.bool else labels.dtype)
    return tuple(value for value in ignore if info.min <= value <= info.max)


@triton.jit
def label_status(raw, C, ignore_ptr, IGNORE: tl.constexpr):
    """``(dropped, invalid)`` of index labels in their own dtype: equal to one of the
    ``IGNORE`` labels at ``ignore_ptr`` (int64, each within the labels' range:
    ``comparable_ignore``), or outside ``[0, C)`` without being ignored. A label is never an
    address unless a mask has kept it to ``[0, C)``."""
    invalid = (raw < 0) | (raw >= C)
    dropped = raw != raw  # all False, in the labels' shape
    if IGNORE:
        if raw.dtype.is_int64():  # (uint64 is no label dtype)
            wide = raw.to(tl.int64)
        else:  # every ignore label fits the labels' dtype, so 32 bits compare exactly
            wide = raw.to(tl.int32)
        for k in tl.static_range(IGNORE):
            dropped = dropped | (wide == tl.load(ignore_ptr + k).to(wide.dtype))
        invalid = invalid & ~dropped
    return dropped, invalid


@triton.jit
def tile_at(ptr, n, sn, ss, sc, pixels, channels, inside, tile, CH: tl.constexpr,
            DENSE: tl.constexpr):
    """``(addresses, mask)`` of a ``[pixels, CH channels]`` tile of image ``n`` (``pixels``
    an int64 column, ``channels`` a row; strides ``sn``, ``ss``, ``sc``). ``DENSE``: rows of
    exactly CH adjacent values (channels_last, C a power of two), addressed as one span and
    masked by pixel only, so the compiler can prove whole-row vectors (a class mask hides
    that); otherwise by strides under the tile's mask."""
    if DENSE:
        at = ptr + n * sn + pixels * CH + tl.arange(0, CH).to(tl.int64)[None, :]
        mask = inside[:, None]
    else:
        at = ptr + n * sn + pixels * ss + channels * sc
        mask = tile
    return at, mask


@triton.jit
def load_params(params_ptr, ACC: tl.constexpr):
    """ε, γ and the clamp floor in the accumulation dtype (a float argument would be fp32)."""
    return (tl.load(params_ptr).to(ACC), tl.load(params_ptr + 1).to(ACC),
            tl.load(params_ptr + 2).to(ACC))


@triton.jit
def inverse_normaliser(norm_ptr, ACC: tl.constexpr):
    """``1 / normaliser`` of a reduced loss, with a normaliser that is not positive (nothing
    counts, or NaN from an invalid label) taken as 1, as the torch path divides."""
    normaliser = tl.load(norm_ptr).to(ACC)
    return 1.0 / tl.where(normaliser > 0, normaliser, 1.0)


@triton.jit
def _scale_kernel(grad_ptr, scale_ptr, numel, ACC: tl.constexpr, BLOCK: tl.constexpr):
    """``grad *= scale`` in place; every program returns at once when the scale is 1.

    The scale (the upstream gradient of a reduced loss) is read on the device, so the
    backward of a fused loss never waits for the host. A few programs stride over the
    tensor, so the common case (scale 1) costs one small launch, not one program per block.
    """
    scale = tl.load(scale_ptr).to(ACC)
    if scale != 1.0:
        for start in tl.range(tl.program_id(0).to(tl.int64) * BLOCK, numel,
                              tl.num_programs(0).to(tl.int64) * BLOCK):
            offsets = start + tl.arange(0, BLOCK)
            inside = offsets < numel
            grad = tl.load(grad_ptr + offsets, mask=inside, other=0.0)
            tl.store(grad_ptr + offsets, (grad.to(ACC) * scale).to(grad.dtype), mask=inside)


SCALE_PROGRAMS = 1024


def scale_in_place(grad: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Multiply the dense ``grad`` (any order of strides, no gaps) by the 0-d device tensor
    ``scale``; returns ``grad``."""
    numel = grad.numel()
    if numel:
        block = 4096
        with tensor_device(grad):
            _scale_kernel[(min(triton.cdiv(numel, block), SCALE_PROGRAMS),)](
                grad, scale.reshape(()).to(result_dtype(grad.dtype)), numel,
                ACC=accumulate_dtype(grad.dtype), BLOCK=block, **COMPILER)
    return grad


@triton.jit
def _add3(a0, a1, a2, b0, b1, b2):
    return a0 + b0, a1 + b1, a2 + b2


@triton.jit
def _add4(a0, a1, a2, a3, b0, b1, b2, b3):
    return a0 + b0, a1 + b1, a2 + b2, a3 + b3


@triton.jit
def statistics_sums(v, p, t, L1: tl.constexpr):
    """``Σ v p t, Σ v p, Σ v t`` and (``L1``; else the first sum again) ``Σ v |p - t|`` along
    axis 0, as one reduction: the partial sums of all of them cross lanes and warps
    together, one round trip through shared memory where separate sums make one each."""
    vp = v * p
    if L1:
        tp, ps, ts, l1 = tl.reduce((vp * t, vp, v * t, v * tl.abs(p - t)), 0, _add4)
    else:
        tp, ps, ts = tl.reduce((vp * t, vp, v * t), 0, _add3)
        l1 = tp
    return tp, ps, ts, l1


@triton.jit
def store_statistics(part_ptr, slot, stride, v, p, t, L1: tl.constexpr):
    """One program's ``Σ v p t, Σ v p, Σ v t`` (and ``Σ v |p - t|``) at one (image, class)."""
    tp, ps, ts, l1 = statistics_sums(v, p, t, L1)
    tl.store(part_ptr + slot, tp)
    tl.store(part_ptr + stride + slot, ps)
    tl.store(part_ptr + 2 * stride + slot, ts)
    if L1:
        tl.store(part_ptr + 3 * stride + slot, l1)


@triton.jit
def statistics_slope(coef_ptr, n, N, C, c, within, p, t, ACC: tl.constexpr, L1: tl.constexpr):
    """``∂L/∂p`` through the statistics at class(es) c: ``A + B t (+ L1 sign(p - t))``, read
    from the (3, N, C) coefficient table (∂L/∂ΣVP, ∂L/∂ΣVPT, ∂L/∂Σv|p-t|); ``within`` masks
    the classes of a padded tile (0 there)."""
    row = coef_ptr + n * C + c
    slope = (tl.load(row, mask=within, other=0.0).to(ACC)
             + tl.load(row + N * C, mask=within, other=0.0).to(ACC) * t)
    if L1:
        l1 = tl.load(row + 2 * N * C, mask=within, other=0.0).to(ACC)
        slope += l1 * tl.where(p > t, 1.0, tl.where(p < t, -1.0, 0.0))
    return slope


LOG2E: tl.constexpr = tl.constexpr(1.4426950408889634)
LN2: tl.constexpr = tl.constexpr(0.6931471805599453)


@triton.jit
def _exp2_flush(y):
    """``2^y`` in one special-function instruction (``ex2.approx.ftz``); a result below 2^-126
    is 0. ``tl.exp`` keeps such denormal results at the cost of 3 more instructions per call
    (a compare and two predicated multiplies), which the softmax and sigmoid kernels, issuing
    one exponential per logit, cannot afford; no loss or gradient here needs a denormal."""
    if y.dtype == tl.float32:
        return tl.inline_asm_elementwise("ex2.approx.ftz.f32 $0, $1;", "=r,r", [y],
                                         dtype=tl.float32, is_pure=True, pack=1)
    else:
        return tl.exp2(y)


@triton.jit
def _exp2_exact(y):
    return tl.exp2(y)


@triton.jit
def _log2_flush(x):
    """``log2 x`` in one ``lg2.approx.ftz`` (absolute error ~2^-22); ``tl.log`` is a
    ~20-instruction polynomial."""
    if x.dtype == tl.float32:
        return tl.inline_asm_elementwise("lg2.approx.ftz.f32 $0, $1;", "=r,r", [x],
                                         dtype=tl.float32, is_pure=True, pack=1)
    else:
        return tl.log2(x)


@triton.jit
def _log_flush(x):
    """``ln x`` from one ``lg2.approx.ftz`` (relative error ~2^-22 on [1, ∞), where the
    kernels take it: a log-sum-exp's sum)."""
    if x.dtype == tl.float32:
        return _log2_flush(x) * LN2
    else:
        return tl.log(x)


@triton.jit
def _log_exact(x):
    return tl.log(x)


@triton.jit
def _log2_exact(x):
    return tl.log2(x)


# the interpreter runs no PTX: there the same kernels take tl.exp2, tl.log and tl.log2
exp2 = _exp2_exact if interpreting() else _exp2_flush
fast_log = _log_exact if interpreting() else _log_flush
fast_log2 = _log2_exact if interpreting() else _log2_flush


@triton.jit
def fast_exp(x):
    """``e^x`` by ``exp2``; the caller that subtracts a shift should fold it into the
    multiply instead: ``exp2(x * LOG2E - shift * LOG2E)`` is one FFMA and one MUFU."""
    return exp2(x * LOG2E)


@triton.jit
def focal_power(rest, gamma):
    """``rest^γ`` for rest in [tiny, 1] (the focal modulation (1 - p)^γ): one ``lg2`` and one
    ``ex2`` where ``tl.exp(γ tl.log(rest))`` takes a ~20-instruction logarithm; the callers
    take ``rest^(γ-1)`` as ``rest^γ / rest``, not a second power."""
    return exp2(gamma * fast_log2(rest))


@triton.jit
def softplus_sigmoid(x):
    """``(log(1 + e^{-|x|}), σ(x))`` from one exponential, without losing digits when
    ``e^{-|x|}`` is tiny. In float32 log1p(e), e in [0, 1], is ``e P(e)`` with P the degree-9
    Chebyshev interpolant of log1p(e)/e on [0, 1] (relative error below 2e-7 in float32:
    tests/test_triton.py): 10 FFMA where a log and a division took ~30 instructions per
    element. In float64, ``log(u)·e/(u-1)`` (log1p to working precision)."""
    e = fast_exp(-tl.abs(x))
    u = 1.0 + e
    if x.dtype == tl.float64:
        soft = tl.where(u == 1.0, e, tl.log(u) * (e / (u - 1.0)))
    else:
        poly = -0.0031760570127516985 * e + 0.019542528316378593
        poly = poly * e - 0.05637361481785774
        poly = poly * e + 0.10543623566627502
        poly = poly * e - 0.1526966691017151
        poly = poly * e + 0.1966327428817749
        poly = poly * e - 0.24951615929603577
        poly = poly * e + 0.33329710364341736
        poly = poly * e - 0.49999892711639404
        soft = (poly * e + 1.0) * e
    inverse = 1.0 / u
    return soft, tl.where(x >= 0, inverse, e * inverse)


@torch.library.custom_op("seglosses::scale_grad_", mutates_args=("grad",))
def scale_grad_(grad: torch.Tensor, scale: torch.Tensor) -> None:
    """``grad *= scale`` in place on the device (no host sync; nothing to do when 1)."""
    scale_in_place(grad, scale)


@scale_grad_.register_fake
def _(grad, scale):
    return None


# --------------------------------------------------------------------------------------------
# Two doors to one implementation: the custom op (what torch.compile sees, one opaque node
# with its backward) and, in eager mode, a plain autograd.Function over the same
# implementation, setup and backward. The op's Python dispatch costs ~100 µs a call, more than
# a whole 3-D loss kernel; the Function costs a few µs.


def distinct_outputs(implementation):
    """``implementation`` as a custom op needs it: an output sharing memory with an earlier
    one (the statistics, unbound from one reduction) is copied, since a custom op's outputs
    may not alias."""

    @functools.wraps(implementation)
    def op(*args):
        seen, outputs = set(), []
        for t in implementation(*args):
            address = t.untyped_storage().data_ptr() if t.numel() else None
            if address in seen:
                t = t.clone()
            elif address is not None:
                seen.add(address)
            outputs.append(t)
        return tuple(outputs)

    return op


def in_graph() -> bool:
    """True while torch.compile traces: calls must then go through the custom ops."""
    return torch.compiler.is_compiling()


def eager_function(name, implementation, setup_context, backward):
    """``apply`` of an autograd.Function that runs a custom op's ``implementation`` directly,
    with the op's own ``setup_context`` and ``backward`` (``ctx.eager`` tells the backward to
    call the implementations of the ops it uses, not the ops)."""

    def forward(ctx, *inputs):  # ctx-style forward: no per-call signature binding
        output = implementation(*inputs)
        setup_context(ctx, inputs, output)
        ctx.eager = True
        return output

    function = type(name, (torch.autograd.Function,), {
        "forward": staticmethod(forward),
        "backward": staticmethod(backward),
    })
    return function.apply


def differentiable(name, implementation, op, setup_context, backward):
    """Register ``backward`` on the custom ``op`` and return what the losses call: the op
    while torch.compile traces, otherwise ``implementation`` through an autograd.Function
    with the same setup and backward."""
    op.register_autograd(backward, setup_context=setup_context)
    eager = eager_function(name, implementation, setup_context, backward)

    def call(*args):
        return (op if in_graph() else eager)(*args)

    call.__doc__ = implementation.__doc__
    return call


def is_eager(ctx) -> bool:
    return getattr(ctx, "eager", False)


def setup_fused(ctx, inputs, output):
    """A fused op returns ``(loss, gradient)``: keep the gradient for the backward.

    The gradient output is not differentiable, and undefined output gradients stay None:
    materialising them would write a logits-sized tensor of zeros on every backward.
    """
    ctx.mark_non_differentiable(output[1])
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(output[1])
    ctx.consumed = False


def fused_backward(num_inputs: int):
    """The backward of a fused op with ``num_inputs`` inputs: scale the kept gradient."""

    def backward(ctx, g_loss, g_grad):
        if ctx.consumed:
            raise RuntimeError(
                "seglosses: the fused Triton loss keeps one gradient buffer and scales it in "
                "place, so its graph can be differentiated once; call the loss again, or pass "
                "impl='torch' to backpropagate through it twice (retain_graph=True).")
        ctx.consumed = True
        (grad,) = ctx.saved_tensors
        if g_loss is None:
            return (None,) * num_inputs
        if is_eager(ctx):
            scale_in_place(grad, g_loss)
        else:
            scale_grad_(grad, g_loss)
        return (grad,) + (None,) * (num_inputs - 1)

    return backward


@functools.lru_cache(maxsize=256)
def params(eps: float, gamma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The kernels' scalar options (ε, γ, clamp floor) as a cached device tensor.

    Cached so that a call after the first copies nothing from the host (CUDA-graph capture).
    """
    return torch.tensor([eps, gamma, torch.finfo(dtype).tiny], dtype=dtype, device=device)


def coefficient_table(x, axis, stats, l1, g_tp, g_ps, g_l1):
    """The backward's (3, N, C) table ``(∂L/∂PS, ∂L/∂TP, ∂L/∂L1)``, or None when the statistics
    received no gradient (absent entries are zeros)."""
    if not stats or (g_tp is None and g_ps is None and (not l1 or g_l1 is None)):
        return None
    zeros = x.new_zeros((x.shape[0], x.shape[axis]), dtype=result_dtype(x.dtype))
    return torch.stack([zeros if g_ps is None else g_ps, zeros if g_tp is None else g_tp,
                        zeros if not l1 or g_l1 is None else g_l1]).contiguous()


def divide_safely(total: torch.Tensor, normaliser: torch.Tensor) -> torch.Tensor:
    """``total / normaliser`` on the device, a normaliser that is not positive (nothing counts:
    the total is 0 too; NaN from an invalid label: so is the total) taken as 1, as the torch
    path's ``_reduce_pixels`` divides."""
    safe = torch.where(normaliser > 0, normaliser, torch.ones_like(normaliser))
    return (total / safe).to(total.dtype)
