"""What the compiler makes of each launch, for an H100 (sm_90), without a GPU.

Every Triton launch that one fwd+bwd call of a loss makes is recorded (the kernels are
replaced by recorders, so nothing runs), specialised the way Triton's JIT specialises it (an
integer equal to 1 becomes a constant; pointers and integers divisible by 16 are marked
aligned), compiled to a cubin for sm_90 and read back with the ``cuobjdump`` that ships with
Triton. Per launch: registers per thread, local memory (register spills), shared memory,
the global loads by width, block barriers, the SASS instructions (and how many of them use
the special-function unit, MUFU: exp2, log2, reciprocal; per held logit too, for a kernel
specialised to its classes, whose code is straight-line), and for the row-tile kernel whether
every tile layout keeps the class axis inside one thread (a layout that spreads both pixels
and classes over lanes or warps puts a shuffle or a shared-memory round trip in every class
reduction).

This is the static half of a kernel review: it says how many bytes a thread has in flight,
whether registers spill and where a reduction leaves the thread, not how fast the kernel is.
Times come from ``benchmarks/gpu.py`` and ``benchmarks/tune.py`` on a GPU.

    TRITON_INTERPRET=0 python benchmarks/static.py                 # the issue's NCHW shapes
    TRITON_INTERPRET=0 python benchmarks/static.py --pixel-tile 0,32
    TRITON_INTERPRET=0 python benchmarks/static.py --pixel-tile 0 --case "fp32 channels_last"
    TRITON_INTERPRET=0 python benchmarks/static.py --pixel-tile 0 --held 0,40
    TRITON_INTERPRET=0 python benchmarks/static.py --pixel-tile 0 --held-stats 0,96 --case Dice
    TRITON_INTERPRET=0 python benchmarks/static.py --pixel-tile 0 --walk-odd-rows 0,1 --case C=19
    TRITON_INTERPRET=0 python benchmarks/static.py --pixel-tile 0 --flat-rows 0,1,2 --case BCE
"""

from __future__ import annotations

import argparse
import collections
import inspect
import itertools
import os
import re
import subprocess
import tempfile

import torch
import triton
from torch.utils._python_dispatch import _disable_current_modes
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

import seglosses.torch as sl
import seglosses.triton as kernels
from seglosses.triton import _common, labels, region, sigmoid, softmax

TARGET = GPUTarget("cuda", 90, 32)
TOOLS = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
POINTER_TYPES = {torch.float64: "*fp64", torch.float32: "*fp32", torch.bfloat16: "*bf16",
                 torch.float16: "*fp16", torch.uint8: "*u8", torch.int8: "*i8",
                 torch.int16: "*i16", torch.int32: "*i32", torch.int64: "*i64",
                 torch.bool: "*i1"}

# (name, logits shape with the spatial size cut to 64 Ki pixels: the geometry depends on the
# class count, dtype and layout, not on the image size beyond one program; channels_last; call)
CE = (lambda x, y, t: sl.cross_entropy(x, y, impl="triton", validate=False))
DICE_CE = (lambda x, y, t: sl.dice_ce_loss(x, y, impl="triton", validate=False))
SOFT_CE = (lambda x, y, t: sl.cross_entropy(x, t, impl="triton", validate=False))
BCE_DICE = (lambda x, y, t: sl.dice_ce_loss(x, t, mode="multilabel", impl="triton",
                                             validate=False))


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last)


BCE = (lambda x, y, t: sl.binary_cross_entropy(x, t, mode="multilabel", impl="triton",
                                               validate=False))
CASES = [
    ("CE 2-D bf16 C=19", (1, 19, 256, 256), torch.bfloat16, False, CE),
    ("Dice+CE 2-D bf16 C=19", (1, 19, 256, 256), torch.bfloat16, False, DICE_CE),
    ("Focal 2-D bf16 C=19", (1, 19, 256, 256), torch.bfloat16, False,
     lambda x, y, t: sl.focal_loss(x, y, impl="triton", validate=False)),
    ("Focal 2-D bf16 C=19 label_smoothing=0.1", (1, 19, 256, 256), torch.bfloat16, False,
     lambda x, y, t: sl.focal_loss(x, y, impl="triton", validate=False, label_smoothing=0.1)),
    ("BCE multilabel 2-D bf16 C=19", (1, 19, 256, 256), torch.bfloat16, False, BCE),
    ("BCE-Dice multilabel 2-D bf16 C=19", (1, 19, 256, 256), torch.bfloat16, False, BCE_DICE),
    ("CE 2-D bf16 C=19 ignore_index=255", (1, 19, 256, 256), torch.bfloat16, False,
     lambda x, y, t: sl.cross_entropy(x, y, ignore_index=255, impl="triton", validate=False)),
    ("CE 2-D bf16 C=19 ignore_index=255, median_frequency", (1, 19, 256, 256), torch.bfloat16,
     False, lambda x, y, t: sl.cross_entropy(x, y, ignore_index=255,
                                             class_weights="median_frequency", impl="triton",
                                             validate=False)),
    ("BCE multilabel 2-D bf16 C=19 ignore_index=255", (1, 19, 256, 256), torch.bfloat16,
     False, lambda x, y, t: sl.binary_cross_entropy(x, t, mode="multilabel", ignore_index=255,
                                                    impl="triton", validate=False)),
    ("CE 2-D bf16 channels_last C=19", (1, 19, 256, 256), torch.bfloat16, True, CE),
    ("Dice+CE 2-D bf16 channels_last C=19", (1, 19, 256, 256), torch.bfloat16, True, DICE_CE),
    ("CE 2-D fp32 channels_last C=4", (1, 4, 256, 256), torch.float32, True, CE),
    ("CE 2-D fp32 channels_last C=4, uint8 NCHW target", (1, 4, 256, 256), torch.float32, True,
     SOFT_CE),
    ("Dice+CE 2-D fp32 channels_last C=4", (1, 4, 256, 256), torch.float32, True, DICE_CE),
    ("CE 2-D fp32 channels_last C=4, fp32 channels_last target", (1, 4, 256, 256),
     torch.float32, True, lambda x, y, t: SOFT_CE(x, y, _rows(t.float()))),
    ("BCE-Dice multilabel 2-D fp32 channels_last C=4, channels_last target", (1, 4, 256, 256),
     torch.float32, True, lambda x, y, t: BCE_DICE(x, y, _rows(t))),
    ("BCE-Dice multilabel 2-D bf16 channels_last C=19, channels_last target",
     (1, 19, 256, 256), torch.bfloat16, True, lambda x, y, t: BCE_DICE(x, y, _rows(t))),
    ("BCE multilabel 2-D bf16 channels_last C=19", (1, 19, 256, 256), torch.bfloat16, True,
     BCE),
    ("BCE multilabel 2-D fp32 channels_last C=4", (1, 4, 256, 256), torch.float32, True, BCE),
    ("BCE multilabel 2-D bf16 channels_last C=19, channels_last target", (1, 19, 256, 256),
     torch.bfloat16, True, lambda x, y, t: BCE(x, y, _rows(t))),
    ("BCE multilabel 2-D bf16 channels_last C=19, channels_last target, pos_weight",
     (1, 19, 256, 256), torch.bfloat16, True, lambda x, y, t: sl.binary_cross_entropy(
         x, _rows(t), mode="multilabel", pos_weight=torch.linspace(0.5, 2, 19), impl="triton",
         validate=False)),
    ("BCE multilabel 2-D fp32 channels_last C=4, channels_last target", (1, 4, 256, 256),
     torch.float32, True, lambda x, y, t: sl.binary_cross_entropy(
         x, t.contiguous(memory_format=torch.channels_last), mode="multilabel",
         impl="triton", validate=False)),
    ("BCE multilabel 2-D fp32 channels_last C=4, channels_last target, mask", (1, 4, 256, 256),
     torch.float32, True, lambda x, y, t: sl.binary_cross_entropy(
         x, t.contiguous(memory_format=torch.channels_last), mode="multilabel",
         mask=y > 0, impl="triton", validate=False)),
    ("BCE multilabel 2-D fp32 channels_last C=4 ignore_index=255", (1, 4, 256, 256),
     torch.float32, True, lambda x, y, t: sl.binary_cross_entropy(
         x, t.contiguous(memory_format=torch.channels_last), mode="multilabel",
         ignore_index=255, impl="triton", validate=False)),
    ("CE 3-D fp32 C=4", (1, 4, 32, 32, 64), torch.float32, False, CE),
    ("Dice+CE 3-D fp32 C=4", (1, 4, 32, 32, 64), torch.float32, False, DICE_CE),
    ("CE 3-D bf16 C=14", (1, 14, 32, 32, 64), torch.bfloat16, False, CE),
    ("Dice+CE 3-D bf16 C=14", (1, 14, 32, 32, 64), torch.bfloat16, False, DICE_CE),
    ("CE 2-D bf16 C=2", (1, 2, 256, 256), torch.bfloat16, False, CE),
]
SMOKE = [("CE tiny fp32 C=4", (1, 4, 16, 16), torch.float32, False, CE)]


LAYOUT = re.compile(r"#ttg\.blocked<\{sizePerThread = \[(\d+), (\d+)\], threadsPerWarp = "
                    r"\[(\d+), (\d+)\], warpsPerCTA = \[(\d+), (\d+)\], order = \[(\d), (\d)\]\}>")


def tile_layouts(ttgir: str) -> set[tuple[int, ...]]:
    """The 2-D blocked layouts of a kernel ``(size per thread ×2, lanes ×2, warps ×2,
    order ×2)``, axis 0 the pixels and axis 1 the classes of a tile."""
    return {tuple(map(int, match)) for match in LAYOUT.findall(ttgir)}


def splits_classes(layout: tuple[int, ...]) -> bool:
    """True for a pixel-fastest layout that spreads pixels over lanes or warps and classes
    too: every class reduction of such a tile leaves the thread."""
    _, _, lanes_p, lanes_c, warps_p, warps_c, fastest, _ = layout
    return fastest == 0 and (lanes_p > 1 or warps_p > 1) and (lanes_c > 1 or warps_c > 1)


class Recorder:
    """Stands in for a ``@triton.jit`` kernel: ``kernel[grid](...)`` records the launch and
    zeroes the output arguments named in ``zero`` (what the host reads back, such as the
    label scan's invalid count, must not be garbage)."""

    def __init__(self, kernel, launches, zero=()):
        self.kernel, self.launches = kernel, launches
        self.annotations = {name: parameter.annotation for name, parameter in
                            inspect.signature(kernel.fn).parameters.items()}
        self.zero = [kernel.arg_names.index(name) for name in zero]

    def __getitem__(self, grid):
        def launch(*args, num_warps=4, enable_fp_fusion=None, **constants):
            args = list(args)  # runtime arguments passed by name join the positional ones
            for name in self.kernel.arg_names[len(args):]:
                if name not in constants or "constexpr" in str(self.annotations[name]):
                    break
                args.append(constants.pop(name))
            options = {"num_warps": num_warps}
            if enable_fp_fusion is not None:  # the compiler options the launch asked for
                options["enable_fp_fusion"] = enable_fp_fusion
            self.launches.append((self.kernel, args, constants, options))
            with _disable_current_modes():  # not the call's own work (benchmarks/host.py)
                for index in self.zero:
                    args[index].zero_()
        return launch


def record(call, x, y, t) -> list:
    """The launches of one fwd+bwd call, kernels not run."""
    launches: list = []
    patched = [(softmax, "_softmax_kernel"), (softmax, "_softmax_rows_kernel"),
               (softmax, "_softmax_stats_kernel"),
               (sigmoid, "_sigmoid_kernel"), (sigmoid, "_sigmoid_flat_kernel"),
               (region, "_finalize_kernel"),
               (_common, "_scale_kernel"), (labels, "_scan_kernel"), (labels, "_fold_kernel"),
               (labels, "_element_scan_kernel")]
    saved = [(module, name, getattr(module, name)) for module, name in patched]
    runs_on = kernels.runs_on
    try:
        for module, name, kernel in saved:  # the scans' sums and invalid counts are zeroed
            zero = {labels._scan_kernel: ("part_ptr", "bad_ptr"),
                    labels._fold_kernel: ("weighted_ptr", "invalid_ptr", "norm_ptr"),
                    labels._element_scan_kernel: ("part_ptr",)}.get(kernel, ())
            setattr(module, name, Recorder(kernel, launches, zero))
        kernels.runs_on = lambda tensor: True  # CPU tensors stand in for CUDA ones
        x = x.detach().requires_grad_()
        call(x, y, t).backward()
    finally:
        for module, name, kernel in saved:
            setattr(module, name, kernel)
        kernels.runs_on = runs_on
    return launches


def specialise(kernel, args, constants):
    """Signature, constants and alignment attributes as Triton's JIT derives them."""
    signature, constexprs, attrs = {}, dict(constants), {}
    opaque = {kernel.arg_names[k] if isinstance(k, int) else k
              for k in getattr(kernel, "do_not_specialize", ())}
    for index, (name, value) in enumerate(zip(kernel.arg_names[:len(args)], args, strict=True)):
        if isinstance(value, torch.Tensor):
            signature[name] = POINTER_TYPES[value.dtype]
            aligned = value.data_ptr() % 16 == 0
        elif isinstance(value, bool) or value is None:
            signature[name], constexprs[name], aligned = "constexpr", value, False
        elif isinstance(value, int) and name in opaque:  # @triton.jit(do_not_specialize=...)
            signature[name], aligned = "i32" if -2**31 <= value < 2**31 else "i64", False
        elif isinstance(value, int):
            if value == 1:
                signature[name], constexprs[name], aligned = "constexpr", 1, False
            else:
                signature[name] = "i32" if -2**31 <= value < 2**31 else "i64"
                aligned = value % 16 == 0
        else:
            signature[name], aligned = "fp32", False
        if aligned:
            attrs[(index,)] = [["tt.divisibility", 16]]
    for name in kernel.arg_names[len(args):]:
        signature[name] = "constexpr"
    return signature, constexprs, attrs


def examine(kernel, args, constants, options, sass_path=None) -> dict:
    signature, constexprs, attrs = specialise(kernel, args, constants)
    compiled = triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constexprs,
                                        attrs=attrs), target=TARGET,
                              options=options)
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(compiled.asm["cubin"])
        cubin.flush()
        usage = subprocess.run([os.path.join(TOOLS, "cuobjdump"), "-res-usage", cubin.name],
                               capture_output=True, text=True, check=True).stdout
        sass = subprocess.run([os.path.join(TOOLS, "cuobjdump"), "-sass", cubin.name],
                              capture_output=True, text=True, check=True).stdout
    if sass_path:
        with open(sass_path, "w") as out:
            out.write(sass)
    found = re.search(r"REG:(\d+).*?SHARED:(\d+).*?LOCAL:(\d+)", usage)
    widths = collections.Counter(re.findall(r"\bLDG\.E(?:\.(128|64|U8|U16|S8|S16))?", sass))
    body = [line for line in re.findall(r"/\*[0-9a-f]{4}\*/\s+([^;]*);", sass)
            if not line.startswith("NOP")]
    layouts = [m for m in tile_layouts(compiled.asm["ttgir"]) if m[6] == 0]
    split = any(splits_classes(layout) for layout in layouts)
    return dict(registers=int(found.group(1)), shared=int(found.group(2)),
                local=int(found.group(3)),
                loads=", ".join(f"{count}×{width or 32}" for width, count in
                                sorted(widths.items(), key=lambda item: item[0])),
                barriers=len(re.findall(r"\bBAR\.SYNC", sass)),
                instructions=len(body),
                mufu=sum(1 for line in body if re.search(r"\bMUFU\.", line)),
                classes="split" if split else ("in thread" if layouts else "-"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pixel-tile", default=f"0,{2 * 16}",
                        help="PIXEL_TILE_VALUES settings to compare (0: the class loop)")
    parser.add_argument("--held", default=str(_common.HELD_VALUES),
                        help="HELD_VALUES settings to compare (0: the class walk re-reads)")
    parser.add_argument("--held-stats", default=str(_common.HELD_STATS_VALUES),
                        help="HELD_STATS_VALUES settings to compare (0: a statistics pass "
                             "walks the classes from memory)")
    parser.add_argument("--walk-odd-rows", default=str(int(_common.WALK_ODD_ROWS)),
                        help="WALK_ODD_ROWS settings to compare (1: channels_last rows of a "
                             "class count that is not a power of two take the class walk)")
    parser.add_argument("--flat-rows", default=str(_common.FLAT_ROWS),
                        help="FLAT_ROWS settings to compare (0: never; 1: channels_last rows "
                             "of a class count that is not a power of two; 2: all)")
    parser.add_argument("--smoke", action="store_true", help="one tiny case")
    parser.add_argument("--case", default="", help="only the cases whose name contains this")
    parser.add_argument("--sass", metavar="DIR",
                        help="also write each launch's SASS to DIR (one file per row)")
    args = parser.parse_args()
    if kernels.interpreting():
        parser.error("run with TRITON_INTERPRET=0: the kernels are compiled, not interpreted")
    defaults = (_common.PIXEL_TILE_VALUES, _common.HELD_VALUES, _common.HELD_STATS_VALUES,
                _common.WALK_ODD_ROWS, _common.FLAT_ROWS)
    print(f"sm_90 via triton {triton.__version__}, torch {torch.__version__}; registers are per "
          "thread (255 at most; local memory > 0 is a spill)")
    print("| case | pixel tile | walk odd rows | flat rows | held | launch | kernel | BLOCK "
          "| warps | registers | local B | shared B | global loads (count×bits) | barriers "
          "| SASS instructions (MUFU) | per held logit | class axis |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, shape, dtype, channels_last, call in SMOKE if args.smoke else CASES:
        if args.case not in name:
            continue
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=generator).to(dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=generator,
                          dtype=torch.uint8)
        t = torch.randint(0, 2, shape, generator=generator, dtype=torch.uint8)
        for tile, held, held_stats, walk, flat in itertools.product(
                [int(v) for v in args.pixel_tile.split(",")],
                [int(v) for v in args.held.split(",")],
                [int(v) for v in args.held_stats.split(",")],
                [bool(int(v)) for v in args.walk_odd_rows.split(",")],
                [int(v) for v in args.flat_rows.split(",")]):
            _common.PIXEL_TILE_VALUES, _common.HELD_VALUES = tile, held
            _common.HELD_STATS_VALUES, _common.WALK_ODD_ROWS = held_stats, walk
            _common.FLAT_ROWS = flat
            try:
                launches = record(call, x, y, t)
            finally:
                (_common.PIXEL_TILE_VALUES, _common.HELD_VALUES, _common.HELD_STATS_VALUES,
                 _common.WALK_ODD_ROWS, _common.FLAT_ROWS) = defaults
            for index, (kernel, arguments, constants, options) in enumerate(launches):
                warps = options["num_warps"]
                sass_path = None
                if args.sass:
                    os.makedirs(args.sass, exist_ok=True)
                    stem = re.sub(r"[^A-Za-z0-9]+", "_", f"{name} {tile} {held} {held_stats} "
                                  f"{int(walk)} {flat} {index} {kernel.__name__}").strip("_")
                    sass_path = os.path.join(args.sass, stem + ".sass")
                seen = examine(kernel, arguments, constants, options, sass_path)
                # straight-line code only (a statistics walk loops over its steps)
                held_values = 0 if "SUB" in constants else constants.get("HELD", 0) * max(
                    1, constants.get("BLOCK", 1) // (32 * warps))
                per_value = (f"{seen['instructions'] / held_values:.1f} "
                             f"({seen['mufu'] / held_values:.1f})" if held_values else "-")
                print(f"| {name} | {tile} | {int(walk)} | {flat} | {constants.get('HELD', '-')} | "
                      f"{index} | "
                      f"{kernel.__name__} | "
                      f"{constants.get('BLOCK', '-')} | {warps} | {seen['registers']} | "
                      f"{seen['local']} | {seen['shared']} | {seen['loads']} | "
                      f"{seen['barriers']} | {seen['instructions']} ({seen['mufu']}) | "
                      f"{per_value} | {seen['classes']} |", flush=True)


if __name__ == "__main__":
    main()
