"""Compile every kernel variant for an H100 (sm_90) without a GPU; run by test_triton.py.

The interpreter executes kernels as Python, so it accepts code that the Triton compiler
rejects (a loop-carried variable changing type, a constexpr misuse). This script lowers each
specialisation the launchers can request to a cubin and prints one line per variant; it must
run with ``TRITON_INTERPRET=0`` (the kernels are compiled, not interpreted).

``--arch 75,80,86,89,100,120`` compiles for other NVIDIA GPUs (T4, A100, RTX 30xx / A10,
RTX 40xx / L4, B200, RTX 50xx) and checks that each kernel's shared memory fits the block
limit of that GPU; the layout checks, which are about the H100's speed, run for sm_90 only.
``--sample`` takes the first and the last variant of each kernel, ``--match TEXT`` the variants
whose name holds TEXT.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import pathlib
import sys

import torch
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from seglosses.triton import _common, labels, region, sigmoid, softmax

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "benchmarks"))
from static import splits_classes, tile_layouts  # noqa: E402  (the layout rules, one copy)

# compute capability → the most shared memory one block may use there (bytes, opt-in)
SHARED_LIMIT = {75: 64 << 10, 80: 163 << 10, 86: 99 << 10, 89: 99 << 10, 90: 227 << 10,
                100: 227 << 10, 120: 99 << 10}

# (PIXEL, STATS, GRAD, HAS_G, HAS_COEF): the forward of a two-pass loss, its backward, the
# fused reduced loss, and the plain sum without a gradient
PASSES = [(1, True, 0, False, False), (2, True, 0, False, False), (0, False, 1, True, True),
          (0, False, 1, False, True), (2, False, 2, False, False), (2, False, 0, False, False)]


def compile_variant(kernel, pointer_types, constants, num_warps=4, aligned=(),
                    check=None, arch=90) -> str:
    """Lower one specialisation to a cubin for compute capability ``arch``; ``aligned`` names
    the arguments the JIT would see as 16-byte aligned, ``check`` looks at the compiled kernel
    (an error message or None)."""
    signature = {name: "constexpr" if name in constants else
                 pointer_types.get(name, "*fp32" if name.endswith("_ptr") else "i32")
                 for name in kernel.arg_names}
    attrs = {(kernel.arg_names.index(name),): [["tt.divisibility", 16]] for name in aligned}
    try:
        compiled = triton.compile(
            ASTSource(fn=kernel, signature=signature, constexprs=constants, attrs=attrs),
            target=GPUTarget("cuda", arch, 32),
            options={"num_warps": num_warps, **_common.COMPILER})
    except Exception as error:  # reported, and the exit code says so
        return f"FAIL {type(error).__name__}: {str(error)[-600:]}"
    if compiled.metadata.shared > SHARED_LIMIT[arch]:
        return (f"FAIL shared memory: {compiled.metadata.shared} bytes, more than sm_{arch} "
                f"gives a block ({SHARED_LIMIT[arch]})")
    problem = check(compiled) if check and arch == 90 else None
    return f"FAIL layout: {problem}" if problem else "OK"


def classes_in_thread(vector):
    """The check of a pixel tile: every ``[pixels, classes]`` layout that spreads pixels over
    lanes or warps keeps the class axis inside one thread, and the tile is read in whole
    vectors of ``vector`` pixels."""

    def check(compiled):
        layouts = {m for m in tile_layouts(compiled.asm["ttgir"]) if m[6] == 0}
        split = [m for m in layouts if splits_classes(m)]
        if split or not any(m[0] == vector for m in layouts):
            return f"class axis split or no {vector}-pixel vectors: {sorted(layouts)}"
        return None

    return check


def rows_vectorised(vector):
    """The check of a dense row tile (channels_last, C a power of two): some layout with the
    class axis fastest gives each thread ``vector`` classes, one 16-byte load."""

    def check(compiled):
        widths = {m[1] for m in tile_layouts(compiled.asm["ttgir"]) if m[6] == 1}
        return None if vector in widths else f"no {vector}-class rows in {sorted(widths)}"

    return check


def whole_rows(vector):
    """The check of a tile whose rows are each one thread's 16-byte vector: besides
    ``rows_vectorised``, the per-pixel values (labels, the target, the per-pixel loss) stay
    in the tile's layout. A value moved between two layouts crosses shared memory, one or
    two block barriers each; the two allowed are the loss total's reduction across warps
    (one barrier or two, by triton version)."""
    vectorised = rows_vectorised(vector)

    def check(compiled):
        barriers = compiled.asm["ptx"].count("bar.sync")
        return vectorised(compiled) or (f"{barriers} block barriers" if barriers > 2 else None)

    return check


def dense_rows_jobs():
    """The row tiles of channels_last logits whose rows are 16 bytes (fp32 C=4, bf16 C=8), as
    the JIT specialises them (unit class strides, aligned pointers and image strides): with
    uint8 labels, with a channels_last one-hot target (rows of C bytes) and with an NCHW one
    (``ACROSS``)."""
    jobs = []
    aligned = ("x_ptr", "t_ptr", "dx_ptr", "sxn", "sdn", "stn", "S")
    for x_type, vector in (("*fp32", 4), ("*bf16", 8), ("*fp16", 8)):
        types = {"x_ptr": x_type, "dx_ptr": x_type, "t_ptr": "*u8"}
        for grad, (target, unit) in itertools.product(
                (2, 1), [("labels", dict(sts=1)), ("rows", dict(stc=1)),
                         ("nchw", dict(sts=1))]):
            index = target == "labels"
            constants = dict(**softmax.flags(
                index=index, has_v=False, has_scale=False, focal=False,
                pixel=2 if grad == 2 else 0, stats=False, l1=False, grad=grad, has_g=False,
                has_coef=grad == 1),
                ACC=tl.float32, BLOCK=1024 // vector, CP=vector, DENSE=True,
                DENSE_T=target == "rows", WHOLE=True, ACROSS=target == "nchw",
                sxc=1, sdc=1, **unit)
            jobs.append((f"softmax dense rows x={x_type} C={vector} target={target} "
                         f"pass={grad}", softmax._softmax_rows_kernel, types, constants,
                         dict(aligned=aligned + ("stc",) * (target == "nchw"),
                              check=whole_rows(vector))))
        constants = dict(HAS_V=False, HAS_PW=False, HAS_NW=False, HAS_ALPHA=False, FOCAL=False,
                         PIXEL=2, STATS=False, L1=False, GRAD=2, HAS_G=False, HAS_COEF=False,
                         WANT_LOSS=True, LOSS_GRAD=True, IGNORE=0, UPSTREAM=False, ACC=tl.float32,
                         BLOCK=1024 // vector, CH=vector, UNROLL=2, DENSE=True, DENSE_T=True,
                         GROUP=1, ACROSS=False, STRIDED=False, sxc=1, sdc=1, stc=1)
        jobs.append((f"sigmoid dense rows x={x_type} C={vector}", sigmoid._sigmoid_kernel,
                     types, constants, dict(aligned=aligned, check=rows_vectorised(vector))))
    return jobs


def few_barriers(compiled):
    """The check of a pass whose per-pixel values all share one layout: at most the loss
    total's reduction across warps (one block barrier or two, by triton version)."""
    barriers = compiled.asm["ptx"].count("bar.sync")
    return f"{barriers} block barriers" if barriers > 2 else None


def strided_jobs():
    """The class walk over class-contiguous logits whose rows are not a power of two
    (``_common.WALK_ODD_ROWS``: bf16 C=19, 38-byte rows), as the JIT specialises them (unit
    class strides, a runtime pixel stride; labels, a one-hot target and v pixel-contiguous):
    ``STRIDED`` reads the maps beside the logits one pixel per thread, so nothing crosses
    layouts through shared memory (without it: 39 block barriers)."""
    jobs = []
    types = {"x_ptr": "*bf16", "dx_ptr": "*bf16", "t_ptr": "*u8", "ignore_ptr": "*i64"}
    aligned = ("x_ptr", "t_ptr", "v_ptr", "g_ptr", "dx_ptr", "pixel_ptr", "sxn", "sdn", "stn",
               "stc", "svn", "sgn", "S")
    for index, (pixel, stats, grad, has_g, has_coef) in itertools.product(
            [True, False], [(2, False, 2, False, False), (0, False, 1, True, True),
                            (1, True, 0, False, False)]):
        constants = dict(**softmax.flags(index=index, has_v=True, has_scale=False, focal=False,
                                         pixel=pixel, stats=stats, l1=False, grad=grad,
                                         has_g=has_g, has_coef=has_coef, ignore=2 * index),
                         ACC=tl.float32, STRIDED=True, sxc=1, sdc=1, sts=1, svs=1, sgs=1)
        name = f"x=*bf16 C=19 index={index} pass={pixel}{grad}"
        if stats:
            block, step, warps = _common.stats_walk(19, 1 << 16, dense=not index, l1=False)
            jobs.append((f"softmax strided statistics walk {name}",
                         softmax._softmax_stats_kernel, types,
                         dict(constants, BLOCK=block, SUB=step, HELD=19, SHIFTED=True),
                         dict(num_warps=warps, aligned=aligned, check=few_barriers)))
            continue
        block, held = _common.held_classes(19, 512, _common.MAX_WARPS, dense=not index)
        jobs.append((f"softmax strided held C={held} {name}", softmax._softmax_kernel, types,
                     dict(constants, BLOCK=block, UNROLL=2, HELD=held),
                     dict(num_warps=_common.MAX_WARPS, aligned=aligned, check=few_barriers)))
    constants = dict(HAS_V=True, HAS_PW=True, HAS_NW=False, HAS_ALPHA=False, FOCAL=False,
                     PIXEL=2, STATS=False, L1=False, GRAD=2, HAS_G=False, HAS_COEF=False,
                     WANT_LOSS=True, LOSS_GRAD=True, IGNORE=0, UPSTREAM=False, ACC=tl.float32,
                     BLOCK=_common.SIGMOID_BLOCK, CH=1, UNROLL=_common.SIGMOID_UNROLL,
                     DENSE=False, DENSE_T=False, GROUP=1, ACROSS=False, STRIDED=True, sxc=1,
                     sdc=1, sts=1, svs=1)  # an NCHW mask beside the logits
    jobs.append(("sigmoid strided x=*bf16 C=19 target=*u8 nchw", sigmoid._sigmoid_kernel,
                 types, constants, dict(aligned=aligned, check=few_barriers)))
    for pixel, grad, has_g, extras in [(2, 2, False, True), (1, 0, False, False),
                                       (0, 1, True, True)]:
        jobs.append((f"sigmoid flat x=*bf16 C=19 pass={pixel}{grad} weights={extras}",
                     sigmoid._sigmoid_flat_kernel, types,
                     dict(HAS_V=extras, HAS_PW=extras, HAS_NW=False, HAS_ALPHA=extras,
                          FOCAL=extras, PIXEL=pixel, GRAD=grad, HAS_G=has_g, IGNORE=2 * extras,
                          UPSTREAM=grad == 1, ACC=tl.float32, BLOCK=_common.SIGMOID_BLOCK,
                          CLASSES=19, svs=1, svc=0, sge=1),
                     dict(aligned=("x_ptr", "t_ptr", "g_ptr", "pixel_ptr", "dx_ptr", "sxn",
                                   "stn", "sgn", "son", "sdn", "E"), check=few_barriers)))
    return jobs


# the launcher's pixel-tile geometry is checked at the budget that tune.py tries first
TILE_BUDGET = 32


def pixel_tile_job(name, types, constants):
    """The row-tile kernel over NCHW logits at the geometry ``_common.pixel_tile`` picks for
    the most classes the budget admits, with unit pixel strides and aligned rows (as the JIT
    specialises a contiguous tensor), and the layout check."""
    dtypes = {"*bf16": torch.bfloat16, "*fp16": torch.float16, "*u8": torch.uint8}
    dtype = dtypes.get(types["x_ptr"], torch.float32)
    dense = None if constants["INDEX"] else dtypes.get(types["t_ptr"], torch.float32)  # one-hot
    vector = 16 // min(dtype.itemsize, dense.itemsize if dense else 16)
    classes = TILE_BUDGET // vector
    old, _common.PIXEL_TILE_VALUES = _common.PIXEL_TILE_VALUES, TILE_BUDGET
    try:
        shape = (2, classes, 1 << 16)
        block, padded, warps = _common.pixel_tile(
            torch.empty(shape, dtype=dtype, device="meta"), 1, stats=constants["STATS"],
            target=None if dense is None else torch.empty(shape, dtype=dense, device="meta"))
    finally:
        _common.PIXEL_TILE_VALUES = old
    unit = dict(sxs=1, sds=1, sts=1, svs=1, sgs=1)  # every pixel axis contiguous
    aligned = ("x_ptr", "t_ptr", "dx_ptr", "sxn", "sxc", "sdn", "sdc", "stn", "stc", "S")
    return (f"softmax pixel tile C={classes} BLOCK={block} warps={warps} {name}",
            softmax._softmax_rows_kernel, types,
            dict(constants, **unit, BLOCK=block, CP=padded, DENSE=False, DENSE_T=False,
                 WHOLE=False, ACROSS=False),
            dict(num_warps=warps, aligned=aligned, check=classes_in_thread(vector)))


def held_job(name, types, constants, classes=None):
    """The class walk over classes held in registers: a statistics pass (its own kernel, at
    the step ``_common.stats_walk`` picks) or the walk ``_common.held_classes`` picks at the
    launcher's 512 pixels and warps; ``classes``: by default the most either holds."""
    dense = not constants["INDEX"]
    if constants["STATS"]:
        per_pixel = 1 + int(dense) + (4 if constants["L1"] else 3)
        classes = classes or _common.HELD_STATS_VALUES // per_pixel
        block, step, warps = _common.stats_walk(classes, 1 << 16, dense=dense,
                                                l1=constants["L1"])
        return (f"softmax statistics walk C={classes} BLOCK={block} STEP={step} warps={warps} "
                f"{name}", softmax._softmax_stats_kernel, types,
                dict(constants, BLOCK=block, SUB=step, HELD=classes, STRIDED=False,
                     SHIFTED=True),
                dict(num_warps=warps))
    warps, block = _common.MAX_WARPS, 512
    classes = classes or _common.HELD_VALUES // (2 if dense else 1) // (block // (32 * warps))
    block, held = _common.held_classes(classes, block, warps, dense=dense)
    return (f"softmax held C={held} BLOCK={block} warps={warps} {name}",
            softmax._softmax_kernel, types,
            dict(constants, BLOCK=block, UNROLL=2, HELD=held, STRIDED=False),
            dict(num_warps=warps))


def variants():
    """``(name, kernel, pointer types, constexprs)`` of every specialisation to compile."""
    jobs = []
    for (x_type, acc), index, focal, (pixel, stats, grad, has_g, has_coef) in itertools.product(
            [("*bf16", tl.float32), ("*fp16", tl.float32), ("*fp32", tl.float32),
             ("*fp64", tl.float64)],
            [True, False], [False, True], PASSES):
        ignore = 0 if focal else 2  # the ignore-label comparisons, with and without
        constants = dict(**softmax.flags(index=index, has_v=True, has_scale=True, focal=focal,
                                         pixel=pixel, stats=stats, l1=stats and not index,
                                         grad=grad, has_g=has_g, has_coef=has_coef,
                                         ignore=ignore, upstream=has_coef), ACC=acc)
        # a one-hot target in its own dtype: uint8 with bf16 logits, float16 with float16 ones
        # (AMP on GPUs without bf16), float32 otherwise
        types = {"x_ptr": x_type, "dx_ptr": x_type,
                 "t_ptr": "*u8" if index or x_type == "*bf16" else
                 "*fp16" if x_type == "*fp16" else "*fp32",
                 "v_ptr": "*u8" if index and focal else "*fp32", "ignore_ptr": "*i64"}
        name = (f"x={x_type} index={index} ignore={ignore * index} focal={focal} "
                f"pass={pixel}{grad}")
        jobs.append((f"softmax {name}", softmax._softmax_kernel, types,
                     dict(constants, BLOCK=1024, UNROLL=2, HELD=0, STRIDED=False)))
        # the classes held in registers: a few, and (bf16) the most the launcher holds
        jobs.append(held_job(name, types, constants, classes=3))
        if x_type in ("*bf16", "*fp16"):
            jobs.append(held_job(name, types, constants))
        if x_type != "*fp64":  # the row-tile kernel of class-contiguous logits
            jobs.append((f"softmax rows {name}", softmax._softmax_rows_kernel, types,
                         dict(constants, BLOCK=64, CP=32, DENSE=False, DENSE_T=False,
                              WHOLE=False, ACROSS=False)))
        if x_type != "*fp64" and not focal:  # ... and of few pixel-contiguous classes
            jobs.append(pixel_tile_job(name, types, constants))
        if index and not stats:  # without smoothing: the label's scale and focal term only
            constants = dict(constants, **softmax.flags(
                index=index, has_v=True, has_scale=True, focal=focal, pixel=pixel,
                stats=stats, l1=False, grad=grad, has_g=has_g, has_coef=has_coef,
                ignore=ignore, upstream=has_coef, smooth=False))
            name = f"{name} smooth=False"
            jobs.append((f"softmax {name}", softmax._softmax_kernel, types,
                         dict(constants, BLOCK=1024, UNROLL=2, HELD=0, STRIDED=False)))
            jobs.append(held_job(name, types, constants, classes=3))
            if x_type in ("*bf16", "*fp16"):
                jobs.append(held_job(name, types, constants))
    for target_type, focal, (pixel, stats, grad, has_g, has_coef), channels in \
            itertools.product(["*u8", "*fp32", "*fp16"], [False, True], PASSES, [1, 32]):
        if channels > 1 and target_type != "*u8":
            continue
        ignore = 2 if target_type == "*u8" and not focal else 0  # integer targets only
        constants = dict(HAS_V=True, HAS_PW=True, HAS_NW=True, HAS_ALPHA=focal, FOCAL=focal,
                         PIXEL=pixel, STATS=stats, L1=stats, GRAD=grad, HAS_G=has_g,
                         HAS_COEF=has_coef, WANT_LOSS=pixel != 0,
                         LOSS_GRAD=grad == 2 or (grad == 1 and has_g), IGNORE=ignore,
                         UPSTREAM=grad == 1 and has_coef,
                         ACC=tl.float32, BLOCK=1024 // channels, CH=channels, UNROLL=2,
                         DENSE=False, DENSE_T=False,
                         GROUP=_common.channel_group(1024) if channels == 1 else 1,
                         ACROSS=channels > 1, STRIDED=False)  # rows of logits, an NCHW target
        x_type = "*fp16" if target_type == "*fp16" else "*bf16"  # float16: AMP without bf16
        types = {"x_ptr": x_type, "dx_ptr": x_type, "t_ptr": target_type,
                 "ignore_ptr": "*i64"}
        jobs.append((f"sigmoid x={x_type} target={target_type} ignore={ignore} focal={focal} "
                     f"pass={pixel}{grad} channels={channels}", sigmoid._sigmoid_kernel, types,
                     constants))
    for acc, (l1, batch, include, has_hp, per_class, mean, has_ce, gamma_one) in \
            itertools.product([tl.float32, tl.float64], [
                (False, False, True, False, False, True, True, True),
                (True, True, False, True, True, True, False, False),
                (False, True, True, True, False, False, True, True),
                (True, False, False, True, False, False, False, False)]):
        stat = "*fp64" if acc == tl.float64 else "*fp32"
        jobs.append((f"region finalize {stat} l1={l1} batch={batch} mean={mean} ce={has_ce}",
                     region._finalize_kernel, {k: stat for k in region._finalize_kernel.arg_names
                                               if k.endswith("_ptr")},
                     dict(L1=l1, BATCH=batch, ABSENT_INCLUDE=include, HAS_HP=has_hp,
                          HP_PER_CLASS=per_class, FIRST=int(include), HAS_W=True, MEAN=mean,
                          HAS_CE=has_ce, GAMMA_ONE=gamma_one, ACC=acc, NP=16, CP=32)))
    jobs += dense_rows_jobs()
    jobs += strided_jobs()
    for label_type, ignore, v_type, m_type, acc in [
            ("*u8", 1, None, None, tl.float32), ("*i64", 2, "*fp32", "*u8", tl.float32),
            ("*i16", 0, "*u8", None, tl.float32), ("*i32", 3, "*fp64", "*fp64", tl.float64)]:
        types = {"t_ptr": label_type, "v_ptr": v_type or "*fp32", "m_ptr": m_type or "*fp32",
                 "ignore_ptr": "*i64", "part_ptr": "*fp64" if acc == tl.float64 else "*fp32",
                 "bad_ptr": "*i32"}
        jobs.append((f"label scan labels={label_type} ignore={ignore} v={v_type} m={m_type}",
                     labels._scan_kernel, types,
                     dict(IGNORE=ignore, HAS_V=v_type is not None, HAS_M=m_type is not None,
                          ACC=acc, BLOCK=labels.BLOCK, CHUNK=labels.CHUNK, CLASSES=True,
                          BINS=0),
                     dict(num_warps=labels.WARPS)))
        if m_type is None:  # the totals scan (no class weights, so no counting map)
            jobs.append((f"label totals labels={label_type} ignore={ignore} v={v_type}",
                         labels._scan_kernel, types,
                         dict(IGNORE=ignore, HAS_V=v_type is not None, HAS_M=False, ACC=acc,
                              BLOCK=labels.TOTAL_BLOCK, CHUNK=1, CLASSES=False, BINS=0),
                         dict(num_warps=labels.TOTAL_WARPS)))
        if v_type is None:  # class counts as a histogram
            for bins in (4, 32, labels.HISTOGRAM_BINS):
                jobs.append((f"label histogram labels={label_type} ignore={ignore} bins={bins}",
                             labels._scan_kernel, types,
                             dict(IGNORE=ignore, HAS_V=False, HAS_M=False, ACC=acc,
                                  BLOCK=labels.TOTAL_BLOCK, CHUNK=1, CLASSES=True, BINS=bins),
                             dict(num_warps=labels.TOTAL_WARPS)))
    for acc, rows, columns in [(tl.float32, 16, 128), (tl.float64, 1, labels.FOLD)]:
        stat = "*fp64" if acc == tl.float64 else "*fp32"
        jobs.append((f"label fold {stat} {rows}x{columns}", labels._fold_kernel,
                     {"part_ptr": stat, "bad_ptr": "*i32", "weighted_ptr": stat,
                      "invalid_ptr": "*i64", "norm_ptr": stat},
                     dict(ROWS=rows, COLS=columns), dict(num_warps=labels.FOLD_WARPS)))
    for target_type, ignore, v_type, m_type, acc, channels, counts, check in [
            ("*u8", 1, None, None, tl.float32, 1, False, False),
            ("*u8", 1, None, None, tl.float32, 1, True, True),
            ("*i64", 2, "*fp32", "*u8", tl.float32, 8, True, False),
            ("*fp32", 0, "*u8", None, tl.float32, 1, False, True),
            ("*bf16", 0, None, "*fp64", tl.float64, 4, True, True)]:
        types = {"t_ptr": target_type, "v_ptr": v_type or "*fp32", "m_ptr": m_type or "*fp32",
                 "ignore_ptr": "*i64", "part_ptr": "*fp64" if acc == tl.float64 else "*fp32"}
        jobs.append((f"element scan target={target_type} ignore={ignore} v={v_type} "
                     f"m={m_type} channels={channels} counts={counts} check={check}",
                     labels._element_scan_kernel, types,
                     dict(IGNORE=ignore, HAS_V=v_type is not None, HAS_M=m_type is not None,
                          COUNTS=counts, CHECK=check, ACC=acc,
                          BLOCK=labels.ELEMENTS // channels, STEPS=labels.ELEMENT_STEPS,
                          CH=channels, DENSE=channels > 1),
                     dict(num_warps=labels.ELEMENT_WARPS)))
    for grad_type in ("*bf16", "*fp32"):
        jobs.append((f"scale {grad_type}", _common._scale_kernel,
                     {"grad_ptr": grad_type, "scale_ptr": "*fp32"},
                     dict(ACC=tl.float32, BLOCK=4096)))
    return jobs


JOBS = variants()


def _compile(job: tuple[int, int]) -> str:
    index, arch = job
    _, kernel, types, constants, *options = JOBS[index]
    return compile_variant(kernel, types, constants, arch=arch,
                           **(options[0] if options else {}))


def sample() -> list[int]:
    """The first and the last variant of each kernel (their indices in JOBS)."""
    by_kernel: dict = {}
    for index, (_, kernel, *_) in enumerate(JOBS):
        by_kernel.setdefault(kernel, []).append(index)
    return sorted({i for indices in by_kernel.values() for i in (indices[0], indices[-1])})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="90",
                        help="compute capabilities, comma-separated: "
                             + ",".join(map(str, SHARED_LIMIT)) + " (default 90)")
    parser.add_argument("--sample", action="store_true",
                        help="the first and the last variant of each kernel only")
    parser.add_argument("--match", default="",
                        help="only the variants whose name holds this text")
    args = parser.parse_args(argv)
    archs = [int(a) for a in args.arch.split(",")]
    unknown = [a for a in archs if a not in SHARED_LIMIT]
    if unknown:
        parser.error(f"--arch: no shared-memory limit known for {unknown}")
    indices = [i for i in (sample() if args.sample else range(len(JOBS)))
               if args.match in JOBS[i][0]]
    jobs = [(index, arch) for arch in archs for index in indices]
    # one process per core (forked: the kernels need no pickling)
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        outcomes = pool.map(_compile, jobs)
    for (index, arch), outcome in zip(jobs, outcomes, strict=True):
        print(f"{outcome.split(':')[0]:4s} sm_{arch} {JOBS[index][0]}"
              + ("" if outcome == "OK" else f"\n{outcome}"))
    return 0 if all(outcome == "OK" for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
