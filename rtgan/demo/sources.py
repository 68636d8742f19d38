"""Frame sources: webcam, video file, images, label-map PNGs, the animated scene, the paint canvas.

Each source has `kind` ("image": uint8 RGB to segment, or "labels": ids to paint directly), `fps`
(the pace a live feed would have; None for a camera, whose `read` blocks until the next frame),
`name` (what is painted, for the log and latency.json), `read() -> array | None` (None: the stream
ended) and `close()`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from .imaging import cv2
from .scene import AnimatedScene
from .segment import labels_from_png

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class SourceError(ConfigError):
    """A source cannot be opened (no such file, no camera, unreadable image)."""


def _quiet_opencv() -> None:
    # OpenCV's own warnings (a camera index that is not there...) would drown our one-line messages
    cv = cv2()
    try:
        cv.utils.logging.setLogLevel(cv.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass


class Camera:
    kind, fps = "image", None

    def __init__(self, index: int = 0, retries: int = 5, log=print):
        _quiet_opencv()
        self.index, self.retries, self.log = index, retries, log
        self.name = f"camera {index}"
        self.capture = self._open()
        if self.capture is None:
            raise SourceError(f"no camera at index {index}")

    @staticmethod
    def available(index: int = 0) -> bool:
        if sys.platform.startswith("linux") and not Path(f"/dev/video{index}").exists():
            return False  # skip OpenCV's slow probing of every backend
        _quiet_opencv()
        capture = cv2().VideoCapture(index)
        ok = capture.isOpened()
        capture.release()
        return ok

    def _open(self):
        capture = cv2().VideoCapture(self.index)
        if not capture.isOpened():
            capture.release()
            return None
        capture.set(cv2().CAP_PROP_BUFFERSIZE, 1)  # we want the newest frame, not a queue of old ones
        return capture

    def read(self) -> np.ndarray | None:
        ok, frame = self.capture.read() if self.capture is not None else (False, None)
        delay = 0.5
        for attempt in range(1, self.retries + 1):
            if ok:
                return frame[..., ::-1].copy()
            self.log(f"camera {self.index}: no frame; reconnecting ({attempt}/{self.retries})")
            if self.capture is not None:
                self.capture.release()
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
            self.capture = self._open()
            ok, frame = self.capture.read() if self.capture is not None else (False, None)
        if ok:
            return frame[..., ::-1].copy()
        self.log(f"camera {self.index}: gone after {self.retries} reconnects")
        return None

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


class VideoFile:
    kind = "image"

    def __init__(self, path: str | Path, loop: bool = False):
        _quiet_opencv()
        self.path, self.loop = Path(path), loop
        self.name = str(self.path)
        if not self.path.is_file():
            raise SourceError(f"{path}: no such video file")
        self.capture = cv2().VideoCapture(str(self.path))
        ok, self._first = self.capture.read()
        if not ok:
            self.capture.release()
            raise SourceError(f"{path}: OpenCV cannot decode this video")
        fps = self.capture.get(cv2().CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else 30.0

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame[..., ::-1].copy()
        ok, frame = self.capture.read()
        if not ok and self.loop:
            self.capture.set(cv2().CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.capture.read()
        return frame[..., ::-1].copy() if ok else None

    def close(self) -> None:
        self.capture.release()


def _image_paths(path: Path) -> list[Path]:
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SourceError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
        return paths
    if not path.is_file():
        raise SourceError(f"{path}: no such file or folder")
    return [path]


class Stills:
    """Images or label-map PNGs from a file or folder, each held for `hold` seconds, looping."""

    def __init__(self, path, kind: str, fps: float = 30.0, hold: float = 2.0, palette=None, names=None):
        self.kind, self.fps, self.hold, self.palette, self.names = kind, fps, hold, palette, names
        self.name = f"labels:{path}" if kind == "labels" else str(path)
        self.frames = [self._load(p) for p in _image_paths(Path(path))]
        self.count = 0

    def _load(self, path: Path) -> np.ndarray:
        flag = cv2().IMREAD_UNCHANGED if self.kind == "labels" else cv2().IMREAD_COLOR
        image = cv2().imread(str(path), flag)
        if image is None:
            raise SourceError(f"{path}: not a readable image (corrupted or unsupported)")
        if self.kind == "labels":
            try:
                return labels_from_png(image if image.ndim == 2 else image[..., 2::-1], self.palette, self.names)
            except InputError as e:
                raise InputError(f"{path}: {e}") from None
        return image[..., ::-1].copy()

    def read(self) -> np.ndarray:
        frame = self.frames[int(self.count / (self.hold * self.fps)) % len(self.frames)]
        self.count += 1
        return frame

    def close(self) -> None:
        pass


class Scene:
    kind, name = "labels", "scene"

    def __init__(self, height: int, width: int, fps: float = 30.0, seed: int | None = None):
        self.scene = AnimatedScene(height, width) if seed is None else AnimatedScene(height, width, seed)
        self.fps, self.count = fps, 0

    def read(self) -> np.ndarray:
        # scene time follows frames, not the clock: the headless output is the same on any machine
        frame = self.scene.frame(self.count / self.fps)
        self.count += 1
        return frame

    def close(self) -> None:
        pass


class CanvasSource:
    """The paint canvas as a source: the current label map, copied only when it changed."""

    kind, name = "labels", "canvas"

    def __init__(self, canvas, fps: float = 30.0):
        self.canvas, self.fps = canvas, fps
        self._version, self._frame = None, None

    def read(self) -> np.ndarray:
        if self.canvas.version != self._version:
            self._version, self._frame = self.canvas.version, self.canvas.snapshot()
        return self._frame

    def close(self) -> None:
        pass


def _camera_here(index: int) -> bool:
    return not os.environ.get("RTGAN_NO_CAMERA") and Camera.available(index)


def _cameras_hint() -> str:
    if os.environ.get("RTGAN_NO_CAMERA"):
        return " (RTGAN_NO_CAMERA is set)"
    if not sys.platform.startswith("linux"):
        return ""
    found = sorted(int(p.name[5:]) for p in Path("/dev").glob("video[0-9]*") if p.name[5:].isdigit())
    return f" (cameras here: {', '.join(map(str, found))})" if found else " (this machine shows no camera)"


def open_source(
    spec: str | None,
    height: int,
    width: int,
    *,
    fps: float = 30.0,
    loop: bool = False,
    palette=None,
    names=None,
    log=print,
):
    """`spec`: a camera index, a video file, an image file or folder, `labels:PATH` or `scene`.

    None (no --source given) is camera 0, or the animated scene with a message when there is none.
    A camera asked for by its index is never replaced: a missing one is an error naming the fix, as
    painting something else instead would hide that the camera is not working.
    """
    if spec is None:
        if _camera_here(0):
            return Camera(0, log=log)
        log("no camera at index 0: painting the built-in animated scene instead (--source chooses another)")
        return Scene(height, width, fps)
    if spec == "scene":
        return Scene(height, width, fps)
    if spec.startswith("labels:"):
        return Stills(spec[len("labels:") :], "labels", fps, palette=palette, names=names)
    if spec.isdigit():
        index = int(spec)
        if not _camera_here(index):
            raise SourceError(
                f"--source {spec}: no camera at index {index}{_cameras_hint()}; connect one, give another "
                "index, or paint a video, images or the built-in scene (--source scene)"
            )
        return Camera(index, log=log)
    path = Path(spec)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return VideoFile(path, loop=loop)
    return Stills(path, "image", fps)
