"""ONNX -> TensorRT / TensorRT-RTX plan.

TensorRT-RTX builds with no GPU at all for a named target (`compute_capability="SM86"`); datacenter
TensorRT builds only on the GPU it targets. Precision lives in the ONNX graph: both libraries are
strongly typed here, so there are no FP16/INT8 builder flags to set.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np

from rtgan.engine.tensorrt import (
    FLAVORS,
    BackendUnavailable,
    device_compute_capability,
    import_tensorrt,
    make_logger,
    probe_cuda,
)
from rtgan.errors import ConfigError, RtganError
from rtgan.utils.atomic import atomic_write_bytes


class BuildError(RtganError):
    """TensorRT could not parse the ONNX graph or build a plan from it."""


def build_plan(
    onnx_path: str | Path,
    plan_path: str | Path,
    *,
    flavor: str = "tensorrt-rtx",
    compute_capability: str | None = None,
    workspace_gib: float = 4.0,
    min_batch: int = 1,
    opt_batch: int = 1,
    max_batch: int = 4,
    progress: bool = True,
    plugins: bool = False,
) -> dict:
    """Build a plan for batch sizes [min_batch, max_batch] and write it atomically; returns its metadata.

    `plugins`: the ONNX has rtgan plugin nodes; their AOT kernels are compiled for the GPU and embedded.
    """
    if not 1 <= min_batch <= opt_batch <= max_batch:
        raise ConfigError(f"need 1 <= min_batch <= opt_batch <= max_batch, got {min_batch}, {opt_batch}, {max_batch}")
    trt = import_tensorrt(flavor)
    # Resolved before any TensorRT object exists, since finding the target may have to probe the driver.
    target, target_name = _target(trt, flavor, compute_capability)
    if plugins:
        if flavor != "tensorrt":
            raise ConfigError("rtgan's plugins need TensorRT's tensorrt.plugin; TensorRT-RTX cannot load them")
        from ..kernels import trt_plugins

        trt_plugins.register(int(target_name.removeprefix("SM")))

    logger = make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    # The path lets the parser find weights stored beside a large (> 2 GB) model.
    if not parser.parse(Path(onnx_path).read_bytes(), str(onnx_path)):
        errors = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BuildError(f"{flavor} could not parse {onnx_path}:\n" + "\n".join(errors))
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    outputs = [network.get_output(i) for i in range(network.num_outputs)]

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if target is not None:
        config.num_compute_capabilities = 1
        config.set_compute_capability(target, 0)
    # TensorRT-RTX supports CUDA stream capture (which the runtime uses) only for engines that never
    # allocate memory while running; the build fails if the graph needs that (data-dependent shapes).
    if flavor == "tensorrt-rtx" and hasattr(trt.BuilderFlag, "REQUIRE_USER_ALLOCATION"):
        config.set_flag(trt.BuilderFlag.REQUIRE_USER_ALLOCATION)
    profile, dynamic = builder.create_optimization_profile(), False
    for tensor in inputs:
        shape = tuple(tensor.shape)
        if -1 in shape[1:]:
            raise ConfigError(f"input {tensor.name!r} has shape {shape}: only the batch dim may be dynamic")
        if shape and shape[0] == -1:
            rest = shape[1:]
            profile.set_shape(tensor.name, (min_batch, *rest), (opt_batch, *rest), (max_batch, *rest))
            dynamic = True
    if dynamic:
        config.add_optimization_profile(profile)
    if progress:
        monitor = _progress_monitor(trt, flavor)
        if monitor is not None:
            config.progress_monitor = monitor

    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if plan is None:
        raise BuildError(f"{flavor} could not build {onnx_path}: " + "; ".join(logger.errors or ["no error logged"]))
    data = memoryview(plan)
    atomic_write_bytes(plan_path, data)
    if progress:
        print(f"{flavor}: built {plan_path} ({data.nbytes / 1e6:.1f} MB) in {seconds:.1f} s", file=sys.stderr)
    return {
        "library": FLAVORS[flavor][0],
        "version": trt.__version__,
        "flavor": flavor,
        "compute_capability": target_name,
        "plan_bytes": data.nbytes,
        "sha256": hashlib.sha256(data).hexdigest(),
        "build_seconds": round(seconds, 3),
        "batch": {"min": min_batch, "opt": opt_batch, "max": max_batch},
        "workspace_gib": workspace_gib,
        "inputs": [_spec(trt, t) for t in inputs],
        "outputs": [_spec(trt, t) for t in outputs],
    }


def _target(trt, flavor: str, compute_capability: str | None):
    """(enum to pass to the builder or None, "SMxy" recorded in the metadata)."""
    if flavor != "tensorrt-rtx":
        problem = probe_cuda()
        if problem:
            raise BackendUnavailable(
                f"{flavor} builds only on the GPU it targets, and there is none here: {problem}. "
                "Build on the target machine, or use flavor='tensorrt-rtx' with compute_capability= offline"
            )
        current = device_compute_capability()
        if compute_capability is not None and _normalize(compute_capability) != current:
            raise ConfigError(f"{flavor} builds only for this machine's GPU ({current}), not {compute_capability!r}")
        return None, current
    targets = {name: value for name, value in trt.ComputeCapability.__members__.items() if name.startswith("SM")}
    if compute_capability is None:
        problem = probe_cuda()
        if problem:
            raise ConfigError(
                f"compute_capability is needed to build {flavor} without a GPU ({problem}); "
                f"pass one of {', '.join(targets)} (e.g. compute_capability='SM86' for RTX 30xx / A10)"
            )
        return trt.ComputeCapability.CURRENT, device_compute_capability()
    name = _normalize(compute_capability)
    if name not in targets:
        hint = difflib.get_close_matches(name, list(targets), n=1)
        raise ConfigError(
            f"compute_capability={compute_capability!r} is not a {flavor} {trt.__version__} target; "
            f"choose one of {', '.join(targets)}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        )
    return targets[name], name


def _normalize(compute_capability: str) -> str:
    """'SM86', 'sm_86', '86' and '8.6' all name the same target: 'SM86'."""
    match = re.fullmatch(r"(?:sm_?)?(\d+)\.?(\d)", compute_capability.strip(), re.IGNORECASE)
    return f"SM{match[1]}{match[2]}" if match else compute_capability.strip().upper()


def _network_flags(trt) -> int:
    # TensorRT 10 needs STRONGLY_TYPED to honour the ONNX dtypes; TensorRT-RTX sets it by default,
    # and a later TensorRT may drop the member once every network is strongly typed.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def _parser_error(error) -> str:
    node = error.node()
    where = f"node {node} {error.node_name()!r} ({error.node_operator()})" if node >= 0 else "model"
    return f"  - {where}: {error.desc()} [{error.code().name}]"


def _spec(trt, tensor) -> dict:
    try:
        dtype = np.dtype(trt.nptype(tensor.dtype)).name
    except TypeError:  # types NumPy lacks (bf16, fp8)
        dtype = tensor.dtype.name.lower()
    return {"name": tensor.name, "dtype": dtype, "shape": list(tensor.shape)}


def _progress_monitor(trt, label: str):
    """Print the build's top two levels of phases to stderr (TensorRT calls it from its build threads)."""
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class _Progress(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self._depth: dict[str, int] = {}
            self._lock = threading.Lock()

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self._lock:
                depth = self._depth.get(parent_phase, -1) + 1 if parent_phase else 0
                self._depth[phase_name] = depth
            if depth <= 1:
                print(f"{label}: {'  ' * depth}{phase_name} ({num_steps} steps)", file=sys.stderr, flush=True)

        def step_complete(self, phase_name, step):
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            with self._lock:
                self._depth.pop(phase_name, None)

    return _Progress()
