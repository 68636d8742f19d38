"""The models a studio serves: each engine opened once, shared by every connection and request.

An engine runs one painting at a time behind its own lock (OpenVINO's infer request is not
re-entrant; on a few cores two paintings at once would only slow each other down anyway).
A style is a seed: z = temperature * N(0, I) drawn by `np.random.default_rng(seed)`, so the same
seed paints the same style in the page, over REST and in a user's own `Engine.run` call.

Every other input an engine declares is fixed per connection too, never drawn afresh per frame
(a painting changes only when the user changes something), each from the seed as `Controls` says:
per-class style codes (SEAN's `styles`) U(-1, 1) from `default_rng(seed)`; the k-th other latent
input (SEAN's and StyleGAN's `noise`) N(0, I) from `default_rng([seed, k + 1])`; a scalar
(StyleGAN's `truncation`) its declared default until set; a noise-region map (OASIS's `regions`
input) all 0, each region's z (the `latents` input's row r - 1) drawn from its own seed.
Three kinds of model: label maps in ("labels"), a picture in ("image"), nothing spatial in
("latent": StyleGAN; the page shows the painting alone).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .. import weights
from ..data import landscapes
from ..demo.engines import open_engine, takes_image
from ..demo.imaging import palette_lut
from ..engine import Engine
from ..errors import ConfigError, InputError, RtganError
from ..scenes import CITYSCAPES, CITYSCAPES_PALETTE
from ..utils.names import lookup

MAX_ID = 65535  # frames carry ids as 1 or 2 bytes each
CITYSCAPES_CLASSES = 35  # Cityscapes labelIds 0..34: SPADE's and ASAPNet's label_nc for Cityscapes


def style_z(seed: int, size: int, temperature: float = 1.0) -> np.ndarray:
    """The style of `seed`: (1, size) float32 z = temperature * N(0, I)."""
    return (np.random.default_rng(seed).standard_normal((1, size)) * temperature).astype(np.float32)


def style_codes(seed: int, classes: int, size: int) -> np.ndarray:
    """Per-class style codes of `seed` (SEAN's `styles` input): (classes, size) float32 U(-1, 1), as the
    engine samples them."""
    return np.random.default_rng(seed).uniform(-1, 1, (classes, size)).astype(np.float32)


def fixed_latent(seed: int, k: int, size: int) -> np.ndarray:
    """The k-th latent input besides z (noise) of `seed`: (size,) float32 N(0, I) from default_rng([seed, k + 1])."""
    return np.random.default_rng([seed, k + 1]).standard_normal(size).astype(np.float32)


def walk_z(seed_from: int, seed_to: int, t: float, size: int) -> np.ndarray:
    """The latent walk: (1, size) float32 z on the great circle from `style_z(seed_from)` (t = 0) to
    `style_z(seed_to)` (t = 1), its norm interpolated linearly (spherical interpolation keeps z a
    typical N(0, I) draw, where a straight line would pass through low-norm, washed-out styles)."""
    a, b = (style_z(s, size)[0].astype(np.float64) for s in (seed_from, seed_to))
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    ua, ub = a / na, b / nb
    omega = float(np.arccos(np.clip(ua @ ub, -1.0, 1.0)))
    if omega < 1e-6:
        u = ua
    else:
        u = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)
    return (u * ((1 - t) * na + t * nb))[None].astype(np.float32)


class ServedModel:
    """One engine with what the page and the protocol need to know about it (`info()`)."""

    def __init__(self, name: str, engine: Engine):
        self.name, self.engine = name, engine
        self.height, self.width = engine.height, engine.width
        self.takes_image = takes_image(engine)
        self.lock = threading.Lock()
        manifest = engine.manifest
        # "labels" (a label map in), "image" (a picture in), "latent" (neither: StyleGAN, the painting alone)
        self.input = "image" if self.takes_image else "labels" if "labels" in engine.input_names else "latent"
        specs = list(engine.signature.inputs) if engine.signature is not None else []
        self.specs = {i.name: i for i in specs}
        self.scalars = [i for i in specs if i.kind == "scalar"]  # StyleGAN's truncation: a slider each
        self.regions = next((i for i in specs if i.kind == "regions"), None)  # OASIS's noise_regions
        self.region_latents = next((i for i in specs if i.kind == "latents"), None)  # its z_regions
        if (self.regions is None) != (self.region_latents is None):
            self.regions = self.region_latents = None  # half a local-noise pair: nothing the brush can drive
        styles = next((i for i in specs if i.kind == "styles"), None)  # SEAN's per-class codes
        if self.takes_image or self.input == "latent":
            self.ids: list[int] = []
        elif engine.label_ids is not None:
            self.ids = [int(i) for i in engine.label_ids]
        else:
            self.ids = list(range(int(engine.num_classes)))
        if self.ids and max(self.ids) > MAX_ID:
            raise ConfigError(f"{name}: label id {max(self.ids)} does not fit the studio's 16-bit frames")
        self.allowed = np.zeros(MAX_ID + 1, bool)  # id -> whether this model takes it: one lookup per frame
        self.allowed[self.ids] = True
        self.bytes_per_id = 2 if self.ids and max(self.ids) > 255 else 1
        self.names, self.colours = _classes(self.ids, manifest)
        # the style input: a VAE's (or OASIS's, StyleGAN's) z, an image-to-image model's style code
        # (MUNIT), or per-class style codes (SEAN)
        self.style = next((n for n in ("z", "style_code") if n in engine.input_names), None)
        self.styles = styles if self.style is None else None
        if self.style is not None:
            spec = self.specs.get(self.style)
            self.style_size = int(spec.size if spec is not None and spec.size else manifest["z_dim"])
        elif self.styles is not None:
            self.style, self.style_size = self.styles.name, int(self.styles.size)
        else:
            self.style_size = 0
        has_encoder = manifest.get("style_encoder") is not None
        self.style_image = (self.style == "z" or self.styles is not None) and has_encoder
        self.region_styles = self.styles is not None and has_encoder and bool(self.ids)  # a picture per class
        # the other latent inputs (noise): fixed per connection from the seed
        self.fixed = [i for i in specs if i.kind == "latent" and i.name not in ("z", self.style)]

    @property
    def background(self) -> int | None:
        """The id the eraser paints and a cleared canvas holds: the model's first class (sky for the
        landscape models, whose class order starts with it)."""
        return self.ids[0] if self.ids else None

    def z_for(self, seed: int, temperature: float = 1.0) -> np.ndarray | None:
        """The style input drawn from `seed`: z (1, size), or SEAN's codes (classes, size); None without one."""
        if self.styles is not None:
            return style_codes(seed, int(self.styles.classes), self.style_size)
        return style_z(seed, self.style_size, temperature) if self.style else None

    def controls(self, seed: int, temperature: float = 1.0) -> "Controls":
        return Controls(self, seed, temperature)

    def paint(self, labels: np.ndarray | None = None, image: np.ndarray | None = None, z=None, inputs=None):
        """(painting, engine milliseconds): the time inside `Engine.run`, not the wait for the lock.
        `z`: the style input (z, MUNIT's style code or SEAN's codes); `inputs`: the other declared ones."""
        inputs = dict(inputs or {})
        with self.lock:
            start = time.perf_counter()
            if self.takes_image:
                painting = self.engine.run(source=image, **({"style_code": z} if z is not None else {}), **inputs)
            elif self.input == "latent":
                if z is not None:
                    inputs[self.style] = z[0] if z.ndim == 2 else z  # one sample: one image
                painting = self.engine.run(**inputs)
            elif self.styles is not None:
                painting = self.engine.run(labels, **{self.style: z} if z is not None else {}, **inputs)
            else:
                painting = self.engine.run(labels, z=z, **inputs)
            ms = (time.perf_counter() - start) * 1000
        if painting.shape[-1] == 1:  # a grayscale generator: the page and PNGs show it as RGB
            painting = np.repeat(painting, 3, axis=-1)
        return painting, ms

    def encode_style(self, image: np.ndarray) -> np.ndarray:
        if not self.style_image or self.styles is not None:
            raise InputError(f"{self.name} takes no style image: {_style_hint(self)}")
        with self.lock:  # the encoder session is opened on first use: once, not per connection
            return self.engine.encode_style(image).astype(np.float32)

    def encode_codes(self, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """SEAN: a picture at the model's size, pooled over the regions of `labels` (H, W) -> (classes, size) codes."""
        if not self.style_image or self.styles is None:
            raise InputError(f"{self.name} takes no per-class style picture: {_style_hint(self)}")
        with self.lock:
            codes = self.engine.encode_style(image, labels=np.ascontiguousarray(labels, np.int32))
        codes = np.asarray(codes, np.float32)
        return codes[0] if codes.ndim == 3 else codes

    def info(self) -> dict:
        return {
            "name": self.name,
            "height": self.height,
            "width": self.width,
            "input": self.input,
            "classes": [{"id": i, "name": self.names[i], "color": list(self.colours[i])} for i in self.ids],
            "background": self.background,
            "bytes_per_id": self.bytes_per_id,
            "style": self.style is not None,
            "style_image": self.style_image,
            "region_styles": self.region_styles,
            "arch": self.engine.manifest.get("arch"),
            "scalars": [
                {
                    "name": i.name,
                    "default": _default(i),
                    "low": getattr(i, "low", None),
                    "high": getattr(i, "high", None),
                }
                for i in self.scalars
            ],
            "noise_regions": int(self.regions.classes) if self.regions is not None else None,
            "backend": self.engine.backend_name,
            "precision": self.engine.precision,
        }


def _default(spec) -> float:
    default = getattr(spec, "default", None)
    if default is not None:
        return float(default)
    low, high = getattr(spec, "low", None), getattr(spec, "high", None)
    return float(low + high) / 2 if low is not None and high is not None else 0.0


class Controls:
    """What one connection (or request) paints a model with besides the label map: the style input, the
    fixed latent inputs (noise), the scalars, and the local-noise regions with each region's z. All of
    it drawn from `seed` (module docstring); `inputs()` are the keyword arguments of `Engine.run`."""

    def __init__(self, model: ServedModel, seed: int, temperature: float = 1.0):
        self.model = model
        self.scalars = {i.name: _default(i) for i in model.scalars}
        self.regions = None  # (H, W) ids in [0, M): all 0 until a local-noise stroke
        self.region_seeds: list[int | None] = []
        self.z_regions = None
        if model.regions is not None:
            m, size = int(model.regions.classes), int(model.region_latents.size)
            self.regions = np.zeros((model.height, model.width), np.int32)
            self.z_regions = np.zeros((m - 1, size), np.float32)  # each row drawn by the stroke that takes it
            self.region_seeds = [None] * (m - 1)
        self.reseed(seed, temperature)

    def reseed(self, seed: int, temperature: float = 1.0) -> None:
        """A new seed: the style input and the fixed latent inputs drawn from it (scalars and regions kept)."""
        self.seed = seed
        self.z = self.model.z_for(seed, temperature)
        self.fixed = {i.name: fixed_latent(seed, k, int(i.size)) for k, i in enumerate(self.model.fixed)}

    def set_region(self, region: int, seed: int) -> None:
        """Region `region` (1..M-1) paints with z = style_z(seed) from now on."""
        self.z_regions = self.z_regions.copy()  # a painting under way keeps the rows it was given
        self.z_regions[region - 1] = style_z(seed, self.z_regions.shape[1])[0]
        self.region_seeds[region - 1] = seed

    def set_scalar(self, name: str, value) -> float:
        spec = next((i for i in self.model.scalars if i.name == name), None)
        if spec is None:
            have = ", ".join(i.name for i in self.model.scalars) or "none"
            raise InputError(f"{self.model.name} has no scalar input {name!r} (its scalars: {have})")
        low, high = getattr(spec, "low", None), getattr(spec, "high", None)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
            raise InputError(f"{name} is a finite number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise InputError(f"{name} must be in [{low}, {high}], got {value}")
        self.scalars[name] = float(value)
        return float(value)

    def inputs(self) -> dict:
        """The declared inputs besides the label map and the style input, by name."""
        out: dict = dict(self.fixed)
        out.update({k: np.float32(v) for k, v in self.scalars.items()})
        if self.regions is not None:
            out[self.model.regions.name] = self.regions
            out[self.model.region_latents.name] = self.z_regions
        return out


def _style_hint(model: ServedModel) -> str:
    if model.style == "style_code":
        return "its style code is sampled from a seed (new random style)"
    return "it has no style input" if model.style is None else "its engine was exported without a style encoder"


def _classes(ids: list[int], manifest: dict) -> tuple[dict[int, str], dict[int, tuple[int, int, int]]]:
    """Class names and colours: GauGAN's for the landscape ids, Cityscapes' for a 35-class model on
    Cityscapes labelIds, else the artifact's names and the demo's fixed pseudo-random colours."""
    if not ids:
        return {}, {}
    names = {int(k): v for k, v in (manifest.get("class_names") or {}).items()}
    if set(ids) <= set(landscapes.LABEL_IDS):
        palette, known = landscapes.PALETTE, landscapes.NAMES
    elif manifest.get("label_ids") is None and len(ids) == CITYSCAPES_CLASSES:
        palette, known = CITYSCAPES_PALETTE, {i: n for n, (i, _) in CITYSCAPES.items()}
    else:
        palette, known = {}, {}
    lut = palette_lut(palette, max(256, max(ids) + 1))
    colours = {i: tuple(int(c) for c in lut[i]) for i in ids}
    return {i: names.get(i) or known.get(i) or f"class {i}" for i in ids}, colours


class Studio:
    """The served models by name (the first is the default), and what every connection shares."""

    def __init__(self, models: dict[str, ServedModel], on_frame=None, max_message: int = 16 * 2**20):
        if not models:
            raise ConfigError("the studio needs at least one model")
        self.models, self.on_frame, self.max_message = models, on_frame, max_message
        self.default = next(iter(models))
        self._connections = 0
        self._lock = threading.Lock()

    def get(self, name: str | None) -> ServedModel:
        return self.models[lookup(name, {n: n for n in self.models}, "model")] if name else self.models[self.default]

    def next_connection(self) -> int:
        with self._lock:
            self._connections += 1
            return self._connections


def open_models(
    models: Sequence[str] | Mapping[str, Engine],
    backend: str = "auto",
    threads: int | None = None,
    size: tuple[int, int] | None = None,
    precision: str | None = "auto",
    log=print,
) -> dict[str, ServedModel]:
    """Open each model once (`open_engine`: bundled names, model or engine directories); a model
    that cannot open is left out with a log line, unless it is the only one."""
    if isinstance(models, Mapping):
        return {name: ServedModel(name, engine) for name, engine in models.items()}
    served, errors = {}, []
    for model in models:
        name = model if model in weights.BUNDLED else _name(Path(model).resolve())
        name = next(n for n in (name, *(f"{name}-{k}" for k in range(2, len(models) + 2))) if n not in served)
        try:
            engine = open_engine(model, backend, threads, log, size, precision)
            served[name] = ServedModel(name, engine)
        except RtganError as e:
            errors.append(e)
            log(f"cannot serve {model}: {' '.join(str(e).split())}; left out")
    if not served:
        raise errors[0] if len(errors) == 1 else ConfigError(f"none of the models opened ({len(errors)} errors above)")
    return served


def _name(path: Path) -> str:
    """A directory's name in the model list; a shipped engine (`.../landscape-asapnet/engine-512x512`)
    is named with its model's (`landscape-asapnet-engine-512x512`)."""
    return f"{path.parent.name}-{path.name}" if path.name.startswith("engine") else path.name
