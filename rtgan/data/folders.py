"""Training datasets that read label maps and photos from disk, with the official SPADE preprocessing.

`Preprocess` is the official `get_params` + `get_transform` pair as one frozen config: it draws a
crop offset and a flip once per sample, then applies them to the label map, the instance map and
the photo alike (NEAREST for id maps, BICUBIC for photos). Randomness comes from a generator seeded
by (seed, epoch, index), so every DataLoader worker gives the same sample for the same index.

The layouts (`FolderDataset` and the Cityscapes, ADE20K and COCO-Stuff datasets) only differ in how
they find and pair their files, their class counts and how raw ids become model ids.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, NamedTuple, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import ConfigError, InputError
from ..utils.names import lookup
from .layouts import FOLDER_IMAGES, FOLDER_LABELS, check_root

PREPROCESS_MODES = (
    "resize_and_crop",
    "crop",
    "scale_width",
    "scale_width_and_crop",
    "scale_shortside",
    "scale_shortside_and_crop",
    "fixed",
    "none",
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
# Single-channel integer modes: P holds palette indices, which are the ids of a colour-coded PNG.
ID_MODES = ("L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N")


class Params(NamedTuple):
    """What `Preprocess.draw` picks once per sample: top-left of the crop, and whether to flip."""

    crop_pos: tuple[int, int]
    flip: bool


@dataclass(frozen=True)
class Preprocess:
    """Official SPADE resizing/cropping/flipping (defaults are the official base options).

    "fixed" resizes to crop_size x round(crop_size / aspect_ratio) (width x height); "none" only
    rounds each side to a multiple of 32, as the official code does in that mode and no other.
    With train=False nothing is random: the crop is centred and there is no flip.
    """

    preprocess_mode: str = "scale_width_and_crop"
    load_size: int = 1024
    crop_size: int = 512
    aspect_ratio: float = 1.0
    no_flip: bool = False
    train: bool = True

    def __post_init__(self):
        lookup(self.preprocess_mode, dict.fromkeys(PREPROCESS_MODES), "preprocess_mode")
        for name in ("load_size", "crop_size", "aspect_ratio"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}")

    def scaled_size(self, w: int, h: int) -> tuple[int, int]:
        """(w, h) after the resize step that precedes the crop."""
        mode, load = self.preprocess_mode, self.load_size
        if mode == "resize_and_crop":
            return load, load
        if mode.startswith("scale_width"):
            return load, int(load * h / w)
        if mode.startswith("scale_shortside"):
            # The official code keeps the short side at its original length here (it computes the
            # new short side and then uses the old one), stretching the image; we scale it to
            # load_size, which is what the mode's name and help text promise.
            long = int(load * max(w, h) / min(w, h))
            return (load, long) if w <= h else (long, load)
        return w, h

    def draw(self, size: tuple[int, int], rng: np.random.Generator) -> Params:
        """Pick the crop offset and flip for a source of `size` (w, h), as the official get_params."""
        w, h = self.scaled_size(*size)
        slack_x, slack_y = max(0, w - self.crop_size), max(0, h - self.crop_size)
        if not self.train:
            return Params((slack_x // 2, slack_y // 2), False)
        x, y = int(rng.integers(0, slack_x + 1)), int(rng.integers(0, slack_y + 1))
        flip = bool(rng.random() > 0.5)
        return Params((x, y), flip and not self.no_flip)

    def __call__(self, img: Image.Image, params: Params, resample: int) -> Image.Image:
        """Resize, crop, round or fix the size, then flip: the official transform order."""
        mode = self.preprocess_mode
        size = self.scaled_size(*img.size)
        if size != img.size:
            img = img.resize(size, resample)
        if "crop" in mode:
            # A crop reaching past the border pads with zeros, as PIL (and so the official code) does.
            x, y = params.crop_pos
            img = img.crop((x, y, x + self.crop_size, y + self.crop_size))
        if mode == "none":
            w, h = img.size
            size = (int(round(w / 32) * 32), int(round(h / 32) * 32))
            if size != img.size:
                img = img.resize(size, resample)
        if mode == "fixed":
            img = img.resize((self.crop_size, round(self.crop_size / self.aspect_ratio)), resample)
        if params.flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img


def _natural_key(path: str) -> list:
    # Digit runs compare as numbers (img2 before img10), as the official util.natural_sort.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def list_images(directory: str | os.PathLike, suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[str]:
    """Image files under `directory` (recursively), naturally sorted by path."""
    if not os.path.isdir(directory):
        raise InputError(f"directory {os.fspath(directory)!r} does not exist")
    found = [
        os.path.join(root, name)
        for root, _, names in os.walk(directory, followlinks=True)
        for name in names
        if name.lower().endswith(tuple(s.lower() for s in suffixes))
    ]
    if not found:
        raise InputError(f"no files ending in {', '.join(suffixes)} under {os.fspath(directory)!r}")
    return sorted(found, key=_natural_key)


def stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def check_pairs(first: list[str], second: list[str], key: Callable[[str], str], what: str) -> None:
    """Check two sorted file lists pair up one to one by `key`, naming what does not."""
    if len(first) != len(second):
        a, b = {key(p) for p in first}, {key(p) for p in second}
        only = sorted(a ^ b)[:3]
        raise InputError(
            f"{what}: {len(first)} vs {len(second)} files" + (f"; unpaired names include {only}" if only else "")
        )
    for p, q in zip(first, second):
        if key(p) != key(q):
            raise InputError(f"{what}: files do not pair up by name, first mismatch is {p!r} with {q!r}")


def open_image(path: str, what: str) -> Image.Image:
    """Open and fully decode an image, so a truncated or corrupt file fails here and names itself."""
    try:
        with Image.open(path) as img:
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InputError(f"cannot read {what} {path!r}: {e}") from e
    return img


def open_ids(path: str, what: str) -> Image.Image:
    img = open_image(path, what)
    if img.mode not in ID_MODES:
        raise InputError(
            f"{what} {path!r} has mode {img.mode}: {what}s hold one integer id per pixel "
            f"(a single-channel PNG, mode L, P or I;16), not colours; convert colour-coded maps to ids first"
        )
    return img


class PairedDataset(Dataset):
    """Samples from paired label/photo (and instance) files, each list already naturally sorted.

    Items are dicts: "labels" int64 (H, W) ids in 0..num_classes-1, "image" float32 (3, H, W) in
    [-1, 1], "instance" int64 (H, W) when instance files are given, and "path" (the photo's path).
    Call `set_epoch` at the start of each epoch; with persistent DataLoader workers, recreate the
    loader instead, since workers hold their own copy of the dataset.
    """

    def __init__(
        self,
        label_paths: list[str],
        image_paths: list[str],
        instance_paths: list[str] | None = None,
        *,
        label_nc: int,
        contain_dontcare_label: bool = False,
        preprocess: Preprocess,
        seed: int = 0,
    ):
        if not label_paths:
            raise InputError("the dataset has no label maps")
        check_pairs(label_paths, image_paths, self.pair_key, "label maps and photos")
        if instance_paths is not None:
            check_pairs(label_paths, instance_paths, self.pair_key, "label maps and instance maps")
        self.label_paths, self.image_paths, self.instance_paths = label_paths, image_paths, instance_paths
        self.label_nc, self.contain_dontcare_label = label_nc, contain_dontcare_label
        self.preprocess, self.seed, self.epoch = preprocess, seed, 0

    @property
    def num_classes(self) -> int:
        """Ids a sample may hold: label_nc, plus the don't-care class where there is one."""
        return self.label_nc + int(self.contain_dontcare_label)

    def pair_key(self, path: str) -> str:
        return stem(path)

    def map_ids(self, raw: np.ndarray) -> np.ndarray:
        """Raw file ids -> model ids; -1 or anything >= num_classes marks an invalid raw id."""
        ids = raw.astype(np.int64)
        ids[raw == 255] = self.label_nc  # official: 255 is 'unknown', the don't-care channel
        return ids

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.label_paths)

    def __getitem__(self, index: int) -> dict:
        label_path, image_path = self.label_paths[index], self.image_paths[index]
        label = open_ids(label_path, "label map")
        self._check_ids(np.asarray(label), label_path)
        params = self.preprocess.draw(label.size, np.random.default_rng([self.seed, self.epoch, index]))
        label = self.preprocess(label, params, Image.Resampling.NEAREST)
        image = self.preprocess(open_image(image_path, "photo").convert("RGB"), params, Image.Resampling.BICUBIC)
        if image.size != label.size:
            raise InputError(f"photo {image_path!r} and label map {label_path!r} differ in size")
        # ToTensor then Normalize(0.5, 0.5) in the official order, so values match to the bit.
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
        sample = {
            # Remapped after the geometry, as officially: padding from a crop is raw id 0.
            "labels": torch.from_numpy(self.map_ids(np.asarray(label))),
            "image": ((pixels - 0.5) / 0.5).contiguous(),
            "path": image_path,
        }
        if self.instance_paths is not None:
            path = self.instance_paths[index]
            instance = self.preprocess(open_ids(path, "instance map"), params, Image.Resampling.NEAREST)
            if instance.size != label.size:
                raise InputError(f"instance map {path!r} and label map {label_path!r} differ in size")
            sample["instance"] = torch.from_numpy(np.asarray(instance).astype(np.int64))
        return sample

    def _check_ids(self, raw: np.ndarray, path: str) -> None:
        # Checked on the whole file, so whether a sample fails does not depend on its crop.
        ids = self.map_ids(raw)
        bad = (ids < 0) | (ids >= self.num_classes)
        if bad.any():
            values = np.unique(raw[bad])
            hint = (
                "; set contain_dontcare_label=True if 255 marks unlabelled pixels"
                if 255 in values and not self.contain_dontcare_label
                else ""
            )
            raise InputError(
                f"label map {path!r} holds id {int(values[0])} (invalid ids: {values[:8].tolist()}), "
                f"outside what label_nc={self.label_nc}"
                f"{' with' if self.contain_dontcare_label else ' without'} a don't-care class allows{hint}"
            )


class FolderDataset(PairedDataset):
    """SPADE's custom layout: label maps, photos and optional instance maps in three directories,
    paired by sorted order, and checked to have the same names (extensions aside)."""

    @classmethod
    def default_preprocess(cls, train: bool = True) -> Preprocess:
        # official custom_dataset.py defaults
        return Preprocess("resize_and_crop", 286 if train else 256, 256, train=train)

    def __init__(
        self,
        label_dir: str | os.PathLike,
        image_dir: str | os.PathLike,
        instance_dir: str | os.PathLike | None = None,
        *,
        label_nc: int,
        contain_dontcare_label: bool = False,
        preprocess: Preprocess | None = None,
        seed: int = 0,
    ):
        super().__init__(
            list_images(label_dir),
            list_images(image_dir),
            None if instance_dir is None else list_images(instance_dir),
            label_nc=label_nc,
            contain_dontcare_label=contain_dontcare_label,
            preprocess=preprocess or self.default_preprocess(),
            seed=seed,
        )


def _split(split: str, splits: dict[str, str], dataset: str) -> str:
    return lookup(split, splits, f"{dataset} split")


class CityscapesDataset(PairedDataset):
    """gtFine/<split>/<city>/*_gtFine_labelIds.png (+ *_instanceIds.png), leftImg8bit/<split>/<city>/*.png.

    35 label ids and no don't-care class; pairs match on their first three name parts
    (city_sequence_frame), as the official code checks.
    """

    label_nc: ClassVar[int] = 35
    contain_dontcare_label: ClassVar[bool] = False

    @classmethod
    def default_preprocess(cls, train: bool = True) -> Preprocess:
        return Preprocess("fixed", 512, 512, aspect_ratio=2.0, train=train)

    def __init__(
        self, root, split: str = "train", *, instance: bool = True, preprocess: Preprocess | None = None, seed: int = 0
    ):
        split = _split(split, {"train": "train", "val": "val"}, "Cityscapes")
        labels = list_images(Path(root, "gtFine", split), ("_labelIds.png", "_instanceIds.png"))
        super().__init__(
            [p for p in labels if p.endswith("_labelIds.png")],
            list_images(Path(root, "leftImg8bit", split), ("_leftImg8bit.png",)),
            [p for p in labels if p.endswith("_instanceIds.png")] if instance else None,
            label_nc=self.label_nc,
            contain_dontcare_label=self.contain_dontcare_label,
            preprocess=preprocess or self.default_preprocess(split == "train"),
            seed=seed,
        )

    def pair_key(self, path: str) -> str:
        return "_".join(os.path.basename(path).split("_")[:3])


class ADE20KDataset(PairedDataset):
    """ADEChallengeData2016: images/{training,validation}/*.jpg and annotations/{...}/*.png.

    Raw ids are 0 ("other objects") and 1..150; as the official postprocess intends, class k
    becomes id k - 1 and 0 becomes the don't-care id 150. The released SPADE code computes that
    shift but never stores it, so its training saw the raw ids; shift_labels=False reproduces that.
    """

    label_nc: ClassVar[int] = 150
    contain_dontcare_label: ClassVar[bool] = True

    @classmethod
    def default_preprocess(cls, train: bool = True) -> Preprocess:
        return Preprocess("resize_and_crop", 286 if train else 256, 256, train=train)

    def __init__(
        self,
        root,
        split: str = "train",
        *,
        shift_labels: bool = True,
        preprocess: Preprocess | None = None,
        seed: int = 0,
    ):
        folder = _split(split, {"train": "training", "val": "validation"}, "ADE20K")
        self.shift_labels = shift_labels
        super().__init__(
            list_images(Path(root, "annotations", folder), (".png",)),
            list_images(Path(root, "images", folder), (".jpg",)),
            label_nc=self.label_nc,
            contain_dontcare_label=self.contain_dontcare_label,
            preprocess=preprocess or self.default_preprocess(split == "train"),
            seed=seed,
        )

    def map_ids(self, raw: np.ndarray) -> np.ndarray:
        if not self.shift_labels:
            return super().map_ids(raw)
        ids = raw.astype(np.int64) - 1
        ids[raw == 0] = self.label_nc
        ids[raw > self.label_nc] = -1  # 151.. would otherwise land on valid ids
        return ids


class COCOStuffDataset(PairedDataset):
    """SPADE's COCO-Stuff layout: {split}_label/*.png, {split}_img/*.jpg, {split}_inst/*.png.

    182 classes, 255 is the don't-care id 182. For training, {split}_*_portrait directories are
    added when present, as the official code does unless --coco_no_portraits.
    """

    label_nc: ClassVar[int] = 182
    contain_dontcare_label: ClassVar[bool] = True

    @classmethod
    def default_preprocess(cls, train: bool = True) -> Preprocess:
        return Preprocess("resize_and_crop", 286 if train else 256, 256, train=train)

    def __init__(
        self,
        root,
        split: str = "train",
        *,
        instance: bool = True,
        portraits: bool = True,
        preprocess: Preprocess | None = None,
        seed: int = 0,
    ):
        split = _split(split, {"train": "train", "val": "val"}, "COCO-Stuff")
        kinds = ("label", "img", "inst") if instance else ("label", "img")
        found = {kind: [] for kind in kinds}
        for kind in kinds:
            found[kind] += list_images(Path(root, f"{split}_{kind}"))
            portrait = Path(root, f"{split}_{kind}_portrait")
            if portraits and split == "train" and portrait.is_dir():
                found[kind] += list_images(portrait)
        found = {kind: sorted(paths, key=_natural_key) for kind, paths in found.items()}
        super().__init__(
            found["label"],
            found["img"],
            found.get("inst"),
            label_nc=self.label_nc,
            contain_dontcare_label=self.contain_dontcare_label,
            preprocess=preprocess or self.default_preprocess(split == "train"),
            seed=seed,
        )


def _folder(
    root,
    split: str = "train",
    *,
    label_dir=FOLDER_LABELS,
    image_dir=FOLDER_IMAGES,
    instance_dir=None,
    preprocess=None,
    **kwargs,
):
    """The custom layout under `root` (by default labels/ and images/, as rtgan.data.landscapes
    writes); `split` only picks the default (train or eval) preprocessing."""
    return FolderDataset(
        Path(root, label_dir),
        Path(root, image_dir),
        None if instance_dir is None else Path(root, instance_dir),
        preprocess=preprocess or FolderDataset.default_preprocess(split == "train"),
        **kwargs,
    )


DATASETS: dict[str, Callable[..., PairedDataset]] = {
    "folder": _folder,
    "cityscapes": CityscapesDataset,
    "ade20k": ADE20KDataset,
    "coco": COCOStuffDataset,
}


def make_dataset(name: str, root: str | os.PathLike, split: str = "train", **kwargs) -> PairedDataset:
    """Build a dataset by layout name, e.g. make_dataset("cityscapes", "datasets/cityscapes", "val")."""
    build = lookup(name, DATASETS, "dataset")
    if not (name == "folder" and {"label_dir", "image_dir"} & set(kwargs)):  # folders named: they say where
        check_root(name, root, split)
    return build(root, split, **kwargs)
