"""scan_masks / format_scan: the counts, bad files, parallel = serial, streaming."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from seglosses.cli import scan as scan_module
from seglosses.cli.scan import ScanResult, format_scan, mask_files, scan_masks
from seglosses.stats import ClassStats


def _write_masks(files, masks, folder="d/masks"):
    """Alternate formats: PNG, NPY, TIFF, palette PNG, NPZ."""
    paths = []
    for index, mask in enumerate(masks):
        name = f"{folder}/m{index:02d}"
        kind = index % 5
        if kind == 0:
            paths.append(files.png(name + ".png", mask))
        elif kind == 1:
            paths.append(files.npy(name + ".npy", mask.astype(np.int32)))
        elif kind == 2:
            paths.append(files.tiff(name + ".tif", mask))
        elif kind == 3:
            paths.append(files.palette_png(name + ".png", mask, [(v, v, v) for v in range(256)]))
        else:
            paths.append(files.npz(name + ".npz", mask=mask))
    return paths


def test_counts_equal_class_stats_from_masks(files, make_masks):
    masks = make_masks(7)
    _write_masks(files, masks)
    expected = ClassStats.from_masks(masks, 4, ignore_index=255)
    for source in (files.root / "d", files.root / "d/masks", str(files.root / "d/masks/*.*")):
        result = scan_masks(source, num_classes=4, ignore_index=255, progress=False)
        assert result.stats == expected and result.files == 7 and result.skipped == []
    inferred = scan_masks(files.root / "d", ignore_index=255, progress=False)
    assert inferred.stats == expected, "C inferred in the same pass"
    with_more = scan_masks(files.root / "d", num_classes=6, ignore_index=[255], progress=False)
    assert with_more.stats.counts == expected.counts + (0, 0)


def test_recursive_folder_and_file_sources(files, make_masks):
    masks = make_masks(3)
    paths = _write_masks(files, masks[:2], "top/a") + _write_masks(files, masks[2:], "top/b/c")
    files.raw("top/README.txt", b"not a mask")  # other files are left alone
    assert mask_files(files.root / "top") == sorted(map(str, paths))
    result = scan_masks(files.root / "top", num_classes=4, ignore_index=255, progress=False)
    assert result.stats == ClassStats.from_masks(masks, 4, ignore_index=255)
    single = scan_masks(paths[0], num_classes=4, ignore_index=255, progress=False)
    assert single.stats.num_images == 1
    with pytest.raises(ValueError, match="no match"):
        scan_masks(str(files.root / "*.nothing"), progress=False)
    with pytest.raises(ValueError, match="hold mask files"):
        scan_masks(files.raw("empty/x.txt", b"").parent, progress=False)


@pytest.fixture
def bad_folder(files, make_masks):
    """Good masks plus a float mask, an out-of-range label, an unreadable file and an RGB
    mask; returns ``(folder, good_masks, bad_names)``."""
    masks = make_masks(4, num_classes=3)
    _write_masks(files, masks)
    files.npy("d/masks/x_float.npy", np.zeros((4, 4), np.float32))
    files.png("d/masks/x_label.png", np.full((4, 4), 7, np.uint8))
    files.raw("d/masks/x_broken.png", b"\x89PNG but not really")
    files.png("d/masks/x_rgb.png", np.array([[[9, 0, 0], [0, 9, 0]]], np.uint8))
    return files.root / "d", masks, ["x_broken.png", "x_float.npy", "x_label.png", "x_rgb.png"]


@pytest.mark.parametrize("name, reason", [("x_float.npy", "integer class labels"),
                                          ("x_label.png", r"lie in \[0, 3\).*\[7\]"),
                                          ("x_broken.png", "readable PNG"),
                                          ("x_rgb.png", "palette")])
def test_a_bad_file_raises_naming_it(files, bad_folder, name, reason):
    folder, _, names = bad_folder
    others = [folder / "masks" / n for n in names if n != name]
    for path in others:
        path.unlink()
    with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')}.*{reason}"):
        scan_masks(folder, num_classes=3, ignore_index=255, progress=False)


def test_skip_bad_lists_the_bad_files(bad_folder):
    folder, masks, names = bad_folder
    result = scan_masks(folder, num_classes=3, ignore_index=255, skip_bad=True, progress=False)
    assert result.stats == ClassStats.from_masks(masks, 3, ignore_index=255)
    assert [path.rsplit("/", 1)[-1] for path, _ in result.skipped] == names
    assert all(path in reason for path, reason in result.skipped)
    assert result.files == len(masks) + len(names)
    text = format_scan(result)
    assert "skipped 4 bad file(s)" in text and all(name in text for name in names)


def test_rgb_masks_with_a_palette(files):
    path = files.png("rgb.png", np.array([[[9, 0, 0], [0, 9, 0], [0, 9, 0]]], np.uint8))
    for palette in ({(0, 9, 0): 0, (9, 0, 0): 1}, [(0, 9, 0), (9, 0, 0)]):
        stats = scan_masks([path], palette=palette, progress=False).stats
        assert stats.counts == (2, 1)


def test_workers_give_the_serial_result(bad_folder):
    folder, _, _ = bad_folder
    options = dict(num_classes=3, ignore_index=255, skip_bad=True, progress=False)
    serial = scan_masks(folder, workers=0, **options)
    parallel = scan_masks(folder, workers=2, **options)
    assert parallel == serial
    with pytest.raises(ValueError, match="x_broken"):
        scan_masks(folder, workers=2, num_classes=3, ignore_index=255, progress=False)


def test_streams_lazily_one_file_at_a_time(files, make_masks, monkeypatch):
    """The scanner pulls paths from a generator as it reads them and keeps no mask: when a
    path is yielded, every earlier mask has been read, and freed."""
    masks = make_masks(6)
    paths = _write_masks(files, masks)
    read, masks_read = [], []
    real_read = scan_module.read_mask

    def tracking_read(path, **options):
        mask = real_read(path, **options)
        read.append(path)
        masks_read.append(weakref.ref(mask))
        return mask

    monkeypatch.setattr(scan_module, "read_mask", tracking_read)

    def lazily():
        for position, path in enumerate(paths):
            assert len(read) == position, "a path is read before the next one is pulled"
            assert all(mask() is None for mask in masks_read), "no mask is kept"
            yield path

    result = scan_masks(lazily(), num_classes=4, ignore_index=255, progress=False)
    assert result.stats == ClassStats.from_masks(masks, 4, ignore_index=255)
    assert len(read) == 6


def test_progress_goes_to_stderr(files, make_masks, capsys):
    _write_masks(files, make_masks(2))
    scan_masks(files.root / "d", ignore_index=255, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "scan" in captured.err and "2/2" in captured.err


def test_format_scan_shows_everything():
    stats = ClassStats((9000, 900, 0, 100), (3, 2, 0, 1), 40, 3, ignore_index=(255,))
    text = format_scan(ScanResult(stats, [], 3))
    lines = text.splitlines()
    assert lines[0].split() == ["class", "pixels", "fraction", "images", "inv_freq",
                                "inv_sqrt", "median", "eff_num", "log_inv"]
    assert lines[1].split()[:4] == ["0", "9,000", "0.9000", "3"]
    assert lines[3].split()[:4] == ["2", "0", "0.0000", "0"]
    assert lines[4].split()[:4] == ["3", "100", "0.0100", "1"]
    assert float(lines[4].split()[4]) == pytest.approx(stats.weights("inverse_frequency")[3],
                                                       rel=1e-3)
    assert "40 ignored (ignore_index=[255])" in text
    assert "imbalance ratio (largest / smallest present class): 90" in text
    assert "absent classes: [2]" in text
    assert "never occur" not in text
    binary = format_scan(ScanResult(ClassStats((90, 10), (1, 1), 0, 1), [], 1))
    assert "balanced" in binary.splitlines()[0]


def test_format_scan_hints_at_0_255_masks(files):
    path = files.png("m.png", (np.arange(16).reshape(4, 4) % 2 * 255).astype(np.uint8))
    result = scan_masks([path], progress=False)
    assert result.stats.num_classes == 256
    assert "254 of 256 classes never occur" in format_scan(result)


def test_rejects_bad_arguments(files, make_masks):
    _write_masks(files, make_masks(1))
    with pytest.raises(ValueError, match="num_classes"):
        scan_masks(files.root / "d", num_classes=0)
    with pytest.raises(ValueError, match="workers"):
        scan_masks(files.root / "d", workers=-1)
    with pytest.raises(ValueError, match="at least one mask"):
        scan_masks([], progress=False)
    with pytest.raises(ValueError, match="No such file"):
        scan_masks(files.root / "missing", progress=False)
    negative = files.npy("neg.npy", np.array([[-1, 0]]))
    with pytest.raises(ValueError, match=r"neg\.npy.*\[0, 65536\).*-1"):
        scan_masks([negative], progress=False)
