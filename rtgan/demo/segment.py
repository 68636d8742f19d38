"""Segmenters: a camera frame (uint8 RGB) -> label ids the painting model takes.

- `PaletteSegmenter`: nearest class colour in CIELAB, so a marker drawing in GauGAN colours held up
  to the webcam becomes a landscape.
- `OnnxSegmenter`: a user's ONNX segmentation network plus a JSON file mapping its classes to ours.
- `PassThrough`: label-map sources (PNGs, the built-in scene, the paint canvas) need no segmenter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from .imaging import cover_crop, cv2, resize_cover


def _check_rgb(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(
            f"a segmenter takes uint8 RGB (H, W, 3), got {getattr(image, 'dtype', type(image))} {np.shape(image)}"
        )


def _lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> float32 CIELAB with L in 0..100 and a, b around 0."""
    lab = cv2().cvtColor(np.ascontiguousarray(rgb.reshape(-1, 1, 3)), cv2().COLOR_RGB2LAB).astype(np.float32)
    lab = lab.reshape(*rgb.shape[:-1], 3)
    lab[..., 0] *= 100 / 255
    lab[..., 1:] -= 128
    return lab


class PaletteSegmenter:
    """Nearest class colour in CIELAB, then a median filter and small-region cleanup.

    Lightness counts half as much as hue: paper under a lamp changes lightness far more than hue.
    Unpainted paper (bright, grey) becomes `paper` (an id, e.g. sky) rather than the nearest pale class.
    """

    def __init__(
        self,
        palette: dict[int, tuple[int, int, int]],
        *,
        paper: int | None = None,
        blur_sigma: float = 1.0,
        window: int = 7,
        lightness_weight: float = 1.0,
    ):
        if not palette:
            raise ConfigError("the palette segmenter needs at least one class colour")
        self.ids = np.array(list(palette), np.int32)
        if paper is not None and paper not in palette:
            raise ConfigError(f"paper class {paper} is not one of the palette's ids {self.ids.tolist()}")
        self.paper = None if paper is None else int(np.flatnonzero(self.ids == paper)[0])
        # every RGB colour at 6 bits per channel -> its class, decided once in CIELAB: a frame is then a lookup
        levels = np.arange(2, 256, 4, dtype=np.uint8)  # the centre of each 4-wide bin
        grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
        lab = _lab(grid)
        weights = np.array([lightness_weight, 1.0, 1.0], np.float32)
        centres = _lab(np.array(list(palette.values()), np.uint8)) * weights
        d = (centres**2).sum(1)[None] - 2 * (lab * weights) @ centres.T
        table = d.argmin(1).astype(np.uint8)
        if self.paper is not None:
            grey = (np.hypot(lab[:, 1], lab[:, 2]) < 12) & (lab[:, 0] > 75)
            table[grey] = self.paper
        self.table = table  # indexed by (r >> 2) << 12 | (g >> 2) << 6 | b >> 2
        self.blur_sigma, self.window = blur_sigma, window

    def __call__(self, image: np.ndarray) -> np.ndarray:
        _check_rgb(image)
        cv = cv2()
        if self.blur_sigma > 0:
            image = cv.GaussianBlur(image, (0, 0), self.blur_sigma)
        q = image >> 2
        index = self.table[(q[..., 0].astype(np.int32) << 12) | (q[..., 1].astype(np.int32) << 6) | q[..., 2]]
        return self.ids[self._vote(index, image) if self.window > 1 else index]

    def _vote(self, index: np.ndarray, image: np.ndarray) -> np.ndarray:
        """Majority vote in a window, each pixel weighted down by the colour gradient under it.

        Where two marker colours blur into each other the mixture often looks like a third class
        (blue sea + green grass reads as rock); those pixels sit on steep gradients, so the confident
        pixels on either side outvote them. The vote also removes specks smaller than the window.
        """
        cv = cv2()
        # |d/dx| + |d/dy| summed over RGB (each saturated at 255: beyond that the weight is ~0 anyway)
        ax = cv.convertScaleAbs(cv.Sobel(image, cv.CV_16S, 1, 0))
        ay = cv.convertScaleAbs(cv.Sobel(image, cv.CV_16S, 0, 1))
        g = cv.add(ax, ay).sum(2, dtype=np.float32) * np.float32(1 / 40)
        weight = 1 / (1 + g * g)
        size, zero = (self.window, self.window), np.float32(0)
        best = out = None
        for k in np.flatnonzero(np.bincount(index.ravel(), minlength=len(self.ids))):
            votes = cv.boxFilter(np.where(index == k, weight, zero), -1, size)
            if best is None:
                best, out = votes, np.full(index.shape, k, np.uint8)
            else:
                out = np.where(votes > best, np.uint8(k), out)
                best = np.maximum(votes, best)
        return out


class OnnxSegmenter:
    """A user's ONNX segmentation network; `mapping` (JSON) maps its classes to the painting model's ids.

    The JSON file: {"classes": {"0": "sky", "1": 154, ...}, "fallback": "grass",
    "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "size": [H, W]}. Class values are ids
    or names from `names`; network classes not listed become `fallback`. The network takes float32
    NCHW RGB scaled to 0..1 then normalized, and returns logits (1, C, h, w) or class indices (1, h, w).
    """

    def __init__(self, model: str | Path, mapping: str | Path, label_ids, names: dict[str, int], threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ConfigError("the ONNX segmenter needs onnxruntime: pip install 'rtgan[cpu]'") from e
        self.label_ids = None if label_ids is None else set(int(i) for i in label_ids)
        try:
            spec = json.loads(Path(mapping).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{mapping}: cannot read the class mapping: {e}") from e
        if not isinstance(spec, dict) or not isinstance(spec.get("classes"), dict) or not spec["classes"]:
            raise ConfigError(f'{mapping}: needs a non-empty "classes" object mapping network classes to ids or names')
        self.mean = np.array(spec.get("mean", [0.0, 0.0, 0.0]), np.float32).reshape(1, 3, 1, 1)
        self.std = np.array(spec.get("std", [1.0, 1.0, 1.0]), np.float32).reshape(1, 3, 1, 1)
        try:
            table = {int(k): self._id(v, names, mapping) for k, v in spec["classes"].items()}
        except ValueError as e:
            raise ConfigError(f"{mapping}: class keys must be the network's class indices: {e}") from e
        fallback = self._id(spec.get("fallback", next(iter(table.values()))), names, mapping)
        self.fallback = fallback
        self.lut = np.full(max(table) + 1, fallback, np.int32)
        for k, v in table.items():
            self.lut[k] = v
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own untyped errors for unreadable files
            raise ConfigError(f"{model}: not a loadable ONNX model: {e}") from e
        self.input = self.session.get_inputs()[0]
        shape = self.input.shape
        size = spec.get("size") or (shape[2:4] if all(isinstance(s, int) for s in shape[2:4]) else None)
        if size is None:
            raise ConfigError(f'{mapping}: the network has a dynamic input size; give "size": [H, W]')
        self.size = (int(size[0]), int(size[1]))

    def _id(self, value, names: dict[str, int], where) -> int:
        if isinstance(value, str):
            if value not in names:
                raise ConfigError(f"{where}: unknown class name {value!r}; known: {', '.join(names)}")
            value = names[value]
        if not isinstance(value, int) or (self.label_ids is not None and value not in self.label_ids):
            raise ConfigError(f"{where}: {value!r} is not one of the painting model's label ids")
        return value

    def __call__(self, image: np.ndarray) -> np.ndarray:
        _check_rgb(image)
        cv = cv2()
        h, w = image.shape[:2]
        x = cv.resize(image, self.size[::-1], interpolation=cv.INTER_AREA).astype(np.float32) / 255
        x = (x.transpose(2, 0, 1)[None] - self.mean) / self.std
        out = self.session.run(None, {self.input.name: np.ascontiguousarray(x, np.float32)})[0]
        classes = out[0].argmax(0) if out.ndim == 4 else out[0]
        inside = classes < len(self.lut)  # network classes past the mapping's largest key -> fallback
        ids = np.where(inside, self.lut[np.where(inside, classes, 0)], self.fallback).astype(np.int32)
        return cv.resize(ids, (w, h), interpolation=cv.INTER_NEAREST)


def labels_from_png(
    image: np.ndarray, palette: dict[int, tuple[int, int, int]] | None, names: dict[int, str] | None = None
) -> np.ndarray:
    """A label-map image -> ids: single-channel images are ids; colour ones are read through `palette`
    (`names`, id -> class name, only make the error for a stray colour clearer)."""
    if image.ndim == 2:
        return image.astype(np.int32)
    if palette is None:
        raise InputError("a colour label map needs a palette; give single-channel id PNGs for this model")
    rgb = image[..., :3].astype(np.int32)
    key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in palette.items()}
    known = np.isin(key, list(colours))
    if not known.all():
        raise InputError(_stray_colours(rgb, known, palette, names or {}))
    codes = np.array(list(colours))
    order = np.argsort(codes)
    return np.array(list(colours.values()), np.int32)[order][np.searchsorted(codes[order], key)]


def _stray_colours(rgb: np.ndarray, known: np.ndarray, palette: dict, names: dict[int, str]) -> str:
    """Where the first pixel off the palette is, how many there are, and the class it was probably meant as
    (stray colours come from anti-aliased brushes, JPEG or a resize that blended two classes)."""
    off = ~known
    y, x = divmod(int(np.argmax(off)), off.shape[1])
    colour = tuple(int(v) for v in rgb[y, x])
    ids = list(palette)
    centres = np.array([palette[i] for i in ids])
    nearest = ids[int(((centres - colour) ** 2).sum(1).argmin())]
    label = f" ({names[nearest]})" if nearest in names else ""
    count = int(off.sum())
    return (
        f"{count} pixels ({count / off.size:.1%}) of the label map are not class colours of this model; "
        f"the first, at (x={x}, y={y}), is colour {colour}, nearest to class colour {tuple(palette[nearest])} "
        f"= id {nearest}{label}. Draw label maps without anti-aliasing and save them as PNG (not JPEG), "
        "or as single-channel id PNGs"
    )


# A map of another shape is centre-cropped to the engine's aspect ratio and then resized (cover), not
# squashed: stretching would turn round clouds into ovals and the painting would not match the drawing.
def fit_labels(ids: np.ndarray, height: int, width: int) -> np.ndarray:
    """Label ids of any size -> (height, width), cropped to the aspect ratio, nearest neighbour."""
    return resize_cover(ids.astype(np.int32), height, width, nearest=True)


def fit_note(kind: str, shape: tuple[int, ...], height: int, width: int) -> str | None:
    """The log line telling how a frame of `shape` is fitted to the engine's height x width (None: as is)."""
    h, w = shape[:2]
    if (h, w) == (height, width):
        return None
    _, _, ch, cw = cover_crop(h, w, height, width)
    crop = "" if (ch, cw) == (h, w) else f" centre-cropped to {ch}x{cw} (aspect ratio kept) and"
    how = "nearest" if kind == "labels" else "area" if ch > height else "linear"
    return f"{kind} {h}x{w}{crop} resized to {height}x{width} ({how})"
