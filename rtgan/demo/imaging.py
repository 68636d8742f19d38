"""Small image helpers the demo shares: OpenCV on demand, cover-resizing, label colours."""

from __future__ import annotations

import functools

import numpy as np

from ..errors import ConfigError


@functools.cache
def cv2():
    try:
        import cv2 as cv
    except ImportError as e:
        raise ConfigError("the demo needs OpenCV: pip install 'rtgan[demo]'") from e
    return cv


def cover_crop(h: int, w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(y0, x0, crop height, crop width): the centred crop of an h x w image with the aspect of height x width."""
    scale = max(height / h, width / w)
    ch, cw = min(h, round(height / scale)), min(w, round(width / scale))
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def resize_cover(image: np.ndarray, height: int, width: int, nearest: bool = False) -> np.ndarray:
    """Centre-crop `image` to the aspect ratio of height x width, then resize to it."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    y0, x0, ch, cw = cover_crop(h, w, height, width)
    scale = max(height / h, width / w)
    crop = np.ascontiguousarray(image[y0 : y0 + ch, x0 : x0 + cw])
    cv = cv2()
    if nearest:
        return cv.resize(crop, (width, height), interpolation=cv.INTER_NEAREST)
    return cv.resize(crop, (width, height), interpolation=cv.INTER_AREA if scale < 1 else cv.INTER_LINEAR)


def palette_lut(palette: dict[int, tuple[int, int, int]] | None, size: int = 256) -> np.ndarray:
    """(size, 3) uint8: class colours where known, fixed pseudo-random colours elsewhere."""
    lut = np.random.default_rng(12345).integers(0, 256, (size, 3), dtype=np.uint8)
    for i, rgb in (palette or {}).items():
        if i < size:
            lut[i] = rgb
    return lut
