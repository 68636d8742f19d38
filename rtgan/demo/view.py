"""What is shown: input | labels | painting side by side with an fps / latency overlay; the OpenCV
window with its keys, mouse and trackbars; and the MP4 recorder. Frames here are BGR (OpenCV's order).
"""

from __future__ import annotations

import os
import queue
import re
import threading
from pathlib import Path

import numpy as np

from .imaging import cv2

LINE = 14  # text line height in panel pixels
HELP = [
    "q/Esc quit   space pause   s snapshot   r record MP4",
    "m next model   n new style / z   p paint mode   h help",
    "t next style image   [ ] truncation",
    "paint: drag draw  right-click pick  f fill  u undo  c clear",
    "       [ ] brush size  1-9,0 / -,= class  w save  o load",
    "       b noise brush  x clear noise",
]


def _help_groups() -> list[list[str]]:
    """HELP as key items ("s snapshot"), the general keys and the paint keys in separate groups."""
    groups: list[list[str]] = []
    for line in HELP:
        items = re.split(r"\s{2,}", line.strip())
        if not groups or line.startswith("paint:"):
            groups.append(items)
        else:
            groups[-1] += items
    return groups


def _text(img: np.ndarray, lines: list[str], x: int, y: int, scale: float) -> None:
    """White text on a darkened box: readable over any painting."""
    cv = cv2()
    font, size, line = cv.FONT_HERSHEY_SIMPLEX, 0.4 * scale, int(LINE * scale)
    width = max(cv.getTextSize(t, font, size, 1)[0][0] for t in lines)
    top = max(0, y - line + 4)
    box = img[top : y + line * (len(lines) - 1) + 6, max(0, x - 3) : x + width + 3]
    box //= 3
    for i, text in enumerate(lines):
        cv.putText(img, text, (x, y + i * line), font, size, (255, 255, 255), 1, cv.LINE_AA)


def compose(
    input_rgb: np.ndarray | None,
    labels_rgb: np.ndarray | None,
    painting: np.ndarray,
    overlay: list[str] = (),
    legend: np.ndarray | None = None,
    help: bool = False,
    scale: int = 1,
) -> np.ndarray:
    """uint8 RGB panels of one size -> one BGR frame: [input |] [labels |] painting (+ legend strip)
    (+ the key help in a strip of its own, so that it covers neither the canvas nor the painting).

    `scale` enlarges the panels (nearest neighbour) before the text goes on, so text stays sharp.
    """
    panels = [p for p in (input_rgb, labels_rgb) if p is not None] + [painting]
    frame = np.concatenate(panels, axis=1)
    if legend is not None:
        frame = np.concatenate([frame, legend], axis=0)
    # RGB -> BGR as a new contiguous array (numpy's [..., ::-1] copied is ~20x slower)
    frame = cv2().cvtColor(frame, cv2().COLOR_RGB2BGR)
    if scale != 1:
        frame = cv2().resize(frame, None, fx=scale, fy=scale, interpolation=cv2().INTER_NEAREST)
    if overlay:
        _text(frame, list(overlay), 5 * scale, 13 * scale, scale)
    if help:
        frame = np.concatenate([frame, help_strip(frame.shape[1], scale)], axis=0)
    return frame


class LabelColours:
    """`colours(labels)` == `lut[labels]` (uint8 RGB) for a (n, 3) uint8 lookup table, ~8x faster at
    512x512: one 4-byte gather per pixel instead of numpy's three-byte row indexing, then a channel drop."""

    def __init__(self, lut: np.ndarray):
        rgba = np.zeros((len(lut), 4), np.uint8)
        rgba[:, :3] = lut
        self.lut, self._packed = lut, rgba.view(np.uint32)[:, 0]

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        rgba = np.take(self._packed, labels).view(np.uint8).reshape(*labels.shape, 4)
        return cv2().cvtColor(rgba, cv2().COLOR_RGBA2RGB)


def help_strip(width: int, scale: int = 1) -> np.ndarray:
    """The keys as white text on dark grey (BGR), wrapped to `width` at the overlay's font size."""
    cv = cv2()
    font, size, line, margin = cv.FONT_HERSHEY_SIMPLEX, 0.4 * scale, int(LINE * scale), 5 * scale
    fits = lambda text: cv.getTextSize(text, font, size, 1)[0][0] <= width - 2 * margin  # noqa: E731
    lines: list[str] = []
    for group in _help_groups():  # the paint keys start on a line of their own
        current = ""
        for item in group:
            joined = f"{current}   {item}" if current else item
            if current and not fits(joined):
                lines.append(current)
                joined = item
            current = joined
        lines.append(current)
    strip = np.full((line * len(lines) + margin, width, 3), 40, np.uint8)
    for i, text in enumerate(lines):
        cv.putText(strip, text, (margin, line * (i + 1) - 2 * scale), font, size, (255, 255, 255), 1, cv.LINE_AA)
    return strip


def overlay_lines(
    s: dict, fps: float, model: str, backend: str, paused: bool, recording: bool, paint: bool
) -> list[str]:
    """The overlay's two lines from a `Stats.summary()` and the current frame rate."""
    stages = "  ".join(
        f"{n} {s[f'{n}_ms']['median']:.0f}" for n in ("capture", "segment", "paint", "display") if f"{n}_ms" in s
    )
    flags = "".join([" PAUSED" if paused else "", " REC" if recording else "", " PAINT" if paint else ""])
    latency = s.get("end_to_end_ms", {}).get("median", 0)
    return [f"{fps:.1f} fps  latency {latency:.0f} ms{flags}", f"{model} ({backend})  ms: {stages}"]


def display_problem() -> str | None:
    """Why no window can open here, or None when one can (a display server is set and this OpenCV
    build has a GUI). Checked before any window call: with no display, Qt aborts the process
    (exit 134) instead of raising."""
    if os.name != "nt" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display found (DISPLAY and WAYLAND_DISPLAY are unset)"
    if hasattr(cv2(), "currentUIFramework"):
        gui = cv2().currentUIFramework()
    else:
        info = cv2().getBuildInformation()
        gui = info.split("GUI:", 1)[1].split("\n", 1)[0].strip() if "GUI:" in info else ""
    if gui in ("", "NONE"):
        return "no display found: this OpenCV has no GUI (opencv-python-headless?); pip install opencv-python"
    return None


def display_available() -> bool:
    """Whether a window can open here (see `display_problem`)."""
    return display_problem() is None


class Window:
    """An OpenCV window scaled up from the panel size; mouse positions come back in panel pixels."""

    def __init__(self, name: str, scale: int = 2, on_mouse=None):
        cv = cv2()
        self.name, self.scale = name, scale
        fonts = Path("/usr/share/fonts/truetype/dejavu")
        if not Path(os.environ.get("QT_QPA_FONTDIR", "/nonexistent")).is_dir() and fonts.is_dir():
            os.environ["QT_QPA_FONTDIR"] = str(fonts)  # OpenCV's Qt ships no fonts: trackbar labels need some
        # GUI_NORMAL: no Qt toolbar (zoom/pan buttons that would fight our keys and mouse)
        cv.namedWindow(name, cv.WINDOW_AUTOSIZE | cv.WINDOW_GUI_NORMAL)
        if on_mouse is not None:
            cv.setMouseCallback(name, lambda event, x, y, flags, _: on_mouse(event, x // scale, y // scale, flags))
        self._trackbars: set[str] = set()

    def show(self, frame: np.ndarray) -> None:
        """Show a frame composed at this window's scale."""
        cv2().imshow(self.name, frame)

    def key(self, wait_ms: int = 1) -> int:
        """The key pressed (its code & 0xFF), or -1."""
        k = cv2().waitKey(wait_ms)
        return -1 if k < 0 else k & 0xFF

    def is_open(self) -> bool:
        try:
            return cv2().getWindowProperty(self.name, cv2().WND_PROP_VISIBLE) >= 1
        except cv2().error:
            return False

    def trackbar(self, label: str, maximum: int, value: int, on_change) -> None:
        if label not in self._trackbars:
            cv2().createTrackbar(label, self.name, value, maximum, on_change)
            self._trackbars.add(label)

    def set_trackbar(self, label: str, value: int) -> None:
        if label in self._trackbars:
            cv2().setTrackbarPos(label, self.name, value)

    def close(self) -> None:
        try:
            cv2().destroyWindow(self.name)
            cv2().waitKey(1)
        except cv2().error:
            pass


class Recorder:
    """MP4 writer that appears under its final name only when closed (no half-written files).

    Frames are encoded on a thread of its own (OpenCV releases the GIL while it encodes), through a
    queue of `backlog` frames: the display loop does not wait for the encoder, and a full queue makes
    `write` wait, so no frame is dropped. An encoder error is raised by the next `write` or by `close`.
    """

    def __init__(self, path: str | Path, fps: float, backlog: int = 4):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")
        self.fps, self.writer, self.frames = fps, None, 0
        self._queue: queue.Queue = queue.Queue(backlog)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, frame: np.ndarray) -> None:
        self._raise()
        if self.writer is None:
            cv = cv2()
            h, w = frame.shape[:2]
            self.writer = cv.VideoWriter(str(self.tmp), cv.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot write MP4 here")
            self.size = (h, w)
            self._thread = threading.Thread(target=self._encode, name="rtgan-recorder", daemon=True)
            self._thread.start()
        if frame.shape[:2] != self.size:
            # the frame grows with the legend (p) and the help strip (h); OpenCV would silently drop
            # frames of another size, so pad or cut them to the first frame's (the panels stay at top left)
            fitted = np.zeros((*self.size, 3), np.uint8)
            h, w = min(self.size[0], frame.shape[0]), min(self.size[1], frame.shape[1])
            fitted[:h, :w] = frame[:h, :w]
            frame = fitted
        else:
            frame = frame.copy()  # what it is now is recorded, whatever the caller does with it next
        self._queue.put(frame)
        self.frames += 1

    def _encode(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self.writer.write(frame)
                except BaseException as e:  # noqa: BLE001 - raised on the caller's thread
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> Path | None:
        if self.writer is None:
            return None
        self._queue.put(None)
        self._thread.join()
        self.writer.release()
        self.writer = None
        os.replace(self.tmp, self.path)
        self._raise()
        return self.path
