"""Datasets of the CLI: the synthetic set, file readers, the folder format, build_datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seglosses.cli.data import (
    DatasetInfo,
    FolderSegmentation,
    SyntheticSegmentation,
    build_datasets,
)
from seglosses.cli.readers import read_image, read_mask

PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]  # as in conftest.palette_png

# ------------------------------------------------------------------------------ synthetic


def test_synthetic_is_deterministic_per_seed_and_index():
    a, b = SyntheticSegmentation(6, size=(32, 40)), SyntheticSegmentation(6, size=(32, 40))
    later = [b[i] for i in (5, 3, 0)]  # access order does not matter
    for (image_b, mask_b), i in zip(later, (5, 3, 0), strict=True):
        image_a, mask_a = a[i]
        assert torch.equal(image_a, image_b) and torch.equal(mask_a, mask_b)
    other = SyntheticSegmentation(6, size=(32, 40), seed=1)
    assert not torch.equal(a[0][1], other[0][1])
    assert not torch.equal(a[0][1], a[1][1])
    assert torch.equal(a[-1][1], a[5][1])
    with pytest.raises(IndexError):
        a[6]


@pytest.mark.parametrize("dims, size, channels", [(2, (32, 40), 1), (2, (24, 24), 3),
                                                  (3, (12, 16, 20), 1)])
def test_synthetic_shapes_and_dtypes(dims, size, channels):
    data = SyntheticSegmentation(3, size=size, dims=dims, in_channels=channels)
    image, mask = data[2]
    assert image.shape == (channels, *size) and image.dtype == torch.float32
    assert mask.shape == size and mask.dtype == torch.int64
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert 0 <= int(mask.min()) and int(mask.max()) < data.num_classes
    assert (data.num_classes, data.in_channels, len(data)) == (7, channels, 3)
    assert data.class_names == ("background", "blob", "ellipse", "box", "ring", "line", "dot")


def test_synthetic_class_imbalance_is_real():
    data = SyntheticSegmentation(16)
    fractions = np.stack([np.bincount(data[i][1].numpy().ravel(), minlength=7) / 96 ** 2
                          for i in range(16)])
    mean = fractions.mean(0)
    assert (fractions > 0).any(0).all(), "every class appears in 16 images"
    assert mean[1:].min() < 0.01, f"the smallest class is rare: {mean}"
    assert mean[0] > 0.5 and mean[1] > 0.05, "a large background and a large blob"
    assert mean[1:].max() / mean[1:].min() > 20


def test_synthetic_classes_have_learnable_intensity_cues():
    data = SyntheticSegmentation(8, size=(64, 64))
    images = np.stack([data[i][0][0].numpy() for i in range(8)])
    masks = np.stack([data[i][1].numpy() for i in range(8)])
    means = np.array([images[masks == c].mean() for c in range(7)])
    assert np.all(np.diff(means) > 0.02), means  # distinct, ordered class intensities
    nearest = np.abs(images[..., None] - means).argmin(-1)
    # a per-pixel nearest-mean rule already beats "all background"; a U-Net adds context
    assert (nearest == masks).mean() > (masks == 0).mean()


def test_synthetic_binary_and_many_classes():
    binary = SyntheticSegmentation(2, num_classes=1, size=(32, 32))
    assert set(binary[0][1].unique().tolist()) <= {0, 1} and binary.class_names == ("foreground",)
    many = SyntheticSegmentation(2, num_classes=10, size=(32, 32))
    assert len(set(many.class_names)) == 10 and int(many[0][1].max()) < 10


@pytest.mark.parametrize("options", [dict(dims=4), dict(size=(32,)), dict(size=(4, 4)),
                                     dict(num_classes=0), dict(seed=-1), dict(in_channels=0)])
def test_synthetic_rejects_bad_options(options):
    with pytest.raises(ValueError, match="SyntheticSegmentation"):
        SyntheticSegmentation(2, **options)


# ------------------------------------------------------------------------------ read_image


def test_read_image_8_and_16_bit_grey_png(files):
    grey8 = np.array([[0, 51], [255, 102]], dtype=np.uint8)
    grey16 = np.array([[0, 65535], [13107, 1]], dtype=np.uint16)
    image = read_image(files.png("a.png", grey8))
    assert image.shape == (1, 2, 2) and image.dtype == np.float32
    np.testing.assert_allclose(image[0], grey8 / 255, rtol=1e-6)
    np.testing.assert_allclose(read_image(files.png("b.png", grey16))[0], grey16 / 65535,
                               rtol=1e-6)
    np.testing.assert_allclose(read_image(files.tiff("c.tif", grey16))[0], grey16 / 65535,
                               rtol=1e-6)


def test_read_image_rgb_and_rgba_are_channels_first(files, rng):
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    image = read_image(files.png("rgb.png", rgb))
    assert image.shape == (3, 5, 7)
    np.testing.assert_allclose(image, np.moveaxis(rgb, -1, 0) / 255, rtol=1e-6)
    rgba = np.concatenate([rgb, np.full((5, 7, 1), 128, np.uint8)], axis=-1)
    np.testing.assert_allclose(read_image(files.png("rgba.png", rgba)), image)
    np.testing.assert_allclose(read_image(files.tiff("rgb.tif", rgb)), image)
    labels = np.array([[0, 1], [2, 3]], dtype=np.uint8)  # a palette *image* gives its colours
    colours = np.array(PALETTE, dtype=np.float32)[labels] / 255
    np.testing.assert_allclose(read_image(files.palette_png("p.png", labels)),
                               np.moveaxis(colours, -1, 0))


def test_read_image_arrays(files, rng):
    last = rng.random((6, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(read_image(files.npy("last.npy", last)),
                                  np.moveaxis(last, -1, 0))
    first = np.moveaxis(last, -1, 0).copy()
    np.testing.assert_array_equal(read_image(files.npz("first.npz", image=first,
                                                       other=last)), first)
    ct = np.array([[-1000, 0], [1000, 3000]], dtype=np.int16)  # scaled by its own range
    np.testing.assert_allclose(read_image(files.npy("ct.npy", ct))[0], (ct + 1000) / 4000)
    volume = rng.random((4, 6, 8))
    assert read_image(files.npy("volume.npy", volume), dims=3).shape == (1, 4, 6, 8)
    with pytest.raises(ValueError, match=r"stack\.npy.*2-D image.*\(2, 4, 6, 8\)"):
        read_image(files.npy("stack.npy", np.stack([volume, volume])), dims=2)


def test_read_image_nifti_volume(files, rng):
    volume = rng.integers(0, 4000, (5, 6, 7)).astype(np.int16)
    image = read_image(files.nifti("ct.nii.gz", volume))
    assert image.shape == (1, 5, 6, 7)
    np.testing.assert_allclose(image[0], (volume - volume.min()) / np.ptp(volume), rtol=1e-5)


# ------------------------------------------------------------------------------ read_mask


def test_read_mask_grey_png_tiff_npy_npz(files, make_masks):
    mask = make_masks(1)[0]
    for path in (files.png("m.png", mask), files.tiff("m.tif", mask), files.npy("m.npy", mask),
                 files.npz("m.npz", other=mask + 1, mask=mask)):
        read = read_mask(path)
        assert read.dtype.kind in "iu"
        np.testing.assert_array_equal(read, mask, err_msg=str(path))
    wide = mask.astype(np.uint16) * 300
    np.testing.assert_array_equal(read_mask(files.png("m16.png", wide)), wide)


def test_read_mask_palette_png_gives_indices(files):
    labels = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    np.testing.assert_array_equal(read_mask(files.palette_png("p.png", labels)), labels)


def test_read_mask_rgb_needs_a_palette(files):
    colours = np.array([[[255, 0, 0], [0, 0, 0]], [[0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    path = files.png("rgb.png", colours)
    with pytest.raises(ValueError, match=r"rgb\.png.*palette"):
        read_mask(path)
    palette = {(0, 0, 0): 0, (255, 0, 0): 1, (0, 255, 0): 2, (0, 0, 255): 3}
    np.testing.assert_array_equal(read_mask(path, palette=palette), [[1, 0], [2, 3]])
    np.testing.assert_array_equal(read_mask(path, palette=["#000000", "255,0,0", (0, 255, 0),
                                                           (0, 0, 255)]), [[1, 0], [2, 3]])
    with pytest.raises(ValueError, match=r"rgb\.png.*\(0, 0, 255\)"):
        read_mask(path, palette={(0, 0, 0): 0, (255, 0, 0): 1, (0, 255, 0): 2})
    grey = files.png("grey_rgb.png", np.repeat(np.array([[0, 3]], np.uint8)[..., None], 3, -1))
    np.testing.assert_array_equal(read_mask(grey), [[0, 3]])  # equal channels: a grey mask


def test_read_mask_refuses_floats_and_unreadable_files(files):
    with pytest.raises(ValueError, match=r"f\.npy.*integer.*float64"):
        read_mask(files.npy("f.npy", np.zeros((3, 3))))
    with pytest.raises(ValueError, match=r"broken\.png.*readable PNG"):
        read_mask(files.raw("broken.png", b"not a png"))
    with pytest.raises(ValueError, match=r"notes\.txt.*suffixes"):
        read_mask(files.raw("notes.txt", b""))


def test_read_mask_nifti_accepts_whole_floats(files):
    labels = np.zeros((4, 5, 6), dtype=np.float32)
    labels[1:3, 2:4, 3:5] = 2
    np.testing.assert_array_equal(read_mask(files.nifti("m.nii.gz", labels)), labels)
    with pytest.raises(ValueError, match=r"half\.nii\.gz.*integer"):
        read_mask(files.nifti("half.nii.gz", labels + 0.5))


# ------------------------------------------------------------------------------ folder


def test_folder_matches_by_stem_and_infers_classes(grey_folder):
    root, masks = grey_folder
    data = FolderSegmentation(root, ignore_index=255)
    assert len(data) == 6 and data.num_classes == 4 and data.in_channels == 1
    assert [p[0].rsplit("/", 1)[-1] for p in data.files] == [f"img{i}.png" for i in range(6)]
    image, mask = data[1]
    assert image.shape == (1, 12, 10) and image.dtype == torch.float32
    np.testing.assert_array_equal(mask.numpy(), masks[1])
    assert mask.dtype == torch.int64
    with pytest.raises(ValueError, match=r"labels of .*img0\.png.*255"):
        FolderSegmentation(root, num_classes=4)[0]  # 255 is a label unless ignored


def test_folder_mixed_formats_rgb_images_palette_masks(files, rng):
    labels = rng.integers(0, 4, (2, 9, 11)).astype(np.uint8)
    files.png("d/images/a.png", rng.integers(0, 256, (9, 11, 3), np.uint8))
    files.tiff("d/images/b.tiff", rng.integers(0, 256, (9, 11, 3), np.uint8))
    files.palette_png("d/masks/a.png", labels[0])
    files.npy("d/masks/b.npy", labels[1])
    data = FolderSegmentation(files.root / "d")
    assert data.in_channels == 3 and data.num_classes == int(labels.max()) + 1
    for index in range(2):
        image, mask = data[index]
        assert image.shape == (3, 9, 11)
        np.testing.assert_array_equal(mask.numpy(), labels[index])


def test_folder_rgb_masks_with_palette(files):
    colours = np.array([[[255, 0, 0], [0, 0, 0]]], dtype=np.uint8)
    files.png("d/images/a.png", np.zeros((1, 2), np.uint8))
    files.png("d/masks/a.png", colours)
    with pytest.raises(ValueError, match=r"masks/a\.png.*palette"):
        FolderSegmentation(files.root / "d")
    data = FolderSegmentation(files.root / "d", palette={(0, 0, 0): 0, (255, 0, 0): 1})
    assert data.num_classes == 2 and data[0][1].tolist() == [[1, 0]]


def test_folder_errors_name_the_file(files, rng):
    image = rng.integers(0, 256, (8, 8), np.uint8)
    files.png("d/images/a.png", image)
    files.png("d/images/b.png", image)
    files.png("d/masks/a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"image .*images/b\.png.*mask with the same file stem"):
        FolderSegmentation(files.root / "d")
    files.png("d/masks/b.png", np.zeros((8, 9), np.uint8))
    files.png("d/masks/c.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"mask .*masks/c\.png.*image"):
        FolderSegmentation(files.root / "d")
    (files.root / "d/masks/c.png").unlink()
    data = FolderSegmentation(files.root / "d", num_classes=2)
    with pytest.raises(ValueError, match=r"masks/b\.png.*size of its image"):
        data[1]
    files.png("d/images/c.png", np.zeros((8, 8, 3), np.uint8))
    files.png("d/masks/c.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"images/c\.png.*1 channel"):
        FolderSegmentation(files.root / "d", num_classes=2)[2]
    with pytest.raises(ValueError, match="images/ and masks/"):
        FolderSegmentation(files.root / "nowhere")


def test_folder_odd_sizes_centre_crop_and_pad_with_the_ignore_label(files, rng):
    image = rng.integers(1, 256, (13, 17), np.uint8)
    mask = rng.integers(0, 3, (13, 17)).astype(np.uint8)
    files.png("d/images/a.png", image)
    files.png("d/masks/a.png", mask)
    val = FolderSegmentation(files.root / "d", crop=(16, 16), ignore_index=255, train=False)
    x, y = val[0]
    assert x.shape == (1, 16, 16) and y.shape == (16, 16)
    # height 13 -> 16: 1 row of padding before, 2 after; width 17 -> 16: drop column 0
    assert (y[0] == 255).all() and (y[-2:] == 255).all() and (x[0, 0] == 0).all()
    np.testing.assert_array_equal(y[1:14].numpy(), mask[:, :16])
    np.testing.assert_allclose(x[0, 1:14].numpy(), image[:, :16] / 255, rtol=1e-6)
    assert (FolderSegmentation(files.root / "d", crop=16, train=False)[0][1][0] == 0).all()


def test_folder_random_crops_depend_on_seed_epoch_and_index(files, rng):
    for name in ("a", "b"):
        files.png(f"d/images/{name}.png", rng.integers(0, 256, (40, 40), np.uint8))
        files.png(f"d/masks/{name}.png", rng.integers(0, 2, (40, 40)).astype(np.uint8))
    train = FolderSegmentation(files.root / "d", crop=(8, 8), num_classes=2)
    first = train[0][0]
    assert torch.equal(first, train[0][0]), "same epoch, same window"
    train.set_epoch(1)
    assert not torch.equal(first, train[0][0]), "a new epoch draws a new window"
    train.set_epoch(0)
    assert torch.equal(first, train[0][0])
    batch = next(iter(DataLoader(train, batch_size=2)))
    assert batch[0].shape == (2, 1, 8, 8) and batch[1].shape == (2, 8, 8)


def test_folder_nifti_volumes(files, rng):
    for name in ("a", "b"):
        files.nifti(f"d/images/{name}.nii.gz", rng.random((6, 7, 8)).astype(np.float32))
        files.nifti(f"d/masks/{name}.nii", rng.integers(0, 3, (6, 7, 8)).astype(np.uint8))
    data = FolderSegmentation(files.root / "d", dims=3, crop=(4, 8, 8), train=False)
    image, mask = data[1]
    assert image.shape == (1, 4, 8, 8) and mask.shape == (4, 8, 8) and data.num_classes == 3


# ------------------------------------------------------------------------------ build_datasets


def test_build_synthetic():
    train, val, info = build_datasets("synthetic", size=(32, 32), num_images=10, val_split=0.2)
    assert (len(train), len(val)) == (8, 2)
    assert info == DatasetInfo("synthetic", 7, 1, info.class_names, 2, None, 8, 2)
    assert not torch.equal(train[0][1], val[0][1])
    train3, _, info3 = build_datasets("synthetic", dims=3, size=8, num_images=2, val_split=0.5)
    assert train3[0][0].shape == (1, 8, 8, 8) and info3.dims == 3


def test_build_folder_split_is_deterministic_and_disjoint(grey_folder):
    root, _ = grey_folder
    train, val, info = build_datasets(str(root), val_split=0.34, ignore_index=255, seed=3)
    assert (len(train), len(val), info.num_train, info.num_val) == (4, 2, 4, 2)
    assert info.num_classes == 4 and info.ignore_index == 255 and info.name == "data"
    assert sorted(train.indices + val.indices) == list(range(6))
    again, _, _ = build_datasets(str(root), val_split=0.34, ignore_index=255, seed=3)
    assert again.indices == train.indices
    assert train.dataset.train and not val.dataset.train
    _, no_val, _ = build_datasets(str(root), val_split=0, ignore_index=255)
    assert len(no_val) == 0
    with pytest.raises(ValueError, match="val_split"):
        build_datasets(str(root), val_split=1.0)


def test_build_folder_with_train_and_val_subfolders(files, rng):
    for part, count, top in (("train", 3, 2), ("val", 2, 5)):
        for index in range(count):
            files.png(f"d/{part}/images/{index}.png", rng.integers(0, 256, (8, 8), np.uint8))
            files.png(f"d/{part}/masks/{index}.png", np.full((8, 8), index % top, np.uint8))
    train, val, info = build_datasets(str(files.root / "d"), crop=(4, 4))
    assert (len(train), len(val)) == (3, 2)
    assert info.num_classes == 2, "inferred from train/ and val/ masks together"
    assert val[0][0].shape == (1, 4, 4)
    with pytest.raises(ValueError, match="'synthetic' or an existing folder"):
        build_datasets(str(files.root / "missing"))
