"""The inputs the demo holds across frames besides the label map or frame: z, noise, style codes,
the latent walk and scalar controls (StyleGAN's truncation), read from the engine's signature.

Pure state, no window and no threads of its own: the painter asks `Controls.inputs()` for each
frame's `Engine.run` keywords; the UI thread's requests (`n`, `[`/`]`, `t`) reach it through the
painter. Every random draw is a function of the session's seed, so that tests can recompute it:

- a latent walk's keyframe j is `keyframe(seed, j, size)`; frame i of the walk (no jumps) is
  `slerp(k[i // N], k[i // N + 1], ease((i % N) / N))`, N = `frames`;
- the noise brush's z of stroke s is `stroke_z(seed, s, z_dim)` (see `paint.Canvas`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from .imaging import cv2, resize_cover

WALK_FRAMES = 90  # painted frames from one walk keyframe to the next (3 s at 30 fps)
SCALAR_STEPS = 20  # `[` / `]` move a scalar by 1/20 of its [low, high] range
STYLE_LATENTS = ("z", "style_code")  # the latent inputs `n` redraws (others, e.g. noise, stay fixed per model)
WALK_STREAM, STROKE_STREAM = 0x57A1C, 0x5E0C  # separate random streams of one seed


def keyframe(seed: int, index: int, size: int) -> np.ndarray:
    """The latent walk's keyframe `index`: z ~ N(0, I), a function of (seed, index) only."""
    return np.random.default_rng((WALK_STREAM, seed, index)).standard_normal(size).astype(np.float32)


def stroke_z(seed: int, stroke: int, size: int) -> np.ndarray:
    """The noise brush's z for stroke number `stroke` (counted from 1 in a session)."""
    return np.random.default_rng((STROKE_STREAM, seed, stroke)).standard_normal(size).astype(np.float32)


def ease(t: float) -> float:
    """Smoothstep: zero speed at both keyframes, so the walk does not jerk where segments meet."""
    t = min(max(float(t), 0.0), 1.0)
    return t * t * (3 - 2 * t)


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation: keeps |z| near that of a Gaussian sample (a straight line between two
    samples passes through smaller norms, which paint duller images mid-way)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    na, nb = np.linalg.norm(a64), np.linalg.norm(b64)
    cos = float(np.clip(a64 @ b64 / max(na * nb, 1e-12), -1.0, 1.0))
    omega = np.arccos(cos)
    if omega < 1e-6:
        out = (1 - t) * a64 + t * b64
    else:
        out = (np.sin((1 - t) * omega) * a64 + np.sin(t * omega) * b64) / np.sin(omega)
    return out.astype(np.float32)


class LatentWalk:
    """z moving smoothly between successive random keyframes, one step per painted frame; `jump()`
    heads from where z is now to a new keyframe."""

    def __init__(self, size: int, seed: int = 0, frames: int = WALK_FRAMES):
        self.size, self.seed, self.frames = int(size), int(seed), max(1, int(frames))
        self.start, self.target = keyframe(self.seed, 0, self.size), keyframe(self.seed, 1, self.size)
        self.drawn = 2  # keyframes drawn so far: the next one is keyframe(seed, drawn)
        self.step = 0
        self.z = self.start

    def _next_keyframe(self) -> np.ndarray:
        k = keyframe(self.seed, self.drawn, self.size)
        self.drawn += 1
        return k

    def advance(self) -> np.ndarray:
        """This frame's z, then one step on."""
        if self.step >= self.frames:
            self.start, self.target, self.step = self.target, self._next_keyframe(), 0
        self.z = slerp(self.start, self.target, ease(self.step / self.frames))
        self.step += 1
        return self.z

    def jump(self) -> None:
        """Head for a new keyframe from the current z (no cut: the walk stays smooth)."""
        self.start, self.target, self.step = self.z, self._next_keyframe(), 1


class Scalar:
    """A scalar input held at a value in [low, high] (StyleGAN's truncation ψ), nudged by `[` / `]`."""

    def __init__(self, spec):
        self.name = spec.name
        low, high = getattr(spec, "low", None), getattr(spec, "high", None)
        self.low = -np.inf if low is None else float(low)
        self.high = np.inf if high is None else float(high)
        default = getattr(spec, "default", None)
        mid = 0.0 if not np.isfinite(self.low + self.high) else (self.low + self.high) / 2
        self.value = float(np.clip(mid if default is None else default, self.low, self.high))
        bounded = np.isfinite(self.low) and np.isfinite(self.high)
        self.step = (self.high - self.low) / SCALAR_STEPS if bounded and self.high > self.low else 0.05

    def nudge(self, direction: int) -> float:
        self.value = float(np.clip(round(self.value + direction * self.step, 6), self.low, self.high))
        return self.value


def load_image(path: str | Path) -> np.ndarray:
    """An image file -> uint8 RGB (H, W, 3); an unreadable one is an InputError naming it."""
    image = cv2().imread(str(path), cv2().IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    return np.ascontiguousarray(image[..., ::-1])


class StyleBook:
    """SEAN's styles: whole-image style images (`--style-image`, cycled with `t`) and per-region ones
    (`--region-style CLASS=PATH`), composed into the per-class codes (C, L) the engine takes.

    Composition, for a frame's label map: the classes' codes start from the model's random codes (drawn
    once; `n` redraws them); a whole-image style replaces every row with `encode_style(image, labels)`
    (the image fitted to the model size, pooled over the frame's own regions); then each region style
    replaces its class's row with row k of `encode_style(image, labels=full map of k)`.
    """

    def __init__(self, images: dict[str, np.ndarray] | None = None, regions: dict[int, tuple[str, np.ndarray]] = None):
        self.images = dict(images or {})  # name -> RGB, in cycling order
        self.regions = dict(regions or {})  # class id -> (name, RGB)
        self.index = 0 if self.images else None
        self._whole: tuple | None = None  # (engine, index, labels digest) -> codes, the last frame's
        self._region: dict = {}  # (engine id, class) -> the row

    @classmethod
    def from_paths(cls, images=(), regions=(), class_id=None) -> "StyleBook":
        """Paths and "CLASS=PATH" strings -> a book; `class_id(text)` reads CLASS (an id or a name)."""
        whole = {str(p): load_image(p) for p in images}
        per = {}
        for item in regions:
            cls_text, sep, path = str(item).partition("=")
            if not sep or not cls_text or not path:
                raise ConfigError(f"--region-style {item!r}: give CLASS=PATH (a class id or name, then an image)")
            k = class_id(cls_text) if class_id is not None else int(cls_text)
            per[k] = (path, load_image(path))
        return cls(whole, per)

    def __bool__(self) -> bool:
        return bool(self.images or self.regions)

    @property
    def current(self) -> str | None:
        return None if self.index is None else list(self.images)[self.index]

    def cycle(self) -> str | None:
        """The next whole-image style (wrapping); None when none was given."""
        if self.index is None:
            return None
        self.index = (self.index + 1) % len(self.images)
        return self.current

    def image(self, height: int, width: int) -> np.ndarray | None:
        """The current whole-image style fitted to the model size (for a model taking a style image)."""
        name = self.current
        return None if name is None else resize_cover(self.images[name], height, width)

    def codes(self, engine, labels: np.ndarray, base: np.ndarray) -> np.ndarray:
        """The codes (C, L) for this frame: `base` (C, L) with the styles given laid over it."""
        h, w = engine.height, engine.width
        codes = np.array(base, np.float32, copy=True)
        if self.index is not None:
            digest = hashlib.blake2b(np.ascontiguousarray(labels).tobytes(), digest_size=16).digest()
            key = (id(engine), self.index, digest)
            if self._whole is None or self._whole[0] != key:
                whole = _codes(engine.encode_style(self.image(h, w), labels=np.asarray(labels, np.int32)))
                self._whole = (key, whole)
            codes[:] = self._whole[1]
        for k, (_, image) in self.regions.items():
            if (id(engine), k) not in self._region:
                full = np.full((h, w), k, np.int32)
                self._region[(id(engine), k)] = _codes(engine.encode_style(resize_cover(image, h, w), labels=full))[k]
            codes[k] = self._region[(id(engine), k)]
        return codes

    def describe(self) -> str:
        parts = []
        if self.current is not None:
            parts.append(f"style {Path(self.current).name} ({self.index + 1}/{len(self.images)})")
        if self.regions:
            parts.append(f"{len(self.regions)} region style{'s' * (len(self.regions) > 1)}")
        return " + ".join(parts)


def _codes(out) -> np.ndarray:
    out = np.asarray(out, np.float32)
    return out[0] if out.ndim == 3 else out


def draw(spec, rng: np.random.Generator) -> np.ndarray | float:
    """One sample of a declared input as the engine would draw it, for holding fixed across frames."""
    if spec.kind in ("latent", "latents"):
        shape = (spec.size,) if spec.kind == "latent" else (spec.classes, spec.size)
        return rng.standard_normal(shape).astype(np.float32)
    if spec.kind == "codes":
        return rng.uniform(-1, 1, spec.size).astype(np.float32)
    if spec.kind == "styles":
        return rng.uniform(-1, 1, (spec.classes, spec.size)).astype(np.float32)
    if spec.kind == "class":
        return np.int32(rng.integers(0, spec.classes))
    if spec.kind == "scalar":
        return float(getattr(spec, "default", None) or 0.0)
    raise ConfigError(f"input {spec.name!r} of kind {spec.kind!r}: the demo cannot fill it in")


class Controls:
    """What one engine takes besides its label map or frame, held across frames.

    - `z` (a VAE's, OASIS's) or MUNIT's `style_code`: one per style, redrawn by `n`;
    - a generator with neither labels nor an image (StyleGAN): its `z` walks (`LatentWalk`), `n` jumps;
    - other latents (noise), codes and classes: drawn once per model, so the painting does not flicker;
    - the first `scalar` input (truncation): its default, nudged by `[` / `]` within [low, high];
    - a `regions` input (OASIS's `noise_regions`) and its `latents` (`z_regions`): the paint canvas's
      noise map and stroke z's (`noise()`), only where they fit this engine;
    - `styles` (SEAN's per-class codes): random codes composed with the `StyleBook`; a style `image`
      input gets the book's whole-image style.
    """

    def __init__(
        self,
        engine,
        rng: np.random.Generator,
        seed: int = 0,
        styles: StyleBook | None = None,
        walk_frames: int | None = None,
    ):
        self.engine, self.rng, self.seed = engine, rng, seed
        self.styles = styles if styles is not None else StyleBook()
        sig = engine.signature
        names = set(engine.input_names)
        self.generative = not ({"labels", "source"} & names)  # no label map, no image: one panel
        self.z_name: str | None = None
        self.z: np.ndarray | None = None  # (1, size): the style latent of a label or image model
        self.walk: LatentWalk | None = None
        self.fixed: dict = {}
        self.scalar: Scalar | None = None
        self.regions = self.region_latents = None
        self.codes_spec = self.style_image_spec = None
        self.codes: np.ndarray | None = None
        if sig is None:  # an artifact written before signatures: a VAE's z at most
            if "z" in names:
                self.z_name, self.z = "z", self._z(engine.manifest["z_dim"])
            return
        for spec in sig.inputs:
            if spec.name in ("labels", "instance", "source"):
                continue
            if spec.kind == "latent" and spec.name in STYLE_LATENTS and self.z_name is None:
                self.z_name = spec.name
                if self.generative:
                    self.walk = LatentWalk(spec.size, seed, walk_frames or WALK_FRAMES)
                else:
                    self.z = self._z(spec.size)
            elif spec.kind == "scalar" and self.scalar is None:
                self.scalar = Scalar(spec)
            elif spec.kind == "regions" and self.regions is None:
                self.regions = spec
            elif spec.kind == "latents" and self.region_latents is None:
                self.region_latents = spec
            elif spec.kind == "styles" and self.codes_spec is None:
                self.codes_spec, self.codes = spec, draw(spec, rng)
            elif spec.kind == "image" and self.style_image_spec is None:
                self.style_image_spec = spec
            else:
                self.fixed[spec.name] = draw(spec, rng)
        bad = [k for k in self.styles.regions if self.codes_spec is not None and not 0 <= k < self.codes_spec.classes]
        if bad:
            last = self.codes_spec.classes - 1
            raise ConfigError(f"--region-style class {bad[0]}: this model has style codes for 0..{last}")
        if self.style_image_spec is not None and self.styles.current is None:
            raise ConfigError(f"it takes a style image ({self.style_image_spec.name}): give --style-image PATH")

    def _z(self, size: int) -> np.ndarray:
        return self.rng.standard_normal((1, size)).astype(np.float32)

    @property
    def has_style(self) -> bool:
        """Whether `n` has something to redraw."""
        return self.z is not None or self.walk is not None or self.codes is not None

    def new_style(self) -> None:
        """`n`: a new z (or style code), a new walk target, new random codes for the classes without a style."""
        if self.walk is not None:
            self.walk.jump()
        if self.z is not None:
            self.z = self._z(self.z.shape[1])
        if self.codes is not None:
            self.codes = draw(self.codes_spec, self.rng)

    def noise_fits(self, classes: int | None, z_dim: int | None) -> bool:
        r, lat = self.regions, self.region_latents
        return r is not None and lat is not None and classes == r.classes and z_dim == lat.size

    def inputs(self, labels: np.ndarray | None = None, noise=None) -> dict:
        """This frame's keywords for `Engine.run`. `noise`: (region map (H, W), z's (M - 1, z_dim)) or None."""
        feeds = dict(self.fixed)
        if self.walk is not None:
            feeds[self.z_name] = self.walk.advance()
        elif self.z is not None:
            feeds[self.z_name] = self.z
        if self.scalar is not None:
            feeds[self.scalar.name] = self.scalar.value
        if noise is not None and self.regions is not None:
            region_map, zs = noise
            feeds[self.regions.name] = region_map
            if self.region_latents is not None:
                feeds[self.region_latents.name] = zs
        if self.codes_spec is not None:
            codes = self.codes
            if self.styles and labels is not None:
                codes = self.styles.codes(self.engine, labels, codes)
            feeds[self.codes_spec.name] = codes
        if self.style_image_spec is not None:
            feeds[self.style_image_spec.name] = self.styles.image(self.engine.height, self.engine.width)
        return feeds

    def status(self) -> str:
        """The overlay's controls line ('' when there are none)."""
        parts = []
        if self.walk is not None:
            parts.append(f"{self.z_name} walk {self.walk.step}/{self.walk.frames}")
        if self.scalar is not None:
            parts.append(f"{self.scalar.name} {self.scalar.value:.2f}")
        if self.codes_spec is not None or self.style_image_spec is not None:
            parts.append(self.styles.describe() or "random style")
        return "  ".join(parts)
