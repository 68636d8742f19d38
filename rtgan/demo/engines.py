"""Which engine paints: a bundled model name, a model directory or an exported artifact -> `Engine`.

A model directory (ours: config.json + model.safetensors) is exported once for the best CPU runtime
installed and cached; the cache is found again by the files' hash, so later runs open the engine
without importing PyTorch. The painter stage holds the engine, the VAE style vector and model
switching.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from .. import catalog
from ..data import landscapes
from ..engine import ArtifactError, Engine
from ..engine.contract import CACHE_ROOT, MANIFEST
from ..engine.manifest import read_manifest
from ..errors import ConfigError
from ..formats import CPU_BACKENDS
from ..utils.atomic import atomic_write_bytes
from ..utils.extras import MissingDependency, has_module, require
from .controls import Controls, StyleBook
from .imaging import cv2
from .pipeline import Packet

INDEX = CACHE_ROOT / "demo" / "index.json"
SHIPPED_ENGINE = "engine"  # a bundled model's exported ONNX engine, in the package beside its weights
REALTIME_FPS = 30.0  # the demo paints a larger shipped size only where its engine holds this rate


def cpu_backend() -> str:
    """The CPU runtime that paints fastest inside the demo's pipeline: OpenVINO. ONNX Runtime is
    1.1x faster alone on the bundled model, but its spinning worker threads lose to the capture and
    display threads on two cores (both measured in BENCHMARKS.md)."""
    for name in CPU_BACKENDS:  # the formats table's order: openvino, then onnxruntime
        if has_module(name):
            return name
    raise ConfigError("no engine runtime installed: pip install 'rtgan[cpu]' (OpenVINO and ONNX Runtime)")


def _files_key(path: Path, backend: str, size: tuple[int, int]) -> str:
    h = hashlib.sha256(f"{backend} {size[0]}x{size[1]}".encode())
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def open_engine(
    model: str,
    backend: str = "auto",
    threads: int | None = None,
    log=print,
    size: tuple[int, int] | None = None,
    precision: str | None = "auto",
) -> Engine:
    """Open `model` as an engine, exporting (with a progress display) and caching it on first use.

    `size` (height, width) is the size a model directory is exported at (default: the size it was
    trained at; for a bundled model, the largest size it ships an engine for that paints at least
    REALTIME_FPS here, measured); an engine paints its own fixed size, so another `size` is an error. `precision`
    as `Engine.load`'s: "auto" runs an fp32 engine in bf16 where that measured faster and holds 45 dB.
    """
    ref = catalog.resolve(model)
    if ref.kind == "official":
        raise ConfigError(
            f"{model}: the demo paints with rtgan models and engines, not official checkpoints; "
            f"export it first (python -m rtgan.export --preset NAME --model {model} --out DIR) and give DIR"
        )
    if ref.kind == "engine":
        engine = Engine.load(ref.path, backend, threads=threads, precision=precision)
        if not ({"labels", "source"} & set(engine.input_names)) and engine.signature is None:
            raise ConfigError(
                f"{model} paints from {', '.join(engine.input_names)}, neither a label map nor an image, and "
                "declares no signature the demo could fill in; re-export it"
            )
        if size is not None and tuple(size) != (engine.height, engine.width):
            raise ConfigError(
                f"{model} is an engine exported at {engine.height}x{engine.width}: it paints that size only, "
                f"not {size[0]}x{size[1]} (--size is for model directories, which are exported at it)"
            )
        return engine
    natural = ref.natural_size()
    target = cpu_backend() if backend == "auto" else backend
    shipped = shipped_engines(ref.path) if ref.bundled and target in ("openvino", "onnxruntime") else {}
    if size is None and len(shipped) > 1 and natural in shipped:
        return _realtime_engine(shipped, natural, lambda d: Engine.load(d, target, threads=threads,
                                                                        precision=precision), log)  # fmt: skip
    size = tuple(size) if size is not None else natural
    if size is None:
        raise ConfigError(f"{model}: its config records no size to paint at; give --size HxW")
    if size in shipped:  # an engine the package ships beside the weights: no export, and no PyTorch, needed
        return Engine.load(shipped[size], target, threads=threads, precision=precision)
    key = _files_key(ref.path, target, size)
    index = json.loads(INDEX.read_text()) if INDEX.is_file() else {}
    cached = index.get(key)
    if cached and (Path(cached) / MANIFEST).is_file():
        # run on the runtime it was exported for: OpenVINO can also open an ONNX Runtime artifact, and
        # Engine's own "auto" order would prefer it
        try:
            return Engine.load(cached, target, threads=threads, precision=precision)
        except ArtifactError as e:  # a flipped bit or a half-deleted file must not fail every later run
            log(f"cached engine {cached} is corrupted ({e}); rebuilding")
            shutil.rmtree(cached, ignore_errors=True)
    artifact = _export(ref, target, size, key, log)
    index[key] = str(artifact)
    atomic_write_bytes(INDEX, json.dumps(index, indent=1).encode())
    return Engine.load(artifact, target, threads=threads, precision=precision)


def shipped_engines(path: Path) -> dict[tuple[int, int], Path]:
    """A bundled model's engines in the package, by (height, width): `engine` (the size it was
    trained at) and `engine-HxW` (other sizes, with the fused CPU kernels)."""
    found = {}
    for directory in sorted(path.glob(f"{SHIPPED_ENGINE}*")):
        if (directory / MANIFEST).is_file():
            with contextlib.suppress(ArtifactError, KeyError, TypeError):
                manifest = read_manifest(directory)
                found[(int(manifest["height"]), int(manifest["width"]))] = directory
    return found


def paint_rate(engine: Engine, repeats: int = 5) -> float:
    """Frames per second `engine` paints on this machine now: the median of `repeats` runs on a map
    of blocks of its classes (label boundaries cost the fused kernels more than flat regions)."""
    y, x = np.mgrid[: engine.height, : engine.width]
    if takes_image(engine):
        image = ((y // 40 + x // 56 + (x // 13) % 2) * 37 % 256).astype(np.uint8)
        run = lambda: engine.run(source=np.repeat(image[..., None], 3, 2))  # noqa: E731
    else:
        ids = np.asarray(_label_ids(engine), np.int32)
        labels = ids[(y // 40 + x // 56 + (x // 13) % 2) % len(ids)]
        run = lambda: engine.run(labels)  # noqa: E731
    for _ in range(2):  # warm-up: first runs allocate and tune
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1.0 / float(np.median(times))


def _realtime_engine(shipped: dict, natural: tuple[int, int], load, log) -> Engine:
    """The largest shipped engine that paints at least REALTIME_FPS here (measured, a second or
    two), else the one at the size the model was trained at."""
    for size in sorted(shipped, key=lambda s: s[0] * s[1], reverse=True):
        if size[0] * size[1] <= natural[0] * natural[1]:
            break
        engine = load(shipped[size])
        fps = paint_rate(engine)
        how = f"{engine.backend_name} {engine.precision}" + (", fused kernels" if engine.kernels else "")
        if fps >= REALTIME_FPS:
            log(f"painting {size[0]}x{size[1]}: the engine paints {fps:.0f} fps here ({how})")
            return engine
        log(f"{size[0]}x{size[1]} paints {fps:.0f} fps here ({how}), below {REALTIME_FPS:.0f}: painting "
            f"{natural[0]}x{natural[1]} (--size {size[0]}x{size[1]} paints it anyway)")  # fmt: skip
    return load(shipped[natural])


def _export(ref: catalog.ModelRef, backend: str, size: tuple[int, int], key: str, log) -> Path:
    """Export a model directory once, in a `python -m rtgan.export` process: the demo itself never
    imports PyTorch, model or export code (its progress display shows in this terminal)."""
    require("torch", "torch", f"exporting {ref.name} once for the demo", package="PyTorch")
    out = INDEX.parent / "engines" / f"{ref.path.name}-{size[0]}x{size[1]}-{backend}-{key[:12]}"
    log(f"first run of {ref.name} at {size[0]}x{size[1]}: exporting it for {backend} (cached for the next runs)")
    cmd = [sys.executable, "-m", "rtgan.export", "--model", str(ref.path), "--backend", backend,
           "--size", f"{size[0]}x{size[1]}", "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ConfigError(f"exporting {ref.name} failed: {last}")
    return out


def takes_image(engine: Engine) -> bool:
    """Whether the engine translates an image (pix2pix, CycleGAN, MUNIT) rather than painting labels."""
    return "source" in engine.input_names


def generative(engine: Engine) -> bool:
    """Whether the engine paints from latents alone (StyleGAN): neither a label map nor an image."""
    return not ({"labels", "source"} & set(engine.input_names))


class Painter:
    """The paint stage: labels or a frame -> painting with the current engine, a stable style, model
    switching.

    `next_model()` and `new_style()` are called from the UI thread and take effect on the next frame.
    `size` is the size model directories are exported at (default: the first model's own size); the
    models after the first are opened at the first one's size, since the canvas and window have it.
    Label-map models paint `packet.labels`, image-to-image ones `packet.image` (the camera frame);
    `to_labels` (a segmenter) and `to_image` (labels -> a picture) fill in the one a packet lacks,
    which happens for the frame in flight when `m` switches between the two kinds.
    """

    def __init__(
        self,
        models: list[str],
        backend: str = "auto",
        threads: int | None = None,
        log=print,
        seed=0,
        size: tuple[int, int] | None = None,
        precision: str | None = "auto",
        style_images: tuple[str, ...] = (),
        region_styles: tuple[str, ...] = (),
        walk_frames: int | None = None,
    ):
        self.models, self.backend, self.threads, self.log = list(models), backend, threads, log
        self.precision, self.seed, self.walk_frames = precision, seed, walk_frames
        self.current = 0
        self.engine = open_engine(self.models[0], backend, threads, log, size, precision)
        self.size = (self.engine.height, self.engine.width)  # the canvas: every model's painting has it
        # the label ids of the canvas and segmenter: the first model's, or the landscape classes when it
        # translates images or paints from latents alone (so label sources, the canvas and `m` still work)
        own_ids = takes_image(self.engine) or generative(self.engine)
        self.canvas_ids = list(landscapes.LABEL_IDS) if own_ids else _label_ids(self.engine)
        self.styles = StyleBook.from_paths(style_images, region_styles, self._class_id)
        self.rng = np.random.default_rng(seed)
        self.controls = Controls(self.engine, self.rng, seed, self.styles, walk_frames)
        self.to_labels = self.to_image = None
        self.canvas = None  # the paint canvas, for the noise brush (set by the demo: `attach`)
        self._noise = (None, None)  # (canvas noise_version, (map, z's)) last fed
        self._lock = threading.Lock()
        self._switch = self._restyle = False
        if self.styles and self.controls.codes_spec is None and self.controls.style_image_spec is None:
            log(f"{self.name} takes no style codes: --style-image / --region-style apply to SEAN models only")

    def _class_id(self, text: str) -> int:
        """A --region-style CLASS: an id, or a class name the first model's engine records."""
        text = text.strip()
        if text.lstrip("-").isdigit():
            return int(text)
        names = {str(v).lower(): int(k) for k, v in (self.engine.manifest.get("class_names") or {}).items()}
        if not names and set(_label_ids(self.engine)) <= set(landscapes.LABEL_IDS):
            names = {v: k for k, v in landscapes.ID.items()}
        if text.lower() not in names:
            raise ConfigError(f"--region-style: no class named {text!r}; give its id or one of {sorted(names)}")
        return names[text.lower()]

    def attach(self, canvas) -> None:
        """The paint canvas whose noise strokes feed a regions input (OASIS's local noise)."""
        self.canvas = canvas
        self._configure_noise()

    def _configure_noise(self) -> None:
        c = self.controls
        if self.canvas is not None and c.regions is not None and c.region_latents is not None:
            self.canvas.set_noise(c.regions.classes, c.region_latents.size)

    @property
    def z(self) -> np.ndarray | None:
        """The current style latent (1, size) of a label or image model (a VAE's, OASIS's z, MUNIT's)."""
        return self.controls.z

    @property
    def takes_noise(self) -> bool:
        """Whether the current model has a local-noise input the canvas's noise brush paints."""
        return self.canvas is not None and self.canvas.takes_noise and self.controls.regions is not None

    def nudge(self, direction: int) -> float | None:
        """`[` / `]`: the scalar control (truncation) one step down or up; None when the model has none."""
        scalar = self.controls.scalar
        return None if scalar is None else scalar.nudge(direction)

    def next_style_image(self) -> str | None:
        """`t`: the next whole-image style; None when none was given."""
        return self.styles.cycle()

    def status(self) -> str:
        return self.controls.status()

    @property
    def name(self) -> str:
        return Path(self.models[self.current]).name

    @property
    def takes_image(self) -> bool:
        return takes_image(self.engine)

    def next_model(self) -> None:
        with self._lock:
            self._switch = True

    @property
    def generative(self) -> bool:
        return generative(self.engine)

    def new_style(self) -> bool:
        """Ask for a new random style (z, style code, walk target, random codes); False when the model
        has none."""
        with self._lock:
            self._restyle = self.controls.has_style
            return self._restyle

    def _open_next(self, model: str) -> Engine:
        size = self.size
        try:
            engine = open_engine(model, self.backend, self.threads, self.log, size, self.precision)
        except (ConfigError, MissingDependency) as e:
            # a bundled model with no engine at the canvas size and no PyTorch to export one: it paints
            # at its own size, resized to the canvas, rather than leaving the cycle
            ref = catalog.resolve(model)
            own = ref.natural_size() if ref.bundled else None
            if own is None or own == size:
                raise
            engine = open_engine(model, self.backend, self.threads, self.log, own, self.precision)
            self.log(f"{Path(model).name} paints {own[0]}x{own[1]} here, shown at {size[0]}x{size[1]} ({e})")
        if not takes_image(engine) and not generative(engine) and not set(_label_ids(engine)) >= set(self.canvas_ids):
            raise ConfigError(f"it takes other classes than {self.models[0]}, which the canvas and segmenter use")
        return engine

    def _apply_requests(self) -> None:
        with self._lock:
            switch, restyle, self._switch, self._restyle = self._switch, self._restyle, False, False
        if switch and len(self.models) > 1:
            nxt = (self.current + 1) % len(self.models)
            try:
                engine = self._open_next(self.models[nxt])
            except Exception as e:  # noqa: BLE001 - whatever is wrong with an extra model (missing, corrupt,
                # another size, a bug) must not end the session and lose the drawing: keep the current engine
                problem = " ".join(str(e).split())  # one line, also for multi-line errors
                self.log(f"cannot switch to {self.models[nxt]}: {type(e).__name__}: {problem}; dropped from the cycle")
                self.models.pop(nxt)
                self.current -= nxt < self.current
                return
            try:
                controls = Controls(engine, self.rng, self.seed, self.styles, self.walk_frames)
            except ConfigError as e:
                self.log(f"cannot switch to {self.models[nxt]}: {e}; dropped from the cycle")
                self.models.pop(nxt)
                self.current -= nxt < self.current
                return
            self.engine, self.current, self.controls = engine, nxt, controls
            self._configure_noise()
            self.log(f"painting with {self.name} ({self.engine.backend_name} {self.engine.precision})")
        elif restyle:
            self.controls.new_style()

    def __call__(self, packet: Packet) -> Packet:
        self._apply_requests()
        if self.generative:  # one panel: the painting (the frame, if any, only paces it)
            packet.inputs = self.controls.inputs()
            painting = self.engine.run(**packet.inputs)
            own = (self.engine.height, self.engine.width)
            if own != self.size:
                painting = cv2().resize(painting, self.size[::-1], interpolation=cv2().INTER_LINEAR)
            packet.painting, packet.image, packet.labels = painting, None, None
        elif self.takes_image:
            packet.painting = self._translate(packet)
        else:
            packet.painting = self._paint(packet)
        painting = packet.painting
        if painting.ndim == 2 or painting.shape[-1] == 1:  # a grayscale generator (MNIST GANs): shown as RGB
            packet.painting = np.repeat(painting.reshape(*painting.shape[:2], 1), 3, axis=-1)
        packet.model = self.name
        return packet

    def _paint(self, packet: Packet) -> np.ndarray:
        if packet.labels is None:  # a frame segmented for an image model just before `m`
            if self.to_labels is None:
                raise ConfigError(f"{self.name} paints label maps and this frame has none (no segmenter)")
            packet.labels = self.to_labels(packet.image)
        own = (self.engine.height, self.engine.width)
        if own == self.size:
            packet.inputs = self.controls.inputs(packet.labels, self._noise_feed())
            return self.engine.run(packet.labels, **packet.inputs)
        # a model painting at its own size (see _open_next); the canvas's noise map has the canvas size
        cv = cv2()
        rows = np.arange(own[0]) * packet.labels.shape[0] // own[0]  # nearest: ids are not averaged
        cols = np.arange(own[1]) * packet.labels.shape[1] // own[1]
        labels = packet.labels[np.ix_(rows, cols)]
        packet.inputs = self.controls.inputs(labels)
        painting = self.engine.run(labels, **packet.inputs)
        return cv.resize(painting, self.size[::-1], interpolation=cv.INTER_LINEAR)

    def _noise_feed(self):
        """The canvas's (noise map, z's) for a regions input, copied only when a stroke changed them."""
        c = self.controls
        canvas = self.canvas
        if canvas is None or c.regions is None or not c.noise_fits(canvas.noise_classes, canvas.noise_dim):
            return None
        version = self.canvas.noise_version
        if self._noise[0] != version:
            self._noise = (version, self.canvas.noise_snapshot())
        return self._noise[1]

    def _translate(self, packet: Packet) -> np.ndarray:
        if packet.image is None:
            if self.to_image is None:
                raise ConfigError(f"{self.name} translates images and this frame has none")
            packet.image = self.to_image(packet.labels)
        own = (self.engine.height, self.engine.width)
        image = packet.image
        if own != image.shape[:2]:
            image = cv2().resize(image, own[::-1], interpolation=cv2().INTER_AREA)
        packet.inputs = self.controls.inputs()
        painting = self.engine.run(source=image, **packet.inputs)
        if own != self.size:
            painting = cv2().resize(painting, self.size[::-1], interpolation=cv2().INTER_LINEAR)
        return painting


def _label_ids(engine: Engine) -> list[int]:
    return list(engine.label_ids) if engine.label_ids is not None else list(range(engine.num_classes))
