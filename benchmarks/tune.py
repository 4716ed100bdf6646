"""Sweep the kernels' launch geometry (pixels, warps, class-loop unrolling) on the issue's shapes.

For every case and every (MAX_BLOCK, MAX_WARPS) pair: the median fwd+bwd time of the
seglosses call with ``impl="triton"`` and its share of the roofline (same bytes and copy
bandwidth as ``benchmarks/gpu.py``). With ``--profile`` it also prints, per case, the CUDA
kernels one call launches and their time, to show what outside the main kernel costs.

    python benchmarks/tune.py                       # the default sweep
    python benchmarks/tune.py --blocks 512,1024 --warps 4,8 --profile
    python benchmarks/tune.py --blocks 512 --warps 4 --unroll 2 --pixel-tile 0,16,32
    python benchmarks/tune.py --blocks 512 --warps 4 --unroll 2 --dense-rows 0,1
    python benchmarks/tune.py --blocks 512,1024 --warps 4 --unroll 1,2 --walk-odd-rows 0,1 \
        --cases "CE 2-D bf16 channels_last,BCE multilabel 2-D bf16 channels_last"
    python benchmarks/tune.py --blocks 512 --warps 4 --unroll 2 --held 0,20,40,80 --held-stats 0,96
    python benchmarks/tune.py --blocks 512 --warps 4 --unroll 2 --stats-block 512,1024 \
        --stats-pixels 1,2,4 --shifted 0,1
    python benchmarks/tune.py --blocks 512,1024 --warps 4 --unroll 1,2 --group 1,2,4,8
    python benchmarks/tune.py --blocks 512 --warps 4 --unroll 2 --total-block 1024,4096,16384 \
        --element-steps 1,4,16 \
        --cases "CE 2-D bf16 u8 ignore_index=255,BCE multilabel 2-D bf16 ignore_index=255"
"""

from __future__ import annotations

import argparse
import itertools

import torch
from gpu import copy_bandwidth, measure, roofline_bytes

import seglosses.torch as sl
from seglosses.triton import _common
from seglosses.triton import labels as scans

CASES = [
    # (name, shape, dtype, channels_last, roofline kind, call)
    ("CE 2-D bf16 u8", (16, 19, 512, 1024), torch.bfloat16, False, "ce",
     lambda x, y, t: sl.cross_entropy(x, y, impl="triton", validate=False)),
    ("CE 3-D fp32 u8", (2, 4, 128, 128, 128), torch.float32, False, "ce",
     lambda x, y, t: sl.cross_entropy(x, y, impl="triton", validate=False)),
    ("CE 3-D bf16 C=14", (1, 14, 160, 160, 160), torch.bfloat16, False, "ce",
     lambda x, y, t: sl.cross_entropy(x, y, impl="triton", validate=False)),
    ("Focal 2-D bf16 u8", (16, 19, 512, 1024), torch.bfloat16, False, "ce",
     lambda x, y, t: sl.focal_loss(x, y, impl="triton", validate=False)),
    ("CE 2-D bf16 channels_last", (16, 19, 512, 1024), torch.bfloat16, True, "ce",
     lambda x, y, t: sl.cross_entropy(x, y, impl="triton", validate=False)),
    ("CE 2-D fp32 channels_last C=4", (16, 4, 512, 1024), torch.float32, True, "ce",
     lambda x, y, t: sl.cross_entropy(x, y, impl="triton", validate=False)),
    ("BCE multilabel 2-D fp32 channels_last C=4", (16, 4, 512, 1024), torch.float32, True,
     "bce", lambda x, y, t: sl.binary_cross_entropy(x, t, mode="multilabel", impl="triton",
                                                    validate=False)),
    # a logits-shaped uint8 target (read like BCE's), NCHW beside channels_last logits
    ("CE 2-D fp32 channels_last C=4 uint8 NCHW target", (16, 4, 512, 1024), torch.float32,
     True, "bce", lambda x, y, t: sl.cross_entropy(x, t, impl="triton", validate=False)),
    ("Dice+CE 2-D fp32 channels_last C=4", (16, 4, 512, 1024), torch.float32, True, "dice_ce",
     lambda x, y, t: sl.dice_ce_loss(x, y, impl="triton", validate=False)),
    ("CE 2-D fp32 C=4", (16, 4, 512, 1024), torch.float32, False, "ce",
     lambda x, y, t: sl.cross_entropy(x, y, impl="triton", validate=False)),
    ("Dice+CE 2-D bf16 channels_last", (16, 19, 512, 1024), torch.bfloat16, True, "dice_ce",
     lambda x, y, t: sl.dice_ce_loss(x, y, impl="triton", validate=False)),
    ("BCE multilabel 2-D bf16 channels_last", (16, 19, 512, 1024), torch.bfloat16, True, "bce",
     lambda x, y, t: sl.binary_cross_entropy(x, t, mode="multilabel", impl="triton",
                                             validate=False)),
    # the same with a channels_last target: one span per image (the flat kernel)
    ("BCE multilabel 2-D bf16 channels_last with a channels_last target", (16, 19, 512, 1024),
     torch.bfloat16, True, "bce", lambda x, y, t: sl.binary_cross_entropy(
         x, t.contiguous(memory_format=torch.channels_last), mode="multilabel", impl="triton",
         validate=False)),
    ("BCE multilabel 2-D fp32 channels_last C=4 with a channels_last target", (16, 4, 512, 1024),
     torch.float32, True, "bce", lambda x, y, t: sl.binary_cross_entropy(
         x, t.contiguous(memory_format=torch.channels_last), mode="multilabel", impl="triton",
         validate=False)),
    ("Dice+CE 3-D bf16 C=14", (1, 14, 160, 160, 160), torch.bfloat16, False, "dice_ce",
     lambda x, y, t: sl.dice_ce_loss(x, y, impl="triton", validate=False)),
    ("Dice 2-D bf16", (16, 19, 512, 1024), torch.bfloat16, False, "dice_ce",
     lambda x, y, t: sl.dice_loss(x, y, impl="triton", validate=False)),
    ("Dice+CE 2-D bf16", (16, 19, 512, 1024), torch.bfloat16, False, "dice_ce",
     lambda x, y, t: sl.dice_ce_loss(x, y, impl="triton", validate=False)),
    ("Dice+CE 3-D fp32", (2, 4, 128, 128, 128), torch.float32, False, "dice_ce",
     lambda x, y, t: sl.dice_ce_loss(x, y, impl="triton", validate=False)),
    ("BCE multilabel 3-D fp32", (2, 4, 128, 128, 128), torch.float32, False, "bce",
     lambda x, y, t: sl.binary_cross_entropy(x, t, mode="multilabel", impl="triton",
                                             validate=False)),
    ("BCE multilabel 2-D bf16", (16, 19, 512, 1024), torch.bfloat16, False, "bce",
     lambda x, y, t: sl.binary_cross_entropy(x, t, mode="multilabel", impl="triton",
                                             validate=False)),
    # the labels of the two cases below carry Cityscapes' 255 in the first 1/64 of each row,
    # as in benchmarks/gpu.py (the label scan and its sums run before the loss kernel)
    ("CE 2-D bf16 u8 ignore_index=255", (16, 19, 512, 1024), torch.bfloat16, False, "ce",
     lambda x, y, t: sl.cross_entropy(x, _ignored(y), impl="triton", validate=False,
                                      ignore_index=255)),
    ("Dice+CE 2-D bf16 ignore_index=255", (16, 19, 512, 1024), torch.bfloat16, False,
     "dice_ce", lambda x, y, t: sl.dice_ce_loss(x, _ignored(y), impl="triton",
                                                validate=False, ignore_index=255)),
    ("CE 2-D bf16 u8 ignore_index=255 median_frequency", (16, 19, 512, 1024), torch.bfloat16,
     False, "ce", lambda x, y, t: sl.cross_entropy(x, _ignored(y), impl="triton",
                                                   validate=False, ignore_index=255,
                                                   class_weights="median_frequency")),
    ("CE 3-D fp32 u8 ignore_index=255", (2, 4, 128, 128, 128), torch.float32, False, "ce",
     lambda x, y, t: sl.cross_entropy(x, _ignored(y), impl="triton", validate=False,
                                      ignore_index=255)),
    ("BCE multilabel 2-D bf16 ignore_index=255", (16, 19, 512, 1024), torch.bfloat16, False,
     "bce", lambda x, y, t: sl.binary_cross_entropy(x, _ignored(t), mode="multilabel",
                                                    impl="triton", validate=False,
                                                    ignore_index=255)),
]
# --cases takes a comma-separated list of names, so no name may hold a comma
assert not [name for name, *_ in CASES if "," in name]


def _ignored(labels):
    """``labels`` with 255 in the first 1/64 of the last axis (made once per tensor)."""
    cached = getattr(_ignored, "cache", None)
    if cached is None or cached[0] is not labels:
        marked = labels.clone()
        marked[..., :max(1, labels.shape[-1] // 64)] = 255
        _ignored.cache = cached = (labels, marked)
    return cached[1]


def tensors(shape, dtype, channels_last, device):
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(shape, device=device, dtype=dtype, generator=generator)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, shape[1], (shape[0], *shape[2:]), device=device,
                           generator=generator).to(torch.uint8)
    onehot = torch.randint(0, 2, shape, device=device, dtype=torch.uint8, generator=generator)
    return x.requires_grad_(), labels, onehot


def profile(call, x):
    """The CUDA kernels of one fwd+bwd call, with their total device time (µs)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for _ in range(2):
        x.grad = None
        call(x).backward()
    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        x.grad = None
        call(x).backward()
        torch.cuda.synchronize()
    lines = []
    for event in sorted(prof.key_averages(), key=lambda e: -e.device_time_total):
        if event.device_time_total > 0:
            lines.append(f"    {event.device_time_total:9.1f} µs  x{event.count:<3d} "
                         f"{event.key[:90]}")
    ours = [e for e in prof.events() if e.device_time_total > 0 and "_kernel" in e.name
            and not e.name.startswith("void")]
    lines += [f"    launch {i}: {e.name} {e.device_time_total:.1f} µs" for i, e in
              enumerate(ours)]  # the passes of one call, in order
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", default="256,512,1024,2048")
    parser.add_argument("--warps", default="4,8")
    parser.add_argument("--unroll", default="1,2,4")
    parser.add_argument("--cases", default="", help="comma-separated case names (exact)")
    parser.add_argument("--stats-warps", default="0",
                        help="STATS_WARPS values (0: the statistics pass uses --warps)")
    parser.add_argument("--pixel-tile", default=str(_common.PIXEL_TILE_VALUES),
                        help="PIXEL_TILE_VALUES values (0: NCHW logits walk the classes; "
                             "16, 32, ...: few classes are read in whole tiles)")
    parser.add_argument("--whole-rows", default=str(int(_common.WHOLE_ROWS)),
                        help="WHOLE_ROWS values (1: a row tile whose rows are one thread's "
                             "16-byte vector reads labels and maps in its own layout)")
    parser.add_argument("--flat-rows", default=str(_common.FLAT_ROWS),
                        help="FLAT_ROWS values (binary / multilabel over channels_last logits "
                             "and a target alike: 0 row tiles; 1 the flat kernel for a class "
                             "count that is not a power of two; 2 for any)")
    parser.add_argument("--walk-odd-rows", default=str(int(_common.WALK_ODD_ROWS)),
                        help="WALK_ODD_ROWS values (1: channels_last rows of a class count "
                             "that is not a power of two take the class walk; 0: row tiles)")
    parser.add_argument("--dense-rows", default=str(int(_common.DENSE_ROWS)),
                        help="DENSE_ROWS values (1: channels_last rows of a power-of-two C "
                             "read as one span; 0: per-class strides)")
    parser.add_argument("--held", default=str(_common.HELD_VALUES),
                        help="HELD_VALUES values (0: the class walk reads the logits again; "
                             "40, ...: a thread keeps that many of its pixels' logits)")
    parser.add_argument("--held-stats", default=str(_common.HELD_STATS_VALUES),
                        help="HELD_STATS_VALUES values (0: a statistics pass reads the logits "
                             "twice; 96, ...: a thread's share of held logits, targets and "
                             "statistic accumulators)")
    parser.add_argument("--stats-block", default=str(_common.STATS_BLOCK),
                        help="STATS_BLOCK values (pixels per program of a statistics pass "
                             "over held classes)")
    parser.add_argument("--stats-pixels", default=str(_common.STATS_PIXELS),
                        help="STATS_PIXELS values (the most pixels per thread and step)")
    parser.add_argument("--shifted", default=str(int(_common.SHIFT_BLOCKS)),
                        help="SHIFT_BLOCKS values (1: a statistics pass's last block is moved "
                             "back into the image and read unmasked; 0: masked)")
    parser.add_argument("--group", default=str(_common.SIGMOID_GROUP),
                        help="SIGMOID_GROUP values (1: the sigmoid kernel writes each channel "
                             "before it loads the next; 4, ...: loads that many first)")
    parser.add_argument("--total-block", default=str(scans.TOTAL_BLOCK),
                        help="labels.TOTAL_BLOCK values (labels per program of the totals "
                             "scan and of the class-count histogram)")
    parser.add_argument("--element-steps", default=str(scans.ELEMENT_STEPS),
                        help="labels.ELEMENT_STEPS values (blocks per program of the element "
                             "scan of a binary / multilabel target)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    wanted = [c for c in args.cases.split(",") if c]
    unknown = [c for c in wanted if c not in {name for name, *_ in CASES}]
    if unknown:
        parser.error(f"no case named {unknown}; the cases: "
                     + ", ".join(repr(name) for name, *_ in CASES))
    device = torch.device("cuda")
    bandwidth = copy_bandwidth(device)
    def values(text):
        return [int(v) for v in text.split(",")]

    # (module, setting) swept: its column and values; MAX_BLOCK and UNROLL also set the
    # sigmoid kernel's block and unrolling, and (x 4) the logits of a channels_last row tile
    sweeps = {(_common, "MAX_BLOCK"): ("BLOCK", values(args.blocks)),
              (_common, "MAX_WARPS"): ("warps", values(args.warps)),
              (_common, "UNROLL"): ("unroll", values(args.unroll)),
              (_common, "STATS_WARPS"): ("stats warps", values(args.stats_warps)),
              (_common, "PIXEL_TILE_VALUES"): ("pixel tile", values(args.pixel_tile)),
              (_common, "DENSE_ROWS"): ("dense rows",
                                        [bool(v) for v in values(args.dense_rows)]),
              (_common, "WHOLE_ROWS"): ("whole rows",
                                        [bool(v) for v in values(args.whole_rows)]),
              (_common, "FLAT_ROWS"): ("flat rows", values(args.flat_rows)),
              (_common, "WALK_ODD_ROWS"): ("walk odd rows",
                                           [bool(v) for v in values(args.walk_odd_rows)]),
              (_common, "HELD_VALUES"): ("held", values(args.held)),
              (_common, "HELD_STATS_VALUES"): ("held (statistics)", values(args.held_stats)),
              (_common, "STATS_BLOCK"): ("stats block", values(args.stats_block)),
              (_common, "STATS_PIXELS"): ("stats pixels", values(args.stats_pixels)),
              (_common, "SHIFT_BLOCKS"): ("shifted", [bool(v) for v in values(args.shifted)]),
              (_common, "SIGMOID_GROUP"): ("group", values(args.group)),
              (scans, "TOTAL_BLOCK"): ("total block", values(args.total_block)),
              (scans, "ELEMENT_STEPS"): ("element steps", values(args.element_steps))}
    defaults = {(module, name): getattr(module, name) for module, name in
                (*sweeps, (_common, "ROWS_ELEMENTS"), (_common, "SIGMOID_BLOCK"),
                 (_common, "SIGMOID_UNROLL"))}
    print(f"copy bandwidth {bandwidth / 1e12:.2f} TB/s; defaults "
          + ", ".join(f"{name}={value}" for (_, name), value in defaults.items()), flush=True)
    columns = [column for column, _ in sweeps.values()]
    print("| case | " + " | ".join(columns) + " | GPU ms (graph) | % of roofline | eager ms |\n"
          + "|---" * (len(columns) + 4) + "|")
    for name, shape, dtype, channels_last, kind, call in CASES:
        if wanted and name not in wanted:
            continue
        x, labels, onehot = tensors(shape, dtype, channels_last, device)
        roofline_ms = roofline_bytes(kind, x, labels, onehot) / bandwidth * 1e3
        bound = (lambda c, y, t: lambda z: c(z, y, t))(call, labels, onehot)
        for setting in itertools.product(*(swept for _, swept in sweeps.values())):
            for (module, attribute), value in zip(sweeps, setting, strict=True):
                setattr(module, attribute, value)
            _common.SIGMOID_BLOCK, _common.SIGMOID_UNROLL = _common.MAX_BLOCK, _common.UNROLL
            _common.ROWS_ELEMENTS = (_common.MAX_BLOCK * 4 if channels_last
                                     else defaults[_common, "ROWS_ELEMENTS"])
            row = f"| {name} | " + " | ".join(str(int(value)) for value in setting) + " |"
            try:
                timing, _ = measure(bound, x, device, args.repeat)
                ms = timing.graph or timing.eager
                print(f"{row} {ms:.3f} | {100 * roofline_ms / ms:.0f} % | "
                      f"{timing.eager:.3f} |", flush=True)
            except Exception as error:  # a geometry that fails to compile is reported
                print(f"{row} failed: {type(error).__name__}: {str(error)[:60]} | |",
                      flush=True)
        for (module, attribute), value in defaults.items():
            setattr(module, attribute, value)
        if args.profile:
            print(f"{name} (roofline {roofline_ms:.3f} ms)\n{profile(bound, x)}", flush=True)
        del x, labels, onehot
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
