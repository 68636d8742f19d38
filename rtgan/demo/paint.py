"""The paint canvas (GauGAN-style): a label map drawn with class brushes, fill, undo, load and save.

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
from .imaging import cv2, palette_lut
from .segment import fit_labels, labels_from_png


class Canvas:
    def __init__(self, height: int, width: int, classes: dict[int, str], palette: dict | None, start=None):
        self.height, self.width = height, width
        self.classes = dict(classes)  # id -> name, in brush order
        self.ids = list(self.classes)
        self.palette = palette
        self.brush = 0  # index into self.ids
        self.size = max(2, height // 24)
        self.fill_mode = False
        self.version = 0
        self._lock = threading.Lock()  # the capture thread snapshots while the UI thread draws
        self._undo: deque[np.ndarray] = deque(maxlen=50)
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

    def press(self, x: int, y: int) -> None:
        """Mouse button down: fill the region under (x, y), or start a stroke there."""
        with self._lock:
            self._undo.append(self.labels.copy())
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
            cv2().line(self.labels, self._last, (int(x), int(y)), int(self.brush_id), self.size)
            self._last = (int(x), int(y))
            self._changed()

    def release(self) -> None:
        self._last = None

    def pick(self, x: int, y: int) -> None:
        """Eyedropper: the brush takes the class under (x, y)."""
        self.brush = self.ids.index(int(self.labels[int(y), int(x)]))

    def undo(self) -> bool:
        with self._lock:
            if not self._undo:
                return False
            self.labels = self._undo.pop()
            self._changed()
            return True

    def clear(self) -> None:
        with self._lock:
            self._undo.append(self.labels.copy())
            self.labels[:] = self.brush_id
            self._changed()

    def load(self, path: str | Path) -> None:
        image = cv2().imread(str(path), cv2().IMREAD_UNCHANGED)
        if image is None:
            raise InputError(f"{path}: not a readable label-map image")
        self.set_labels(labels_from_png(image if image.ndim == 2 else image[..., 2::-1], self.palette))

    def set_labels(self, labels: np.ndarray) -> None:
        """Replace the whole map (undoable), fitted to the canvas and checked against its classes."""
        labels = self._fit(labels)
        with self._lock:
            self._undo.append(self.labels.copy())
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

    def legend(self, width: int, height: int = 20) -> np.ndarray:
        """A strip of class swatches (uint8 RGB), the selected one outlined; `class_at` inverts it."""
        key = (width, height, self.brush)
        if self._legend_key != key:  # drawn once per brush change, not per frame
            self._legend_key, self._legend = key, self._draw_legend(width, height)
        return self._legend

    def _draw_legend(self, width: int, height: int) -> np.ndarray:
        lut = palette_lut(self.palette, max(256, max(self.ids) + 1))
        strip = np.zeros((height, width, 3), np.uint8)
        n = len(self.ids)
        for i, k in enumerate(self.ids):
            x0, x1 = i * width // n, (i + 1) * width // n
            strip[:, x0:x1] = lut[k]
            name = self.classes[k][: max(1, (x1 - x0) // 7)]
            dark = int(lut[k].astype(int) @ [299, 587, 114]) < 128_000
            cv2().putText(
                strip,
                name,
                (x0 + 2, height - 6),
                cv2().FONT_HERSHEY_PLAIN,
                0.8,
                (255, 255, 255) if dark else (0, 0, 0),
                1,
                cv2().LINE_AA,
            )
            if i == self.brush:
                cv2().rectangle(strip, (x0, 0), (x1 - 1, height - 1), (255, 255, 255), 2)
                cv2().rectangle(strip, (x0 + 2, 2), (x1 - 3, height - 3), (0, 0, 0), 1)
        return strip

    def class_at(self, x: int, width: int) -> int:
        return min(len(self.ids) - 1, max(0, int(x) * len(self.ids) // width))
