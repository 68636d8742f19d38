"""Seeded value noise and fractal sums of it, the texture source of the procedural landscapes.

NumPy only and vectorised: a 256x256 fractal of 6 octaves takes a few milliseconds, so scenes can
be rendered while training streams them.
"""

from __future__ import annotations

import numpy as np


def _smooth(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def value_noise(rng: np.random.Generator, h: int, w: int, cells_y: float, cells_x: float) -> np.ndarray:
    """(h, w) noise in [0, 1]: a random lattice of about cells_y x cells_x cells, smoothly interpolated."""
    gy, gx = int(np.ceil(cells_y)) + 2, int(np.ceil(cells_x)) + 2
    grid = rng.random((gy, gx), np.float32)
    oy, ox = rng.random(2)  # random phase, so octaves do not share lattice lines
    y = np.arange(h) * (cells_y / h) + oy
    x = np.arange(w) * (cells_x / w) + ox
    iy, ix = y.astype(int), x.astype(int)
    fy, fx = _smooth(y - iy)[:, None], _smooth(x - ix)[None, :]
    top = grid[iy][:, ix] * (1 - fx) + grid[iy][:, ix + 1] * fx
    bottom = grid[iy + 1][:, ix] * (1 - fx) + grid[iy + 1][:, ix + 1] * fx
    return top * (1 - fy) + bottom * fy


def fbm(
    rng: np.random.Generator,
    h: int,
    w: int,
    cells: float = 4,
    octaves: int = 5,
    gain: float = 0.5,
    aspect: float = 1.0,
) -> np.ndarray:
    """Fractal Brownian motion in [0, 1]. `aspect` > 1 stretches features horizontally (waves, strata)."""
    total, amp, norm = np.zeros((h, w), np.float32), 1.0, 0.0
    for o in range(octaves):
        c = cells * 2**o
        total += amp * value_noise(rng, h, w, c * h / max(h, w), c * w / max(h, w) / aspect)
        norm += amp
        amp *= gain
    return total / norm


def ridged(rng: np.random.Generator, h: int, w: int, cells: float = 3, octaves: int = 5) -> np.ndarray:
    """Ridged multifractal in [0, 1]: sharp crests, the relief of eroded mountains."""
    total, amp, norm = np.zeros((h, w), np.float32), 1.0, 0.0
    for o in range(octaves):
        c = cells * 2**o
        n = 1 - np.abs(2 * value_noise(rng, h, w, c * h / max(h, w), c * w / max(h, w)) - 1)
        total += amp * n * n
        norm += amp
        amp *= 0.5
    return total / norm


def profile(rng: np.random.Generator, w: int, cells: float = 4, octaves: int = 5, ridge: bool = False) -> np.ndarray:
    """A 1-D fractal line of length w stretched to [0, 1]: skylines, shorelines, tree lines."""
    line = (ridged if ridge else fbm)(rng, 1, w, cells, octaves)[0]
    return (line - line.min()) / max(float(np.ptp(line)), 1e-6)


def stretch(field: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1], so thresholds mean the same fraction of area on every seed."""
    return (field - field.min()) / max(float(np.ptp(field)), 1e-6)


def shade(height: np.ndarray, sun_x: float, strength: float = 6.0) -> np.ndarray:
    """Lambert-like shading of a height field lit from the upper left (sun_x < 0) or right."""
    gy, gx = np.gradient(height)
    n = -(gx * sun_x + gy * 0.6) * strength * max(height.shape)
    return np.clip(0.75 + n, 0.2, 1.4)
