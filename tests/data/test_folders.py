"""Folder datasets on tiny files written here: pairing, official preprocessing, id remapping, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rtgan.data.folders import (
    ADE20KDataset,
    CityscapesDataset,
    COCOStuffDataset,
    FolderDataset,
    Preprocess,
    make_dataset,
)
from rtgan.errors import ConfigError, InputError

H, W = 24, 40
NAMES = ("a1", "a2", "a10")  # natural order: a1, a2, a10


def stripes(offset: int = 0) -> np.ndarray:
    """Ids that differ along x and y, so a wrong crop offset or flip cannot go unnoticed:
    x + 25 * y mod 250 repeats only for shifts larger than the tiny images allow."""
    y, x = np.mgrid[:H, :W]
    return ((x + 25 * y + offset) % 250).astype(np.uint8)


def colour(ids: np.ndarray) -> np.ndarray:
    """A photo whose red channel is the label id: a label/photo mismatch shows in every pixel."""
    ids = ids.astype(np.int64)
    return np.stack([ids, (ids * 3) % 256, 255 - ids], -1).astype(np.uint8)


def write(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array)
    (img.convert(mode) if mode else img).save(path)
    return path


def folder(tmp_path: Path, labels=None, names=NAMES, instance: bool = False) -> Path:
    for i, name in enumerate(names):
        ids = stripes(i) if labels is None else labels
        write(tmp_path / "label" / f"{name}.png", ids)
        write(tmp_path / "image" / f"{name}.jpg" if i % 2 else tmp_path / "image" / f"{name}.png", colour(ids))
        if instance:
            write(tmp_path / "inst" / f"{name}.png", (np.arange(H * W).reshape(H, W) * 29).astype(np.uint16))
    return tmp_path


def dataset(root: Path, label_nc: int = 250, instance: bool = False, **preprocess) -> FolderDataset:
    pre = Preprocess(**{"preprocess_mode": "crop", "load_size": 40, "crop_size": 16, **preprocess})
    return FolderDataset(
        root / "label", root / "image", root / "inst" if instance else None, label_nc=label_nc, preprocess=pre
    )


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return ((image.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def test_pairs_shapes_dtypes_range(tmp_path):
    root = folder(tmp_path, instance=True)
    data = dataset(root, instance=True, preprocess_mode="resize_and_crop", load_size=36, crop_size=32)
    assert len(data) == 3 and [Path(p).stem for p in data.image_paths] == list(NAMES)
    for i in range(3):
        s = data[i]
        assert s["labels"].dtype == torch.int64 and s["labels"].shape == (32, 32)
        assert s["image"].dtype == torch.float32 and s["image"].shape == (3, 32, 32)
        assert s["instance"].dtype == torch.int64 and s["instance"].shape == (32, 32)
        assert -1 <= s["image"].min() and s["image"].max() <= 1
        assert Path(s["path"]).stem == NAMES[i]
    assert "instance" not in dataset(root)[0]


def windows(source: np.ndarray, size: int):
    for flip in (False, True):
        src = source[:, ::-1] if flip else source
        for y in range(source.shape[0] - size + 1):
            for x in range(source.shape[1] - size + 1):
                yield (x, y, flip), src[y : y + size, x : x + size]


def test_label_and_photo_share_crop_and_flip(tmp_path):
    data = dataset(folder(tmp_path))  # PNG photos at even indices: lossless, so exact colours
    seen = set()
    for epoch in range(8):
        data.set_epoch(epoch)
        for i in (0, 2):
            s = data[i]
            labels = s["labels"].numpy()
            np.testing.assert_array_equal(to_uint8(s["image"]), colour(labels))
            # the label crop is a true (possibly mirrored) window of the source
            hits = [key for key, win in windows(stripes(i), 16) if np.array_equal(win, labels)]
            assert len(hits) == 1
            seen.add(hits[0][2])
    assert seen == {False, True}


def test_nearest_keeps_source_ids(tmp_path):
    ids = np.zeros((H, W), np.uint8)
    ids[5:17, 3:29], ids[:, 31:], ids[20:, :7] = 3, 7, 12
    data = dataset(folder(tmp_path, labels=ids), label_nc=13, preprocess_mode="resize_and_crop", load_size=37)
    for i in range(3):
        assert set(data[i]["labels"].unique().tolist()) <= {0, 3, 7, 12}


@pytest.mark.parametrize(
    "mode, load, crop, aspect, size",  # size (h, w) worked out by hand from the official formulas
    [
        ("resize_and_crop", 20, 16, 1.0, (16, 16)),
        ("resize_and_crop", 12, 16, 1.0, (16, 16)),  # crop larger than the image pads
        ("crop", 99, 16, 1.0, (16, 16)),
        ("scale_width", 30, 16, 1.0, (18, 30)),  # int(30 * 24 / 40)
        ("scale_width_and_crop", 30, 16, 1.0, (16, 16)),
        ("scale_shortside", 12, 16, 1.0, (12, 20)),  # int(12 * 40 / 24)
        ("fixed", 99, 32, 2.0, (16, 32)),
        ("fixed", 99, 30, 1.4, (21, 30)),  # round(30 / 1.4)
        ("none", 99, 16, 1.0, (32, 32)),  # round(24 / 32) * 32, round(40 / 32) * 32
    ],
)
def test_output_sizes(tmp_path, mode, load, crop, aspect, size):
    data = dataset(folder(tmp_path), preprocess_mode=mode, load_size=load, crop_size=crop, aspect_ratio=aspect)
    s = data[0]
    assert tuple(s["labels"].shape) == size and tuple(s["image"].shape[1:]) == size


def test_deterministic_per_seed_epoch_index(tmp_path):
    root = folder(tmp_path)
    a, b = dataset(root), dataset(root)
    for i in range(3):
        assert torch.equal(a[i]["labels"], b[i]["labels"]) and torch.equal(a[i]["image"], b[i]["image"])
    before = [a[i]["labels"] for i in range(3)]
    a.set_epoch(1)
    assert any(not torch.equal(x, a[i]["labels"]) for i, x in enumerate(before))
    a.set_epoch(0)
    assert all(torch.equal(x, a[i]["labels"]) for i, x in enumerate(before))


def test_eval_is_centred_and_unflipped(tmp_path):
    data = dataset(folder(tmp_path), train=False)
    first = data[0]["labels"]
    data.set_epoch(5)
    assert torch.equal(first, data[0]["labels"])
    np.testing.assert_array_equal(first.numpy(), stripes(0)[4:20, 12:28])


@pytest.mark.parametrize("mode", ["L", "P", "I;16"])
def test_label_modes_and_folder_dontcare(tmp_path, mode):
    ids = stripes() % 13
    ids[:4] = 255
    root = folder(tmp_path, labels=ids)
    if mode != "L":
        for p in (root / "label").iterdir():
            write(p, ids.astype(np.uint16)) if mode == "I;16" else write(p, ids, "P")
    pre = Preprocess("crop", 1, 64, train=False)  # 64 > the image: the whole map, padded
    data = FolderDataset(root / "label", root / "image", label_nc=13, contain_dontcare_label=True, preprocess=pre)
    np.testing.assert_array_equal(data[0]["labels"][:H, :W].numpy(), np.where(ids == 255, 13, ids))


def cityscapes(root: Path, ids: np.ndarray) -> Path:
    for city, frame in (("aachen", "000000_000019"), ("bochum", "000001_000019")):
        base = f"{city}_{frame}"
        write(root / "gtFine/train" / city / f"{base}_gtFine_labelIds.png", ids)
        write(root / "gtFine/train" / city / f"{base}_gtFine_instanceIds.png", (ids.astype(np.uint16) * 1000 + 1))
        write(root / "gtFine/train" / city / f"{base}_gtFine_color.png", colour(ids))  # ignored
        write(root / "leftImg8bit/train" / city / f"{base}_leftImg8bit.png", colour(ids))
    return root


def test_cityscapes_layout(tmp_path):
    ids = stripes() % 34
    data = CityscapesDataset(cityscapes(tmp_path, ids), "train", preprocess=Preprocess("fixed", 1, 40, 2.0))
    s = data[1]
    assert len(data) == 2 and "bochum" in s["path"] and s["labels"].shape == (20, 40)
    # 16-bit instance ids (car 26 -> 26001) survive
    assert {int(v) % 1000 for v in s["instance"].unique()} == {1} and s["instance"].max() == 33001
    assert CityscapesDataset.default_preprocess() == Preprocess("fixed", 512, 512, 2.0)
    assert CityscapesDataset.default_preprocess(False).train is False


def test_cityscapes_has_no_dontcare(tmp_path):
    ids = stripes() % 34
    ids[0, 0] = 255
    data = CityscapesDataset(cityscapes(tmp_path, ids), "train", preprocess=Preprocess("fixed", 1, 40, 2.0))
    with pytest.raises(InputError, match=r"aachen_000000_000019_gtFine_labelIds.png.*id 255.*contain_dontcare"):
        data[0]


def test_ade20k_shift(tmp_path):
    raw = stripes() % 151  # 0 is "other objects", 1..150 the classes
    for name in ("ADE_train_00000001", "ADE_train_00000002"):
        write(tmp_path / "annotations/training" / f"{name}.png", raw)
        write(tmp_path / "images/training" / f"{name}.jpg", colour(raw))
    pre = Preprocess("crop", 1, 64, train=False)  # 64 > the image: no crop, padding only
    s = ADE20KDataset(tmp_path, "train", preprocess=pre)[0]["labels"][:H, :W].numpy()
    np.testing.assert_array_equal(s, np.where(raw == 0, 150, raw.astype(np.int64) - 1))
    unshifted = ADE20KDataset(tmp_path, "train", shift_labels=False, preprocess=pre)[0]["labels"][:H, :W]
    np.testing.assert_array_equal(unshifted.numpy(), raw)
    assert ADE20KDataset.default_preprocess() == Preprocess("resize_and_crop", 286, 256)
    assert ADE20KDataset.default_preprocess(train=False).load_size == 256
    raw[0, 0] = 151
    write(tmp_path / "annotations/training/ADE_train_00000002.png", raw)
    with pytest.raises(InputError, match=r"ADE_train_00000002.png.*151"):
        ADE20KDataset(tmp_path, "train", preprocess=pre)[1]


def test_coco_dontcare_and_portraits(tmp_path):
    raw = stripes() % 182
    raw[:3] = 255
    for split, name in (("train", "000000000009"), ("train", "000000000025"), ("val", "000000000139")):
        write(tmp_path / f"{split}_label/{name}.png", raw)
        write(tmp_path / f"{split}_img/{name}.jpg", colour(raw))
        write(tmp_path / f"{split}_inst/{name}.png", raw)
    for kind, array in (("label", raw), ("img", colour(raw)), ("inst", raw)):
        write(tmp_path / f"train_{kind}_portrait/000000000001.{'jpg' if kind == 'img' else 'png'}", array)
    pre = Preprocess("crop", 1, 64, train=False)
    train = COCOStuffDataset(tmp_path, "train", preprocess=pre)
    assert len(train) == 3 and len(COCOStuffDataset(tmp_path, "train", portraits=False, preprocess=pre)) == 2
    val = COCOStuffDataset(tmp_path, "val", preprocess=pre)
    labels = val[0]["labels"][:H, :W].numpy()
    np.testing.assert_array_equal(labels, np.where(raw == 255, 182, raw))
    assert val[0]["instance"][:H, :W].max() == 255  # instance ids are not remapped
    assert "instance" not in COCOStuffDataset(tmp_path, "val", instance=False, preprocess=pre)[0]


def test_make_dataset(tmp_path):
    root = folder(tmp_path)
    data = make_dataset("folder", root, "val", label_dir="label", image_dir="image", label_nc=250)
    assert isinstance(data, FolderDataset) and data.preprocess == FolderDataset.default_preprocess(train=False)
    with pytest.raises(ConfigError, match="did you mean 'ade20k'"):
        make_dataset("ade20", root)
    with pytest.raises(ConfigError, match="did you mean 'val'"):
        make_dataset("coco", root, "vall")
    with pytest.raises(ConfigError, match="did you mean 'scale_width'"):
        Preprocess("scale_widht")


def test_mismatched_names(tmp_path):
    root = folder(tmp_path)
    (root / "image/a10.png").rename(root / "image/b10.png")
    with pytest.raises(InputError, match=r"first mismatch is .*a10.png.* with .*b10.png"):
        dataset(root)
    (root / "image/b10.png").unlink()
    with pytest.raises(InputError, match=r"3 vs 2 files; unpaired names include \['a10'\]"):
        dataset(root)


def test_rgb_label_map(tmp_path):
    root = folder(tmp_path)
    write(root / "label/a2.png", colour(stripes()))
    with pytest.raises(InputError, match=r"a2.png.*mode RGB.*not colours"):
        dataset(root)[1]


def test_out_of_range_without_dontcare(tmp_path):
    root = folder(tmp_path)
    with pytest.raises(InputError, match=r"a1.png.*holds id 13.*label_nc=13 without"):
        dataset(root, label_nc=13)[0]


def test_corrupt_png(tmp_path):
    root = folder(tmp_path)
    path = root / "label/a10.png"
    path.write_bytes(path.read_bytes()[:60])
    data = dataset(root)
    data[0]
    with pytest.raises(InputError, match=r"cannot read label map .*a10.png"):
        data[2]


def test_a_missing_dataset_folder_names_itself_and_the_layout(tmp_path):
    from rtgan.data.landscapes import write_folder

    with pytest.raises(ConfigError, match=r"nope does not exist; the folder layout is ROOT/labels/ .*, ROOT/images/"):
        make_dataset("folder", tmp_path / "nope", label_nc=182)
    (tmp_path / "half" / "labels").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"half has no images/: the folder layout"):
        make_dataset("folder", tmp_path / "half", label_nc=182)
    with pytest.raises(ConfigError, match=r"has no gtFine/val/, leftImg8bit/val/: the cityscapes layout"):
        make_dataset("cityscapes", tmp_path / "half", "val")
    with pytest.raises(ConfigError, match=r"has no annotations/training/, images/training/"):
        make_dataset("ade20k", tmp_path / "half")
    # the default folders are what rtgan.data.landscapes writes
    write_folder(tmp_path / "ls", 2, 32, 32, progress=False)
    assert len(make_dataset("folder", tmp_path / "ls", label_nc=182)) == 2
