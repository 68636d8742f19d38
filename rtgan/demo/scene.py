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
    """`frame(t)` -> uint8 (H, W) COCO-Stuff ids of the landscape at time t seconds.

    What does not move is worked out once, here: the clouds are a fixed threshold of a field that
    only slides, and a wave only re-labels the few pixels within its amplitude of the sea's edge, each
    by its column's offset. A frame is then a copy, a masked fill of the sky's rows and a gather over
    those pixels (~0.3 ms at 512x512, against 5-10 ms for the same masks built per frame).
    """

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
        self._cols = np.arange(width)[None, :]
        self._amp = max(1.0, height / 100)  # wave height in rows
        self._clouds_setup()
        self._waves_setup()

    def _clouds_setup(self) -> None:
        """The sky's rows, its pixels there, and the cloud mask of the field with its first half
        appended, so that the window at any shift (0 <= shift < 2W) is a slice: roll without a copy."""
        rows = np.flatnonzero(self.sky.any(axis=1))
        top, bottom = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        self._sky_band = slice(top, bottom)
        self._sky_in_band = self.sky[top:bottom]
        cloudy = self.field[top:bottom] > self.cover
        self._cloudy = np.concatenate([cloudy, cloudy[:, : self.width]], axis=1)
        self._still = np.where(self.sky, L.ID["sky"], self.base).astype(self.base.dtype)  # a cloudless sky

    def _waves_setup(self) -> None:
        """For every pixel that some wave offset re-labels, its id under each offset dy in
        [-reach, reach]: row dy + reach of `_wave_ids`. Same rule as a per-frame gather: a waterline pixel
        takes the id from dy rows above (clipped to the image) when that one is waterline too and
        differs in being sea."""
        h = self.height
        self._reach = int(np.ceil(self._amp))  # |round(amp * sin)| <= ceil(amp)
        rows = np.arange(h)
        ids, moves = [], np.zeros(self.base.shape, bool)
        for dy in range(-self._reach, self._reach + 1):
            src = np.clip(rows - dy, 0, h - 1)
            swap = self.waterline & self.waterline[src] & (self.sea[src] != self.sea)
            ids.append(np.where(swap, self.base[src], self.base))
            moves |= swap
        self._wave_at = np.flatnonzero(moves)
        self._wave_col = self._wave_at % self.width
        self._wave_ids = np.stack([i.reshape(-1)[self._wave_at] for i in ids])
        self._wave_n = np.arange(len(self._wave_at))

    def frame(self, t: float) -> np.ndarray:
        out = self._still.copy()
        shift = int(t * self.cloud_speed * self.width) % (2 * self.width)
        clouds = self._cloudy[:, shift : shift + self.width]
        np.copyto(out[self._sky_band], L.ID["clouds"], where=self._sky_in_band & clouds)
        # waves: the sea/shore boundary moves up and down along a travelling sine
        dy = np.round(self._amp * np.sin(2 * np.pi * (0.4 * t + 1.5 * self._cols / self.width))).astype(int)[0]
        out.reshape(-1)[self._wave_at] = self._wave_ids[dy[self._wave_col] + self._reach, self._wave_n]
        return out
