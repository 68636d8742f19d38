"""Where each dataset layout keeps its files, checked before anything loads.

NumPy- and torch-free: `python -m rtgan.train --data folder --root /nope` must name the folder and
the layout it expected before PyTorch is imported, not trace back from inside a DataLoader.
`rtgan.data.folders` reads these layouts; the names here are its DATASETS.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..utils.names import lookup

SPLITS = ("train", "val")
# the custom layout's folders when none are named: what `python -m rtgan.data.landscapes` writes
FOLDER_LABELS, FOLDER_IMAGES = "labels", "images"


def _folder(split: str) -> list[tuple[str, str]]:
    return [
        (FOLDER_LABELS, "label maps, single-channel PNGs of ids"),
        (FOLDER_IMAGES, "photos, named as their label maps"),
    ]


def _cityscapes(split: str) -> list[tuple[str, str]]:
    return [
        (f"gtFine/{split}", "CITY/*_gtFine_labelIds.png and *_instanceIds.png"),
        (f"leftImg8bit/{split}", "CITY/*_leftImg8bit.png"),
    ]


def _ade20k(split: str) -> list[tuple[str, str]]:
    folder = {"train": "training", "val": "validation"}[split]
    return [(f"annotations/{folder}", "*.png label maps"), (f"images/{folder}", "*.jpg photos")]


def _coco(split: str) -> list[tuple[str, str]]:
    return [(f"{split}_label", "*.png label maps"), (f"{split}_img", "*.jpg photos"), (f"{split}_inst", "*.png")]


# layout name -> the folders under its root (relative path, what goes there) for a split
LAYOUTS = {"folder": _folder, "cityscapes": _cityscapes, "ade20k": _ade20k, "coco": _coco}


def check_root(name: str, root: str | os.PathLike | None, split: str = "train") -> Path:
    """`root` as a Path once it holds `name`'s folders for `split`; else a ConfigError naming the
    folder and the layout expected there."""
    layout = lookup(name, LAYOUTS, "dataset layout")
    lookup(split, dict.fromkeys(SPLITS), "split")
    expected = ", ".join(f"ROOT/{d}/ ({what})" for d, what in layout(split))
    if root is None:
        raise ConfigError(f"dataset {name!r} needs its root folder (--root): {expected}")
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"dataset folder {root} does not exist; the {name} layout is {expected}")
    missing = [d for d, _ in layout(split) if not (root / d).is_dir()]
    if missing:
        raise ConfigError(
            f"dataset folder {root} has no {', '.join(f'{d}/' for d in missing)}: the {name} layout is {expected}"
            + (" (as `python -m rtgan.data.landscapes --out ROOT` writes)" if name == "folder" else "")
        )
    return root
