"""The paint canvas (GauGAN-style): a label map drawn with class brushes, fill, undo, load and save;
and, for a generator with a local-noise input (OASIS's `noise_regions`), a noise brush: each stroke
paints a new region id (1..M-1, cycling; 0 is the image-wide z) with a freshly drawn z of its own.

Pure state plus OpenCV drawing calls, no window: the view forwards mouse events here, tests call
the same methods directly.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..utils.atomic import atomic_write_bytes
from .controls import stroke_z
from .imaging import cv2, palette_lut
from .segment import fit_labels, labels_from_png

LEGEND_SCALES = (1.0, 0.9, 0.8, 0.7)  # largest first; below 0.7 the plain font stops being readable
LEGEND_ROW, LEGEND_PAD = 18, 2  # pixels: a row's height, the text's margin inside its swatch


class Canvas:
    def __init__(
        self, height: int, width: int, classes: dict[int, str], palette: dict | None, start=None, seed: int = 0
    ):
        self.height, self.width = height, width
        self.classes = dict(classes)  # id -> name, in brush order
        self.ids = list(self.classes)
        self.palette = palette
        self.brush = 0  # index into self.ids
        self.size = max(2, height // 24)
        self.fill_mode = False
        self.version = 0
        self._lock = threading.Lock()  # the capture thread snapshots while the UI thread draws
        self._undo: deque[tuple] = deque(maxlen=50)  # ("labels", map) or ("noise", (map, z's, region))
        # the noise brush (off until a model with a regions input configures it: `set_noise`)
        self.seed = seed
        self.noise_mode = False
        self.noise_classes, self.noise_dim = 0, 0  # M (region ids 0..M-1), the z size
        self.noise = np.zeros((height, width), np.int32)
        self.noise_z = np.zeros((0, 0), np.float32)  # (M - 1, z_dim): region k's z is row k - 1
        self.region = 0  # the id the last stroke painted
        self.strokes = 0  # noise strokes so far: stroke s draws stroke_z(seed, s, z_dim)
        self.noise_version = 0
        dtype = np.uint8 if max(self.ids) < 256 else np.int32
        self.labels = np.full((height, width), self.ids[0], dtype)
        if start is not None:
            self.labels[:] = self._fit(start)
        self._last: tuple[int, int] | None = None
        self._legend_key, self._legend = None, None

    @property
    def brush_id(self) -> int:
        return self.ids[self.brush]

    def _fit(self, labels: np.ndarray) -> np.ndarray:
        labels = fit_labels(np.asarray(labels), self.height, self.width)
        bad = np.setdiff1d(np.unique(labels), self.ids)
        if bad.size:
            raise InputError(f"label id {bad[0]} is not a class of this model ({sorted(self.ids)})")
        return labels

    def _changed(self) -> None:
        self.version += 1

    def snapshot(self) -> np.ndarray:
        with self._lock:
            return self.labels.copy()

    def select(self, index: int) -> None:
        self.brush = int(index) % len(self.ids)

    # --- the noise brush ---
    def set_noise(self, classes: int, z_dim: int) -> None:
        """Take noise strokes for a model with `classes` region ids and z's of `z_dim`; the map and its
        z's are kept when they fit (switching models back and forth), else cleared."""
        with self._lock:
            if (classes, z_dim) != (self.noise_classes, self.noise_dim):
                self.noise_classes, self.noise_dim = int(classes), int(z_dim)
                self.noise[:] = 0
                self.noise_z = np.zeros((max(0, classes - 1), z_dim), np.float32)
                self.region = 0
                self.noise_version += 1

    @property
    def takes_noise(self) -> bool:
        return self.noise_classes > 1

    def toggle_noise(self) -> bool:
        """Switch the brush between classes and noise; False (and class mode) when no model takes noise."""
        self.noise_mode = not self.noise_mode and self.takes_noise
        return self.noise_mode

    def noise_snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """(region map (H, W) int32, z's (M - 1, z_dim) float32), copies."""
        with self._lock:
            return self.noise.copy(), self.noise_z.copy()

    def clear_noise(self) -> None:
        with self._lock:
            self._undo.append(("noise", (self.noise.copy(), self.noise_z.copy(), self.region)))
            self.noise[:] = 0
            self.noise_version += 1

    def _noise_press(self, x: int, y: int) -> None:
        self._undo.append(("noise", (self.noise.copy(), self.noise_z.copy(), self.region)))
        self.region = self.region % (self.noise_classes - 1) + 1  # after M-1 strokes the oldest id is reused
        self.strokes += 1
        self.noise_z[self.region - 1] = stroke_z(self.seed, self.strokes, self.noise_dim)
        cv2().circle(self.noise, (int(x), int(y)), self.size // 2, self.region, -1)
        self._last = (int(x), int(y))
        self.noise_version += 1

    def press(self, x: int, y: int) -> None:
        """Mouse button down: fill the region under (x, y), or start a stroke there."""
        with self._lock:
            if self.noise_mode and self.takes_noise:
                self._noise_press(x, y)
                return
            self._undo.append(("labels", self.labels.copy()))
            if self.fill_mode:
                mask = np.zeros((self.height + 2, self.width + 2), np.uint8)
                if self.labels.dtype == np.uint8:
                    cv2().floodFill(self.labels, mask, (int(x), int(y)), int(self.brush_id))
                else:  # floodFill takes 8-bit or float images; fill a region mask instead
                    region = (self.labels == self.labels[int(y), int(x)]).astype(np.uint8)
                    cv2().floodFill(region, mask, (int(x), int(y)), 2)
                    self.labels[region == 2] = self.brush_id
                self._last = None
            else:
                cv2().circle(self.labels, (int(x), int(y)), self.size // 2, int(self.brush_id), -1)
                self._last = (int(x), int(y))
            self._changed()

    def drag(self, x: int, y: int) -> None:
        """Mouse moved with the button down: a stroke segment from the last point."""
        if self._last is None:
            return
        with self._lock:
            if self.noise_mode and self.takes_noise:
                cv2().line(self.noise, self._last, (int(x), int(y)), self.region, self.size)
                self.noise_version += 1
            else:
                cv2().line(self.labels, self._last, (int(x), int(y)), int(self.brush_id), self.size)
                self._changed()
            self._last = (int(x), int(y))

    def release(self) -> None:
        self._last = None

    def pick(self, x: int, y: int) -> None:
        """Eyedropper: the brush takes the class under (x, y)."""
        self.brush = self.ids.index(int(self.labels[int(y), int(x)]))

    def undo(self) -> bool:
        with self._lock:
            if not self._undo:
                return False
            kind, state = self._undo.pop()
            if kind == "noise":
                if state[0].shape == self.noise.shape and state[1].shape == self.noise_z.shape:
                    self.noise, self.noise_z, self.region = state
                    self.noise_version += 1
            else:
                self.labels = state
                self._changed()
            return True

    def clear(self) -> None:
        with self._lock:
            self._undo.append(("labels", self.labels.copy()))
            self.labels[:] = self.brush_id
            self._changed()

    def load(self, path: str | Path) -> None:
        image = cv2().imread(str(path), cv2().IMREAD_UNCHANGED)
        if image is None:
            raise InputError(f"{path}: not a readable label-map image")
        try:
            labels = labels_from_png(image if image.ndim == 2 else image[..., 2::-1], self.palette, self.classes)
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        self.set_labels(labels)

    def set_labels(self, labels: np.ndarray) -> None:
        """Replace the whole map (undoable), fitted to the canvas and checked against its classes."""
        labels = self._fit(labels)
        with self._lock:
            self._undo.append(("labels", self.labels.copy()))
            self.labels = labels.astype(self.labels.dtype)
            self._changed()

    def save(self, path: str | Path) -> Path:
        """Write the label ids as a single-channel PNG (the format every rtgan tool reads)."""
        path = Path(path)
        ok, data = cv2().imencode(".png", self.snapshot().astype(np.uint8 if max(self.ids) < 256 else np.uint16))
        if not ok:
            raise OSError(f"{path}: PNG encoding failed")
        atomic_write_bytes(path, data.tobytes())
        return path

    def legend(self, width: int) -> np.ndarray:
        """A strip of class swatches (uint8 RGB), the selected one outlined; `class_at` inverts it."""
        key = (width, self.brush)
        if self._legend_key != key:  # drawn once per brush change, not per frame
            self._legend_key, self._legend = key, self._draw_legend(width)
        return self._legend

    def legend_layout(self, width: int) -> tuple[int, int, float]:
        """(rows, cells per row, font scale): the fewest rows whose cells hold every class name whole,
        in the largest font that fits; a cut-off name ("moun") is worse than a taller legend."""
        names = list(self.classes.values())
        n = len(names)
        for rows in range(1, n + 1):
            per_row = -(-n // rows)
            cell = width // per_row
            for scale in LEGEND_SCALES:
                if max(_text_width(name, scale) for name in names) + 2 * LEGEND_PAD <= cell:
                    return rows, per_row, scale
        return n, 1, LEGEND_SCALES[-1]  # narrower than the longest name: one class per row

    def legend_cells(self, width: int) -> list[tuple[int, int, int, int]]:
        """(x0, y0, x1, y1) of each class's swatch, in brush order (x1, y1 exclusive)."""
        rows, per_row, _ = self.legend_layout(width)
        cells = []
        for i in range(len(self.ids)):
            r, c = divmod(i, per_row)
            cells.append((c * width // per_row, r * LEGEND_ROW, (c + 1) * width // per_row, (r + 1) * LEGEND_ROW))
        return cells

    def _draw_legend(self, width: int) -> np.ndarray:
        cv = cv2()
        lut = palette_lut(self.palette, max(256, max(self.ids) + 1))
        rows, _, scale = self.legend_layout(width)
        strip = np.zeros((rows * LEGEND_ROW, width, 3), np.uint8)
        for i, (k, (x0, y0, x1, y1)) in enumerate(zip(self.ids, self.legend_cells(width))):
            strip[y0:y1, x0:x1] = lut[k]
            dark = int(lut[k].astype(int) @ [299, 587, 114]) < 128_000
            colour = (255, 255, 255) if dark else (0, 0, 0)
            at = (x0 + LEGEND_PAD, y1 - 5)
            cv.putText(strip, self.classes[k], at, cv.FONT_HERSHEY_PLAIN, scale, colour, 1, cv.LINE_AA)
            if i == self.brush:
                # inside the cell (a 2-pixel line centred on its edge would spill into the neighbours)
                cv.rectangle(strip, (x0 + 1, y0 + 1), (x1 - 2, y1 - 2), (255, 255, 255), 2)
                cv.rectangle(strip, (x0 + 2, y0 + 2), (x1 - 3, y1 - 3), (0, 0, 0), 1)
        return strip

    def class_at(self, x: int, y: int, width: int) -> int | None:
        """The brush index of the legend cell at (x, y) of a `width`-wide legend; None outside any cell."""
        for i, (x0, y0, x1, y1) in enumerate(self.legend_cells(width)):
            if x0 <= x < x1 and y0 <= y < y1:
                return i
        return None


def _text_width(text: str, scale: float) -> int:
    return cv2().getTextSize(text, cv2().FONT_HERSHEY_PLAIN, scale, 1)[0][0]
