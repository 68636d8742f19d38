"""TensorRT / TensorRT-RTX runtime: a plan file in, uint8 images out (NumPy + cuda-python only).

`TensorRTBackend(plan)` allocates every I/O buffer once for `max_batch`, runs on its own stream and,
once a batch size repeats after its warm-up call, replays that batch size from a CUDA graph.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
from pathlib import Path

import numpy as np

from rtgan.engine.contract import OUTPUT
from rtgan.errors import ConfigError, InputError, RtganError

log = logging.getLogger(__name__)

# flavor -> (module, module of the bare bindings wheel, pip package)
FLAVORS = {
    "tensorrt": ("tensorrt", "tensorrt_bindings", "tensorrt"),
    "tensorrt-rtx": ("tensorrt_rtx", "tensorrt_rtx_bindings", "tensorrt-rtx"),
}


class BackendUnavailable(RtganError, RuntimeError):
    """The backend's library, driver or GPU is missing on this machine."""


class CudaError(RtganError, RuntimeError):
    """A CUDA call returned an error code."""


def import_tensorrt(flavor: str):
    """The TensorRT module of `flavor`, imported on first use so CPU-only installs never need it."""
    if flavor not in FLAVORS:
        raise ConfigError(f"unknown TensorRT flavor {flavor!r}; choose one of {sorted(FLAVORS)}")
    module, bindings, package = FLAVORS[flavor]
    error = None
    # The bare `*-bindings` + `*-libs` wheels provide the same API under another module name.
    for name in (module, bindings):
        try:
            return importlib.import_module(name)
        except ImportError as e:
            error = error or e
    raise BackendUnavailable(f"{flavor} is not installed (no module {module!r}): pip install {package} ({error})")


def _cuda():
    """(driver, runtime) modules of cuda-python."""
    try:
        from cuda.bindings import driver, runtime
    except ImportError:  # cuda-python releases before the cuda.bindings layout
        from cuda import cuda as driver
        from cuda import cudart as runtime
    return driver, runtime


def cuda_call(result):
    """Unpack a cuda-python `(error, *values)` tuple, raising `CudaError` unless the error is success."""
    err, *values = result
    if err != 0:
        raise CudaError(f"CUDA call failed: {getattr(err, 'name', err)} ({int(err)})")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def probe_cuda() -> str | None:
    """None when an NVIDIA driver and GPU are usable, else why not.

    Must run before any TensorRT object exists: a TensorRT runtime created without a driver only
    logs "CUDA initialization failure" and crashes the process on first use.
    """
    try:
        driver, _ = _cuda()
    except ImportError:
        return "cuda-python is not installed (pip install cuda-python)"
    try:
        (err,) = driver.cuInit(0)
    except (RuntimeError, OSError) as e:  # cuda-python raises when libcuda itself cannot be loaded
        return f"no NVIDIA driver found ({e})"
    if err != 0:
        return f"no usable NVIDIA GPU: cuInit failed with {getattr(err, 'name', err)}"
    err, count = driver.cuDeviceGetCount()
    if err != 0 or count == 0:
        return "no NVIDIA GPU found: the driver reports no CUDA device"
    return None


def device_compute_capability() -> str:
    """The current device as TensorRT-RTX spells targets, e.g. "SM86" (call `probe_cuda()` first)."""
    _, runtime = _cuda()
    dev = cuda_call(runtime.cudaGetDevice())
    attr = runtime.cudaDeviceAttr
    major = cuda_call(runtime.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, dev))
    minor = cuda_call(runtime.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, dev))
    return f"SM{major}{minor}"


def make_logger(trt):
    """A TensorRT logger forwarding to `logging` and keeping error lines for our exception messages."""

    class _Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity <= trt.ILogger.Severity.ERROR:
                self.errors.append(msg)
                log.error("%s", msg)
            elif severity == trt.ILogger.Severity.WARNING:
                log.warning("%s", msg)
            else:
                log.debug("%s", msg)

    return _Logger()


class DeviceBuffer:
    """`nbytes` of device memory, freed by `free()` or on collection."""

    def __init__(self, nbytes: int):
        _, self._rt = _cuda()
        self.nbytes = nbytes
        self.ptr = cuda_call(self._rt.cudaMalloc(nbytes))

    def free(self) -> None:
        if self.ptr:
            ptr, self.ptr = self.ptr, 0
            cuda_call(self._rt.cudaFree(ptr))

    def __del__(self):
        with contextlib.suppress(Exception):
            self.free()


class PinnedHostBuffer:
    """Page-locked host memory seen as a NumPy array: async copies need it, and graphs capture its address."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype):
        _, self._rt = _cuda()
        dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(shape)) * dtype.itemsize
        self.ptr = cuda_call(self._rt.cudaMallocHost(self.nbytes))
        raw = (ctypes.c_byte * self.nbytes).from_address(self.ptr)
        self.array = np.frombuffer(raw, dtype=dtype).reshape(shape)

    def free(self) -> None:
        if self.ptr:
            ptr, self.ptr, self.array = self.ptr, 0, None
            cuda_call(self._rt.cudaFreeHost(ptr))

    def __del__(self):
        with contextlib.suppress(Exception):
            self.free()


class CudaStream:
    """A non-blocking stream: graph capture is impossible on the legacy default stream."""

    def __init__(self):
        _, self._rt = _cuda()
        self.handle = cuda_call(self._rt.cudaStreamCreateWithFlags(self._rt.cudaStreamNonBlocking))

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def synchronize(self) -> None:
        cuda_call(self._rt.cudaStreamSynchronize(self.handle))

    def free(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            cuda_call(self._rt.cudaStreamDestroy(handle))

    def __del__(self):
        with contextlib.suppress(Exception):
            self.free()


class CudaGraph:
    """An instantiated graph captured from `enqueue()` on `stream`; `launch()` replays it."""

    def __init__(self, stream: CudaStream, enqueue):
        _, self._rt = _cuda()
        self.exec = None
        rt = self._rt
        # Thread-local mode: other threads of the application may keep using CUDA meanwhile.
        cuda_call(rt.cudaStreamBeginCapture(stream.handle, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        graph = None
        try:
            try:
                enqueue()
            finally:  # always leave capture mode, or the stream stays unusable
                err, graph = rt.cudaStreamEndCapture(stream.handle)
            cuda_call((err,))
            self.exec = cuda_call(rt.cudaGraphInstantiate(graph, 0))
        finally:
            if graph is not None:  # the executable graph no longer needs its template
                rt.cudaGraphDestroy(graph)

    def launch(self, stream: CudaStream) -> None:
        cuda_call(self._rt.cudaGraphLaunch(self.exec, stream.handle))

    def free(self) -> None:
        if self.exec is not None:
            exec_, self.exec = self.exec, None
            cuda_call(self._rt.cudaGraphExecDestroy(exec_))

    def __del__(self):
        with contextlib.suppress(Exception):
            self.free()


class TensorRTBackend:
    """Runs a TensorRT or TensorRT-RTX plan that follows `rtgan.engine.contract`."""

    def __init__(self, plan_path: str | Path, *, flavor: str = "tensorrt-rtx", max_batch: int = 4):
        problem = probe_cuda()
        if problem:
            raise BackendUnavailable(f"{flavor} needs an NVIDIA GPU and driver, and none was found: {problem}")
        trt = import_tensorrt(flavor)
        _, self._rt = _cuda()
        self.flavor, self.max_batch = flavor, max_batch
        self._logger = make_logger(trt)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(Path(plan_path).read_bytes())
        if self.engine is None:
            raise BackendUnavailable(
                f"{flavor} {trt.__version__} could not load {plan_path}: {'; '.join(self._logger.errors)} "
                "(plans are tied to a GPU architecture and library version: rebuild it for this machine)"
            )
        self.context = self.engine.create_execution_context(*self._runtime_config(trt))
        self.stream = CudaStream()

        self._inputs: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        self._device: dict[str, DeviceBuffer] = {}
        self._host: dict[str, PinnedHostBuffer] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if -1 in shape[1:]:
                raise ConfigError(f"{plan_path}: tensor {name!r} has shape {shape}; only the batch dim may be dynamic")
            if is_input and shape[0] == -1:
                top = self.engine.get_tensor_profile_shape(name, 0)[2][0]
                if max_batch > top:
                    raise ConfigError(f"max_batch={max_batch} exceeds the plan's profile maximum {top} for {name!r}")
            if is_input:
                self._inputs[name] = (shape[1:], dtype)
            full = (max_batch, *shape[1:])
            self._host[name] = PinnedHostBuffer(full, dtype)
            self._device[name] = DeviceBuffer(self._host[name].nbytes)
            # Addresses never change, which is what lets a captured graph be replayed.
            self.context.set_tensor_address(name, self._device[name].ptr)
        if OUTPUT not in self._host:
            raise ConfigError(f"{plan_path} has no {OUTPUT!r} output; its tensors are {sorted(self._host)}")
        self._shape_batch, self._streak = 0, 0
        self._graph: CudaGraph | None = None  # replays the enqueue for `_shape_batch`
        self._uncapturable: set[int] = set()  # batch sizes whose capture failed: run them plainly

    def _runtime_config(self, trt) -> tuple:
        # TensorRT-RTX JIT-compiles kernels for each new shape; by default (LAZY) a background compile
        # swaps them in later, which a captured graph would never see. EAGER compiles during warm-up.
        strategy = getattr(trt, "DynamicShapesKernelSpecializationStrategy", None)
        if strategy is None or not hasattr(self.engine, "create_runtime_config"):
            return ()
        config = self.engine.create_runtime_config()
        config.dynamic_shapes_kernel_specialization_strategy = strategy.EAGER
        return (config,)

    def input_spec(self) -> list[dict]:
        """Inputs as name, dtype and shape (batch as -1), in the form `build_plan` reports them."""
        return [{"name": n, "dtype": d.name, "shape": [-1, *s]} for n, (s, d) in self._inputs.items()]

    def output_spec(self) -> list[dict]:
        host = self._host[OUTPUT].array
        return [{"name": OUTPUT, "dtype": host.dtype.name, "shape": [-1, *host.shape[1:]]}]

    def _stage(self, feeds: dict[str, np.ndarray]) -> int:
        """Check `feeds` against the plan and copy them into the pinned buffers; returns the batch size."""
        if set(feeds) != set(self._inputs):
            want = ", ".join(f"{n} {d.name} (B, {', '.join(map(str, s))})" for n, (s, d) in self._inputs.items())
            raise InputError(f"got inputs {sorted(feeds)}; this engine takes {want}")
        batches = sorted({np.shape(x)[0] if np.ndim(x) else 0 for x in feeds.values()})
        batch = batches[0]
        if len(batches) != 1 or not 1 <= batch <= self.max_batch:
            raise InputError(f"inputs must share one batch size in [1, {self.max_batch}], got {batches}")
        for name, x in feeds.items():
            shape, dtype = self._inputs[name]
            x = np.asarray(x)
            if x.dtype != dtype or x.shape[1:] != shape:
                want = f"{dtype.name} of shape (B, {', '.join(map(str, shape))})"
                raise InputError(f"{name!r} must be {want}, got {x.dtype} {x.shape}")
            np.copyto(self._host[name].array[:batch], x)
        return batch

    def _enqueue(self, batch: int) -> None:
        rt, stream = self._rt, self.stream.handle
        for name in self._inputs:
            host, dev = self._host[name], self._device[name]
            size = host.nbytes // self.max_batch * batch
            cuda_call(rt.cudaMemcpyAsync(dev.ptr, host.ptr, size, rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream))
        if not self.context.execute_async_v3(self.stream.ptr):
            raise CudaError(f"{self.flavor} enqueue failed: {'; '.join(self._logger.errors[-3:])}")
        host, dev = self._host[OUTPUT], self._device[OUTPUT]
        size = host.nbytes // self.max_batch * batch
        cuda_call(rt.cudaMemcpyAsync(host.ptr, dev.ptr, size, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream))

    def _capture(self, batch: int) -> CudaGraph | None:
        capturable = getattr(self.context, "is_stream_capturable", None)
        if capturable is not None and not capturable(self.stream.ptr):
            return None
        try:
            return CudaGraph(self.stream, lambda: self._enqueue(batch))
        except RtganError as e:
            self._rt.cudaGetLastError()  # a failed capture leaves a sticky error behind
            log.info("CUDA graph capture failed for batch %d, running without it: %s", batch, e)
            return None

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Contract inputs (`labels`, optional `instance`, `z`) -> uint8 images (B, H, W, 3)."""
        batch = self._stage(feeds)
        if batch != self._shape_batch:
            # A graph bakes in the context's state for one shape, and enqueueing another shape
            # rewrites that state: so one graph at a time, recaptured when the batch size settles.
            self._drop_graph()
            for name, (shape, _) in self._inputs.items():
                self.context.set_input_shape(name, (batch, *shape))
            self._shape_batch, self._streak = batch, 0
        self._streak += 1
        if self._graph is not None:
            self._graph.launch(self.stream)
        else:
            self._enqueue(batch)
        self.stream.synchronize()
        # The first call at a batch size is the warm-up (kernel JIT, lazy allocations); capture after
        # the second so that alternating batch sizes never pay for captures they cannot replay.
        if self._graph is None and self._streak == 2 and batch not in self._uncapturable:
            self._graph = self._capture(batch)
            if self._graph is None:
                self._uncapturable.add(batch)
        return self._host[OUTPUT].array[:batch].copy()

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self._graph.free()
            self._graph = None

    def close(self) -> None:
        """Free graphs, buffers and stream, then the TensorRT objects in dependency order."""
        owners = [self.__dict__.get("_graph"), *self.__dict__.get("_host", {}).values()]
        owners += [*self.__dict__.get("_device", {}).values(), self.__dict__.get("stream")]
        for owner in owners:
            if owner is not None:
                owner.free()
        self._graph, self._host, self._device = None, {}, {}
        for attr in ("context", "engine", "_runtime"):
            self.__dict__.pop(attr, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()
