"""`python -m rtgan.serve run ARTIFACT`: one engine behind Triton's HTTP and gRPC endpoints, on PyTriton.

PyTriton starts a tritonserver process (its child) whose Python backend hands each dynamic batch to
the infer function here, which calls `Engine.run` on it. The served tensors carry the artifact's own
names (labels, z, source, ... in; image out), as `python -m rtgan.serve repository` writes them, so
one client talks to both. Health and readiness are Triton's (/v2/health/live, /v2/health/ready).
SIGTERM or SIGINT stops it: tritonserver lets in-flight requests finish for --exit-timeout seconds.

nvidia-pytriton 0.7 needs numpy < 2 (with numpy 2 its server answers with empty tensors and logs
nothing), so this runs in an environment of its own; this module refuses numpy 2 before importing it.
"""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
import threading
import time
from pathlib import Path

from ..errors import ConfigError
from ..utils.extras import MissingDependency
from .errors import ServerError

SETUP = 'python3 -m venv .venv-serve && . .venv-serve/bin/activate && pip install -e ".[serve-pytriton]"'


def check_numpy() -> None:
    """Refuse numpy >= 2: PyTriton 0.7's data path silently returns empty tensors under it."""
    import numpy

    if int(numpy.__version__.split(".")[0]) >= 2:
        raise ConfigError(
            f"python -m rtgan.serve run needs numpy < 2, and this environment has numpy {numpy.__version__} "
            "(PyTriton 0.7 answers with empty tensors under numpy 2). Run it from an environment of its own, "
            f"made in the rtgan checkout with: {SETUP}"
        )


def _import_pytriton():
    try:
        from pytriton.decorators import batch
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
        from pytriton.triton import Triton, TritonConfig
    except ImportError as e:
        raise MissingDependency(
            f"python -m rtgan.serve run needs nvidia-pytriton ({e}); set up its environment with: {SETUP}"
        ) from None
    return batch, DynamicBatcher, ModelConfig, Tensor, Triton, TritonConfig


def _libpython_visible() -> None:
    """Let tritonserver's Python backend stub load *this* interpreter's libpython.

    The stub links libpython3.X by soname; a Python that keeps its shared library outside the
    linker's path (pyenv, conda, uv) would otherwise get the system's libpython3.X under this
    interpreter's standard library, and fail in obscure ways (e.g. AttributeError in multiprocessing).
    """
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME") or sysconfig.get_config_var("LDLIBRARY")
    if libdir and soname and (Path(libdir) / soname).is_file():
        paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
        if libdir not in paths:
            os.environ["LD_LIBRARY_PATH"] = ":".join([libdir, *paths])
    elif not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        print(
            "rtgan.serve: warning: this Python has no shared libpython; PyTriton's backend stub will use the "
            "system's, which must be the same version",
            file=sys.stderr,
        )


def resolve_artifact(text: str) -> Path:
    """An artifact directory, or a bundled model's name (its shipped engine)."""
    path = Path(text)
    if path.is_dir():
        return path
    from .. import weights

    if text in weights.BUNDLED:
        return weights.path(text) / "engine"
    raise ConfigError(f"{text}: not an artifact directory, nor a bundled model ({', '.join(weights.BUNDLED)})")


def serve(args) -> int:
    check_numpy()
    batch, DynamicBatcher, ModelConfig, Tensor, Triton, TritonConfig = _import_pytriton()
    import numpy as np

    from ..engine import Engine
    from ..engine.manifest import read_manifest
    from .repository import default_name, preferred_batch_sizes

    directory = resolve_artifact(args.artifact)
    manifest = read_manifest(directory)
    name = args.name or default_name(directory, manifest)
    max_batch = manifest["max_batch"] if args.max_batch_size is None else args.max_batch_size
    if max_batch < 1:
        raise ConfigError(f"--max-batch-size must be 1 or more, got {max_batch}")
    if manifest["backend"].startswith("tensorrt") and max_batch > manifest["max_batch"]:
        raise ConfigError(f"{directory}: the plan takes batches of at most {manifest['max_batch']}")
    engine = Engine.load(directory, backend=args.backend, threads=args.threads, seed=args.seed)
    names = [i["name"] for i in manifest["inputs"]]

    @batch
    def infer(**inputs):
        # Engine.run checks the batch (ids, shapes, finite z) and raises rtgan's InputError, which PyTriton
        # returns to the client as the request's error
        return {"image": engine.run(**{n: inputs[n] for n in names})}

    inputs = [
        Tensor(name=i["name"], dtype=np.dtype(i["dtype"]), shape=tuple(i["shape"][1:])) for i in manifest["inputs"]
    ]
    output = manifest["output"]
    outputs = [Tensor(name=output["name"], dtype=np.uint8, shape=tuple(output["shape"][1:]))]
    batcher = DynamicBatcher(max_queue_delay_microseconds=args.queue_delay_us,
                             preferred_batch_size=preferred_batch_sizes(max_batch))  # fmt: skip
    _libpython_visible()
    config = TritonConfig(
        http_address=args.host, http_port=args.http_port, grpc_address=args.host, grpc_port=args.grpc_port,
        metrics_address=args.host, metrics_port=args.metrics_port, exit_timeout_secs=args.exit_timeout,
    )  # fmt: skip
    stop = threading.Event()
    # handlers before the server starts: a SIGTERM during start-up must stop it too, not kill only the parent
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    triton = Triton(config=config)
    try:
        triton.bind(model_name=name, infer_func=infer, inputs=inputs, outputs=outputs,
                    config=ModelConfig(max_batch_size=max_batch, batcher=batcher), strict=True)  # fmt: skip
        started = time.perf_counter()
        triton.run()
        print(
            f"rtgan.serve: {name} ({engine.backend_name}, {manifest['height']}x{manifest['width']}, inputs "
            f"{', '.join(names)}) ready in {time.perf_counter() - started:.1f} s: gRPC {args.host}:{args.grpc_port}, "
            f"HTTP {args.host}:{args.http_port}; SIGTERM or Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(1.0):
            if not triton.is_alive():
                raise ServerError("tritonserver exited; its log above says why")
    finally:
        started = time.perf_counter()
        triton.stop()
        print(f"rtgan.serve: stopped in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return 0
