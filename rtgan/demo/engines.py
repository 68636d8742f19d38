"""Which engine paints: a bundled model name, a model directory or an exported artifact -> `Engine`.

A model directory (ours: config.json + model.safetensors) is exported once for the best CPU runtime
installed and cached; the cache is found again by the files' hash, so later runs open the engine
without importing PyTorch. The painter stage holds the engine, the VAE style vector and model
switching.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from pathlib import Path

import numpy as np

from .. import weights
from ..engine import Engine
from ..engine.contract import CACHE_ROOT, MANIFEST
from ..errors import ConfigError
from ..utils.atomic import atomic_write_bytes
from .pipeline import Packet

INDEX = CACHE_ROOT / "demo" / "index.json"


def resolve(model: str) -> Path:
    """A bundled model's name or a directory -> the directory, with a clear error when it is neither."""
    if model in weights.BUNDLED:
        path = weights.path(model)
        if not (path / "config.json").is_file():
            raise ConfigError(f"bundled model {model!r} is not in this install ({path} has no config.json)")
        return path
    path = Path(model)
    if not path.is_dir():
        raise ConfigError(
            f"{model!r} is neither a bundled model ({', '.join(weights.BUNDLED)}) nor a model/engine directory"
        )
    if not ((path / MANIFEST).is_file() or (path / "config.json").is_file()):
        raise ConfigError(f"{path}: neither an exported engine (manifest.json) nor an rtgan model (config.json)")
    return path


def cpu_backend() -> str:
    """The CPU runtime that paints fastest inside the demo's pipeline: OpenVINO. ONNX Runtime is
    1.1x faster alone on the bundled model, but its spinning worker threads lose to the capture and
    display threads on two cores (both measured in BENCHMARKS.md)."""
    for name, module in (("openvino", "openvino"), ("onnxruntime", "onnxruntime")):
        if importlib.util.find_spec(module) is not None:
            return name
    raise ConfigError("no engine runtime installed: pip install 'rtgan[cpu]' (OpenVINO and ONNX Runtime)")


def _files_key(path: Path, backend: str) -> str:
    h = hashlib.sha256(backend.encode())
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def open_engine(model: str, backend: str = "auto", threads: int | None = None, log=print) -> Engine:
    """Open `model` as an engine, exporting (with a progress display) and caching it on first use."""
    path = resolve(model)
    if (path / MANIFEST).is_file():
        return Engine.load(path, backend, threads=threads)
    target = cpu_backend() if backend == "auto" else backend
    key = _files_key(path, target)
    index = json.loads(INDEX.read_text()) if INDEX.is_file() else {}
    cached = index.get(key)
    # run on the runtime it was exported for: OpenVINO can also open an ONNX Runtime artifact, and
    # Engine's own "auto" order would prefer it
    if cached and (Path(cached) / MANIFEST).is_file():
        return Engine.load(cached, target, threads=threads)
    if importlib.util.find_spec("torch") is None:
        raise ConfigError(f"{path} must be exported once, which needs PyTorch: pip install 'rtgan[torch]'")
    from .. import models
    from ..export import export

    log(f"first run of {model}: exporting it for {target} (cached for the next runs)")
    net = models.load(path)
    c = net.config
    height = c.crop_size
    width = round(c.crop_size * c.aspect_ratio)
    artifact = export(net, height=height, width=width, backend=target, progress=True)
    index[key] = str(artifact)
    atomic_write_bytes(INDEX, json.dumps(index, indent=1).encode())
    return Engine.load(artifact, target, threads=threads)


class Painter:
    """The paint stage: labels -> painting with the current engine, a stable style, model switching.

    `next_model()` and `new_style()` are called from the UI thread and take effect on the next frame.
    """

    def __init__(self, models: list[str], backend: str = "auto", threads: int | None = None, log=print, seed=0):
        self.models, self.backend, self.threads, self.log = list(models), backend, threads, log
        self.current = 0
        self.engine = open_engine(self.models[0], backend, threads, log)
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

    def _apply_requests(self) -> None:
        with self._lock:
            switch, restyle, self._switch, self._restyle = self._switch, self._restyle, False, False
        if switch and len(self.models) > 1:
            nxt = (self.current + 1) % len(self.models)
            engine = open_engine(self.models[nxt], self.backend, self.threads, self.log)
            if (engine.height, engine.width) != (self.engine.height, self.engine.width):
                self.log(f"{self.models[nxt]} paints {engine.height}x{engine.width}, not this demo's size; skipped")
                self.models.pop(nxt)
                self.current -= nxt < self.current
                return
            self.engine, self.current = engine, nxt
            self.z = self._sample_z()
            self.log(f"painting with {self.name} ({self.engine.backend_name})")
        elif restyle:
            self.z = self._sample_z()

    def __call__(self, packet: Packet) -> Packet:
        self._apply_requests()
        packet.painting = self.engine.run(packet.labels, z=self.z)
        packet.model = self.name
        return packet
