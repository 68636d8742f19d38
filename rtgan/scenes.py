"""Built-in label maps to run a model with no input at hand, and colours to show label maps.

NumPy only: the runtime and demo use these without PyTorch.
"""

from __future__ import annotations

import numpy as np

# Cityscapes label ids (the `labelIds` images SPADE, ASAPNet and pix2pixHD take) and their colours.
CITYSCAPES = {
    "road": (7, (128, 64, 128)),
    "sidewalk": (8, (244, 35, 232)),
    "building": (11, (70, 70, 70)),
    "fence": (13, (190, 153, 153)),
    "pole": (17, (153, 153, 153)),
    "traffic sign": (20, (220, 220, 0)),
    "vegetation": (21, (107, 142, 35)),
    "terrain": (22, (152, 251, 152)),
    "sky": (23, (70, 130, 180)),
    "person": (24, (220, 20, 60)),
    "car": (26, (0, 0, 142)),
}


def street_scene(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A Cityscapes-id street (sky, buildings, trees, road, sidewalk, cars, people) and its instance ids."""
    ids = {k: v[0] for k, v in CITYSCAPES.items()}
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width]).reshape(2, 1, 1)
    labels = np.full((height, width), ids["sky"], np.uint8)
    skyline = 0.45 - 0.15 * (np.floor(x * 9) % 3 == 1) - 0.08 * (np.floor(x * 7) % 2)
    labels[y > skyline] = ids["building"]
    trees = (np.abs(np.sin(x * 23)) * 0.12 + 0.45 > y) & (y > 0.3) & (np.abs(x - 0.5) > 0.3)
    labels[trees] = ids["vegetation"]
    labels[y > 0.62] = ids["sidewalk"]
    labels[(y > 0.68) & (np.abs(x - 0.5) < 0.35 + (y - 0.68) * 1.5)] = ids["road"]
    instance = labels.astype(np.int32) * 1000
    for i, (cx, w) in enumerate([(0.3, 0.14), (0.62, 0.18)]):  # two cars: one instance each
        car = (np.abs(x - cx) < w / 2) & (y > 0.66) & (y < 0.8)
        labels[car], instance[car] = ids["car"], ids["car"] * 1000 + i
    for i, cx in enumerate([0.12, 0.85]):
        person = (np.abs(x - cx) < 0.015) & (y > 0.5) & (y < 0.68)
        labels[person], instance[person] = ids["person"], ids["person"] * 1000 + i
    pole = (np.abs(x - 0.78) < 0.004) & (y > 0.35) & (y < 0.66)
    labels[pole] = instance[pole] = ids["pole"]
    return labels, instance


def blob_scene(height: int, width: int, num_classes: int, seed: int = 0) -> np.ndarray:
    """Smooth random regions of `num_classes` ids, for label sets with no built-in scene."""
    rng = np.random.default_rng(seed)
    n = min(num_classes, 8)
    classes = rng.choice(num_classes, n, replace=False)
    centres = rng.random((n, 2)) * [height, width]
    yy, xx = np.mgrid[0:height, 0:width]
    d = (yy[None] - centres[:, 0, None, None]) ** 2 + (xx[None] - centres[:, 1, None, None]) ** 2
    return classes[d.argmin(0)].astype(np.uint8 if num_classes <= 256 else np.int32)


def colorize(labels: np.ndarray, palette: dict[int, tuple[int, int, int]] | None = None) -> np.ndarray:
    """(H, W) ids -> (H, W, 3) uint8 RGB; ids missing from `palette` get fixed pseudo-random colours."""
    lut = np.random.default_rng(12345).integers(0, 256, (max(int(labels.max()) + 1, 256), 3), dtype=np.uint8)
    for i, rgb in (palette or {}).items():
        lut[i] = rgb
    return lut[labels]


CITYSCAPES_PALETTE = {i: rgb for i, rgb in CITYSCAPES.values()}
