"""The built-in animated scene: a landscape label map whose clouds drift and whose waves wash the shore.

Used when there is no camera, so the demo always has something alive to paint. NumPy only.
"""

from __future__ import annotations

import numpy as np

from ..data import landscapes as L

_SEA = [L.ID["sea"], L.ID["water"], L.ID["river"]]
_SHORE = [L.ID["sand"], L.ID["grass"], L.ID["rock"], L.ID["dirt"]]
DEFAULT_SEED = 14  # at 256x256: a coast under snowy mountains with clouds, flowers, rocks and trees
_WANTED = [L.ID["sea"], L.ID["clouds"], L.ID["mountain"], L.ID["tree"]]


def _lively(seed: int, height: int, width: int) -> tuple[np.ndarray, dict]:
    """The first layout from `seed` on that has sea, clouds, mountains and trees (layouts vary with size)."""
    for s in range(seed, seed + 200):
        labels, geo = L.layout_geometry(s, height, width)
        if np.isin(_WANTED, labels).all():
            return labels, geo
    return L.layout_geometry(seed, height, width)


class AnimatedScene:
    """`frame(t)` -> uint8 (H, W) COCO-Stuff ids of the landscape at time t seconds."""

    def __init__(self, height: int, width: int, seed: int = DEFAULT_SEED, cloud_speed: float = 0.02):
        self.height, self.width = height, width
        self.base, geo = _lively(seed, height, width)
        self.sky = np.isin(self.base, [L.ID["sky"], L.ID["clouds"]])
        # mirrored copy: the drifting field wraps around with no seam
        field = geo["clouds"]
        self.field = np.concatenate([field, field[:, ::-1]], axis=1)
        self.cover = geo["cloud_cover"]
        self.cloud_speed = cloud_speed  # image widths per second
        self.sea = np.isin(self.base, _SEA)
        self.waterline = self.sea | np.isin(self.base, _SHORE)
        self._rows = np.arange(height)[:, None]
        self._cols = np.arange(width)[None, :]

    def frame(self, t: float) -> np.ndarray:
        out = self.base.copy()
        shift = int(t * self.cloud_speed * self.width) % (2 * self.width)
        clouds = np.roll(self.field, -shift, axis=1)[:, : self.width] > self.cover
        out[self.sky] = np.where(clouds[self.sky], L.ID["clouds"], L.ID["sky"])
        # waves: the sea/shore boundary moves up and down along a travelling sine
        amp = max(1.0, self.height / 100)
        dy = np.round(amp * np.sin(2 * np.pi * (0.4 * t + 1.5 * self._cols / self.width))).astype(int)
        src = np.clip(self._rows - dy, 0, self.height - 1)
        moved_sea, moved_line = self.sea[src, self._cols], self.waterline[src, self._cols]
        swap = self.waterline & moved_line & (moved_sea != self.sea)
        out[swap] = self.base[src, self._cols][swap]
        return out
