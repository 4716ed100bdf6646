"""Compile every kernel variant for an H100 (sm_90) without a GPU; run by test_triton.py.

The interpreter executes kernels as Python, so it accepts code that the Triton compiler
rejects (a loop-carried variable changing type, a constexpr misuse). This script lowers each
specialisation the launchers can request to PTX and prints one line per variant; it must run
with ``TRITON_INTERPRET=0`` (the kernels are compiled, not interpreted).
"""

from __future__ import annotations

import itertools
import sys

import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from seglosses.triton import _common, sigmoid, softmax

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


def main() -> int:
    results = []
    for (x_type, acc), index, focal, (pixel, stats, grad, has_g, has_coef) in itertools.product(
            [("*bf16", tl.float32), ("*fp16", tl.float32), ("*fp32", tl.float32),
             ("*fp64", tl.float64)], [True, False], [False, True], PASSES):
        constants = dict(**softmax.flags(index=index, has_v=True, has_scale=True, focal=focal,
                                         pixel=pixel, stats=stats, l1=stats and not index,
                                         grad=grad, has_g=has_g, has_coef=has_coef),
                         ACC=acc, BLOCK=1024, UNROLL=2)
        types = {"x_ptr": x_type, "dx_ptr": x_type, "t_ptr": "*u8" if index else "*fp32"}
        results.append((f"softmax x={x_type} index={index} focal={focal} pass={pixel}{grad}",
                        compile_variant(softmax._softmax_kernel, types, constants)))
    for target_type, focal, (pixel, stats, grad, has_g, has_coef) in itertools.product(
            ["*u8", "*fp32"], [False, True], PASSES):
        constants = dict(HAS_V=True, HAS_PW=True, HAS_NW=True, HAS_ALPHA=focal, FOCAL=focal,
                         PIXEL=pixel, STATS=stats, L1=stats, GRAD=grad, HAS_G=has_g,
                         HAS_COEF=has_coef, WANT_LOSS=pixel != 0,
                         LOSS_GRAD=grad == 2 or (grad == 1 and has_g), ACC=tl.float32,
                         BLOCK=1024, UNROLL=2)
        types = {"x_ptr": "*bf16", "dx_ptr": "*bf16", "t_ptr": target_type}
        results.append((f"sigmoid target={target_type} focal={focal} pass={pixel}{grad}",
                        compile_variant(sigmoid._sigmoid_kernel, types, constants)))
    for grad_type in ("*bf16", "*fp32"):
        results.append((f"scale {grad_type}", compile_variant(
            _common._scale_kernel, {"grad_ptr": grad_type, "scale_ptr": "*fp32"},
            dict(ACC=tl.float32, BLOCK=4096))))
    for name, outcome in results:
        print(f"{outcome.split(':')[0]:4s} {name}" + ("" if outcome == "OK" else f"\n{outcome}"))
    return 0 if all(outcome == "OK" for _, outcome in results) else 1


if __name__ == "__main__":
    sys.exit(main())
