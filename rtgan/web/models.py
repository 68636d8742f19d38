"""The models a studio serves: each engine opened once, shared by every connection and request.

An engine runs one painting at a time behind its own lock (OpenVINO's infer request is not
re-entrant; on a few cores two paintings at once would only slow each other down anyway).
A style is a seed: z = temperature * N(0, I) drawn by `np.random.default_rng(seed)`, so the same
seed paints the same style in the page, over REST and in a user's own `Engine.run` call.
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


class ServedModel:
    """One engine with what the page and the protocol need to know about it (`info()`)."""

    def __init__(self, name: str, engine: Engine):
        self.name, self.engine = name, engine
        self.height, self.width = engine.height, engine.width
        self.takes_image = takes_image(engine)
        self.lock = threading.Lock()
        manifest = engine.manifest
        if self.takes_image:
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
        # the style input: a VAE's z, or an image-to-image model's style code (MUNIT)
        self.style = next((n for n in ("z", "style_code") if n in engine.input_names), None)
        if self.style == "z":
            self.style_size = int(manifest["z_dim"])
        elif self.style == "style_code":
            self.style_size = int(engine.signature.input("style_code").size)
        else:
            self.style_size = 0
        self.style_image = self.style == "z" and manifest.get("style_encoder") is not None

    @property
    def background(self) -> int | None:
        """The id the eraser paints and a cleared canvas holds: the model's first class (sky for the
        landscape models, whose class order starts with it)."""
        return self.ids[0] if self.ids else None

    def z_for(self, seed: int, temperature: float = 1.0) -> np.ndarray | None:
        return style_z(seed, self.style_size, temperature) if self.style else None

    def paint(self, labels: np.ndarray | None = None, image: np.ndarray | None = None, z=None):
        """(painting, engine milliseconds): the time inside `Engine.run`, not the wait for the lock."""
        with self.lock:
            start = time.perf_counter()
            if self.takes_image:
                painting = self.engine.run(source=image, **({"style_code": z} if z is not None else {}))
            else:
                painting = self.engine.run(labels, z=z)
            ms = (time.perf_counter() - start) * 1000
        if painting.shape[-1] == 1:  # a grayscale generator: the page and PNGs show it as RGB
            painting = np.repeat(painting, 3, axis=-1)
        return painting, ms

    def encode_style(self, image: np.ndarray) -> np.ndarray:
        if not self.style_image:
            raise InputError(f"{self.name} takes no style image: {_style_hint(self)}")
        with self.lock:  # the encoder session is opened on first use: once, not per connection
            return self.engine.encode_style(image).astype(np.float32)

    def info(self) -> dict:
        return {
            "name": self.name,
            "height": self.height,
            "width": self.width,
            "input": "image" if self.takes_image else "labels",
            "classes": [{"id": i, "name": self.names[i], "color": list(self.colours[i])} for i in self.ids],
            "background": self.background,
            "bytes_per_id": self.bytes_per_id,
            "style": self.style is not None,
            "style_image": self.style_image,
            "backend": self.engine.backend_name,
            "precision": self.engine.precision,
        }


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
