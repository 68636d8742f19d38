"""Which engine paints: a bundled model name, a model directory or an exported artifact -> `Engine`.

A model directory (ours: config.json + model.safetensors) is exported once for the best CPU runtime
installed and cached; the cache is found again by the files' hash, so later runs open the engine
without importing PyTorch. The painter stage holds the engine, the VAE style vector and model
switching.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from .. import catalog
from ..engine import ArtifactError, Engine
from ..engine.contract import CACHE_ROOT, MANIFEST
from ..errors import ConfigError
from ..formats import CPU_BACKENDS
from ..utils.atomic import atomic_write_bytes
from ..utils.extras import has_module, require
from .pipeline import Packet

INDEX = CACHE_ROOT / "demo" / "index.json"
SHIPPED_ENGINE = "engine"  # a bundled model's exported ONNX engine, in the package beside its weights


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
    trained at); an engine paints its own fixed size, so another `size` is an error. `precision`
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
        if "labels" not in engine.input_names:
            raise ConfigError(
                f"{model} paints from {', '.join(engine.input_names)}, not a label map: the demo paints label "
                "maps; sample it with python -m rtgan.generate --model ... or Engine.run"
            )
        if size is not None and tuple(size) != (engine.height, engine.width):
            raise ConfigError(
                f"{model} is an engine exported at {engine.height}x{engine.width}: it paints that size only, "
                f"not {size[0]}x{size[1]} (--size is for model directories, which are exported at it)"
            )
        return engine
    size = tuple(size) if size is not None else ref.natural_size()
    if size is None:
        raise ConfigError(f"{model}: its config records no size to paint at; give --size HxW")
    target = cpu_backend() if backend == "auto" else backend
    shipped = ref.path / SHIPPED_ENGINE
    if ref.bundled and (shipped / MANIFEST).is_file() and target in ("openvino", "onnxruntime"):
        # the engine the package ships beside the weights: no export, and no PyTorch, needed
        engine = Engine.load(shipped, target, threads=threads, precision=precision)
        if (engine.height, engine.width) == size:
            return engine
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


class Painter:
    """The paint stage: labels -> painting with the current engine, a stable style, model switching.

    `next_model()` and `new_style()` are called from the UI thread and take effect on the next frame.
    `size` is the size model directories are exported at (default: the first model's own size); the
    models after the first are opened at the first one's size, since the canvas and window have it.
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
    ):
        self.models, self.backend, self.threads, self.log = list(models), backend, threads, log
        self.precision = precision
        self.current = 0
        self.engine = open_engine(self.models[0], backend, threads, log, size, precision)
        self.rng = np.random.default_rng(seed)
        self.z = self._sample_z()
        self._lock = threading.Lock()
        self._switch = self._restyle = False

    @property
    def name(self) -> str:
        return Path(self.models[self.current]).name

    def _sample_z(self):
        # one z per style: sampling per frame (the engine's default) would make a VAE model flicker
        if "z" not in self.engine.input_names:
            return None
        return self.rng.standard_normal((1, self.engine.manifest["z_dim"])).astype(np.float32)

    def next_model(self) -> None:
        with self._lock:
            self._switch = True

    def new_style(self) -> bool:
        """Ask for a new random style; False when the model has none (not a VAE)."""
        with self._lock:
            self._restyle = self.z is not None
            return self._restyle

    def _open_next(self, model: str) -> Engine:
        size = (self.engine.height, self.engine.width)
        engine = open_engine(model, self.backend, self.threads, self.log, size, self.precision)
        if not set(_label_ids(engine)) >= set(_label_ids(self.engine)):
            raise ConfigError(f"it takes other classes than {self.name}, which the canvas and segmenter use")
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
            self.engine, self.current = engine, nxt
            self.z = self._sample_z()
            self.log(f"painting with {self.name} ({self.engine.backend_name} {self.engine.precision})")
        elif restyle:
            self.z = self._sample_z()

    def __call__(self, packet: Packet) -> Packet:
        self._apply_requests()
        packet.painting = self.engine.run(packet.labels, z=self.z)
        packet.model = self.name
        return packet


def _label_ids(engine: Engine) -> list[int]:
    return list(engine.label_ids) if engine.label_ids is not None else list(range(engine.num_classes))
