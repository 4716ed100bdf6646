"""Compile every kernel variant for an H100 (sm_90) without a GPU; run by test_triton.py.

The interpreter executes kernels as Python, so it accepts code that the Triton compiler
rejects (a loop-carried variable changing type, a constexpr misuse). This script lowers each
specialisation the launchers can request to PTX and prints one line per variant; it must run
with ``TRITON_INTERPRET=0`` (the kernels are compiled, not interpreted).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from seglosses.triton import _common, region, sigmoid, softmax

TARGET = GPUTarget("cuda", 90, 32)

# (PIXEL, STATS, GRAD, HAS_G, HAS_COEF): the forward of a two-pass loss, its backward, the
# fused reduced loss, and the plain sum without a gradient
PASSES = [(1, True, 0, False, False), (2, True, 0, False, False), (0, False, 1, True, True),
          (0, False, 1, False, True), (2, False, 2, False, False), (2, False, 0, False, False)]


def compile_variant(kernel, pointer_types, constants) -> str:
    signature = {name: "constexpr" if name in constants else
                 pointer_types.get(name, "*fp32" if name.endswith("_ptr") else "i32")
                 for name in kernel.arg_names}
    try:
        triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constants),
                       target=TARGET)
    except Exception as error:  # reported, and the exit code says so
        return f"FAIL {type(error).__name__}: {str(error)[-600:]}"
    return "OK"


def variants():
    """``(name, kernel, pointer types, constexprs)`` of every specialisation to compile."""
    jobs = []
    for (x_type, acc), index, focal, (pixel, stats, grad, has_g, has_coef) in itertools.product(
            [("*bf16", tl.float32), ("*fp32", tl.float32), ("*fp64", tl.float64)],
            [True, False], [False, True], PASSES):
        constants = dict(**softmax.flags(index=index, has_v=True, has_scale=True, focal=focal,
                                         pixel=pixel, stats=stats, l1=stats and not index,
                                         grad=grad, has_g=has_g, has_coef=has_coef), ACC=acc)
        types = {"x_ptr": x_type, "dx_ptr": x_type, "t_ptr": "*u8" if index else "*fp32"}
        name = f"x={x_type} index={index} focal={focal} pass={pixel}{grad}"
        jobs.append((f"softmax {name}", softmax._softmax_kernel, types,
                     dict(constants, BLOCK=1024, UNROLL=2)))
        if x_type != "*fp64":  # the row-tile kernel of class-contiguous logits
            jobs.append((f"softmax rows {name}", softmax._softmax_rows_kernel, types,
                         dict(constants, BLOCK=64, CP=32)))
    for target_type, focal, (pixel, stats, grad, has_g, has_coef), channels in \
            itertools.product(["*u8", "*fp32"], [False, True], PASSES, [1, 32]):
        if channels > 1 and target_type != "*u8":
            continue
        constants = dict(HAS_V=True, HAS_PW=True, HAS_NW=True, HAS_ALPHA=focal, FOCAL=focal,
                         PIXEL=pixel, STATS=stats, L1=stats, GRAD=grad, HAS_G=has_g,
                         HAS_COEF=has_coef, WANT_LOSS=pixel != 0,
                         LOSS_GRAD=grad == 2 or (grad == 1 and has_g), ACC=tl.float32,
                         BLOCK=1024 // channels, CH=channels, UNROLL=2)
        types = {"x_ptr": "*bf16", "dx_ptr": "*bf16", "t_ptr": target_type}
        jobs.append((f"sigmoid target={target_type} focal={focal} pass={pixel}{grad} "
                     f"channels={channels}", sigmoid._sigmoid_kernel, types, constants))
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
    for grad_type in ("*bf16", "*fp32"):
        jobs.append((f"scale {grad_type}", _common._scale_kernel,
                     {"grad_ptr": grad_type, "scale_ptr": "*fp32"},
                     dict(ACC=tl.float32, BLOCK=4096)))
    return jobs


JOBS = variants()


def _compile(index: int) -> str:
    _, kernel, types, constants = JOBS[index]
    return compile_variant(kernel, types, constants)


def main() -> int:
    # one process per core (forked: the kernels need no pickling)
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        outcomes = pool.map(_compile, range(len(JOBS)))
    for (name, *_), outcome in zip(JOBS, outcomes, strict=True):
        print(f"{outcome.split(':')[0]:4s} {name}" + ("" if outcome == "OK" else f"\n{outcome}"))
    return 0 if all(outcome == "OK" for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
