"""TensorRT paths that run without a GPU: offline TensorRT-RTX builds, clear errors, driver probing.

Nothing here may create a TensorRT runtime on a machine without a driver: such an object logs a
CUDA initialization failure and crashes the process on first use.
"""

from __future__ import annotations

import ctypes
import enum
import hashlib
import importlib.util
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from rtgan.engine import tensorrt as trt_engine
from rtgan.engine.tensorrt import BackendUnavailable, CudaError, TensorRTBackend, cuda_call, probe_cuda
from rtgan.errors import ConfigError, InputError, RtganError

H, W = 16, 24
NO_GPU = probe_cuda()  # None where a GPU and driver are present


class TinyGenerator(nn.Module):
    """Follows the engine contract: int32 labels (B, H, W) -> uint8 image (B, H, W, 3)."""

    def __init__(self, num_classes: int = 5, cast_early: bool = False):
        super().__init__()
        self.embed = nn.Embedding(num_classes, 8)
        self.conv = nn.Conv2d(8, 3, 3, padding=1)
        self.cast_early = cast_early

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.conv(self.embed(labels).permute(0, 3, 1, 2)))
        x = ((x + 1) * 127.5).round().clamp(0, 255)
        if self.cast_early:  # a uint8 tensor inside the graph, which TensorRT rejects
            return x.to(torch.uint8).permute(0, 2, 3, 1)
        return x.permute(0, 2, 3, 1).to(torch.uint8)


def export_tiny(path, **kwargs):
    labels = torch.zeros(2, H, W, dtype=torch.int32)
    # The TorchScript exporter is deprecated but takes ~1 s here against ~7 s for the dynamo one;
    # both give graphs TensorRT-RTX parses alike.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            TinyGenerator(**kwargs).eval(),
            (labels,),
            str(path),
            input_names=["labels"],
            output_names=["image"],
            dynamic_axes={"labels": {0: "batch"}, "image": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    return path


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    return export_tiny(tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture(scope="module")
def trt_rtx():
    return pytest.importorskip("tensorrt_rtx")


def test_build_plan_offline_for_sm86(trt_rtx, tiny_onnx, tmp_path, capsys):
    from rtgan.export.tensorrt import build_plan

    plan = tmp_path / "model.plan"
    meta = build_plan(tiny_onnx, plan, compute_capability="SM86", min_batch=1, opt_batch=2, max_batch=4)

    data = plan.read_bytes()
    assert len(data) > 0 and meta["plan_bytes"] == len(data)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["library"] == "tensorrt_rtx" and meta["flavor"] == "tensorrt-rtx"
    assert meta["version"] == trt_rtx.__version__
    assert meta["compute_capability"] == "SM86"
    assert meta["batch"] == {"min": 1, "opt": 2, "max": 4}
    assert meta["build_seconds"] >= 0
    assert meta["inputs"] == [{"name": "labels", "dtype": "int32", "shape": [-1, H, W]}]
    assert meta["outputs"] == [{"name": "image", "dtype": "uint8", "shape": [-1, H, W, 3]}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.plan"]  # no temporary file left
    assert "Building engine" in capsys.readouterr().err  # the progress monitor reported phases


@pytest.mark.parametrize("spelling, target", [("sm_89", "SM89"), ("8.6", "SM86"), ("120", "SM120")])
def test_compute_capability_spellings(trt_rtx, tiny_onnx, tmp_path, spelling, target):
    from rtgan.export.tensorrt import build_plan

    meta = build_plan(tiny_onnx, tmp_path / "m.plan", compute_capability=spelling, progress=False)
    assert meta["compute_capability"] == target


def test_unknown_compute_capability_lists_targets(trt_rtx, tiny_onnx, tmp_path):
    from rtgan.export.tensorrt import build_plan

    with pytest.raises(ConfigError, match=r"'SM91'.*SM75.*SM86.*did you mean") as info:
        build_plan(tiny_onnx, tmp_path / "m.plan", compute_capability="SM91")
    assert "SM90" not in str(info.value)  # TensorRT-RTX has no Hopper target
    assert not (tmp_path / "m.plan").exists()


def test_corrupted_onnx_lists_parser_errors(trt_rtx, tiny_onnx, tmp_path):
    from rtgan.export.tensorrt import BuildError, build_plan

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(tiny_onnx.read_bytes()[:200])
    with pytest.raises(BuildError, match=r"could not parse .*broken\.onnx:\n  - model: .*MODEL_DESERIALIZE_FAILED"):
        build_plan(broken, tmp_path / "m.plan", compute_capability="SM86", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx"]


def test_unsupported_node_is_named(trt_rtx, tmp_path):
    from rtgan.export.tensorrt import BuildError, build_plan

    onnx = export_tiny(tmp_path / "early.onnx", cast_early=True)
    with pytest.raises(BuildError, match=r"node \d+ '/Cast' \(Cast\): .*UINT8"):
        build_plan(onnx, tmp_path / "m.plan", compute_capability="SM86", progress=False)
    assert not (tmp_path / "m.plan").exists()


@pytest.mark.skipif(NO_GPU is None, reason="a GPU is present: the build would target it")
def test_missing_compute_capability_without_gpu(trt_rtx, tiny_onnx, tmp_path):
    from rtgan.export.tensorrt import build_plan

    with pytest.raises(ConfigError, match=r"compute_capability is needed .* without a GPU.*SM86"):
        build_plan(tiny_onnx, tmp_path / "m.plan")
    assert not (tmp_path / "m.plan").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed")
def test_tensorrt_flavor_not_installed(tiny_onnx, tmp_path):
    from rtgan.export.tensorrt import build_plan

    with pytest.raises(BackendUnavailable, match=r"tensorrt is not installed.*pip install tensorrt"):
        build_plan(tiny_onnx, tmp_path / "m.plan", flavor="tensorrt")


@pytest.mark.parametrize(
    "options, pattern",
    [(dict(flavor="tensorrt-llm"), "unknown TensorRT flavor"), (dict(min_batch=2, opt_batch=1), "min_batch <= opt")],
)
def test_bad_options(tiny_onnx, tmp_path, options, pattern):
    from rtgan.export.tensorrt import build_plan

    with pytest.raises(ConfigError, match=pattern):
        build_plan(tiny_onnx, tmp_path / "m.plan", **options)


@pytest.mark.skipif(NO_GPU is None, reason="a GPU is present")
def test_backend_unavailable_without_driver(tmp_path, monkeypatch):
    assert isinstance(NO_GPU, str) and NO_GPU

    def no_tensorrt(flavor):
        raise AssertionError("TensorRT was touched before the driver probe failed")

    monkeypatch.setattr(trt_engine, "import_tensorrt", no_tensorrt)
    with pytest.raises(BackendUnavailable, match=r"needs an NVIDIA GPU and driver, and none was found: ") as info:
        TensorRTBackend(tmp_path / "missing.plan")
    assert isinstance(info.value, RtganError)


def test_probe_without_cuda_python(monkeypatch):
    def missing():
        raise ImportError("No module named 'cuda'")

    monkeypatch.setattr(trt_engine, "_cuda", missing)
    assert "pip install cuda-python" in probe_cuda()


def test_cuda_call():
    class Err(enum.IntEnum):
        cudaSuccess = 0
        cudaErrorInvalidValue = 1

    assert cuda_call((Err.cudaSuccess,)) is None
    assert cuda_call((Err.cudaSuccess, 7)) == 7
    assert cuda_call((Err.cudaSuccess, 7, 8)) == (7, 8)
    with pytest.raises(CudaError, match=r"cudaErrorInvalidValue \(1\)"):
        cuda_call((Err.cudaErrorInvalidValue, None))


# --- TensorRTBackend's own logic on stand-ins for cuda-python and TensorRT (no GPU needed) ---


class FakeCudaRuntime:
    """Enough of `cuda.bindings.runtime` on host memory: work runs at once, or is recorded while capturing."""

    cudaStreamNonBlocking = 1
    cudaMemcpyKind = SimpleNamespace(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2)
    cudaStreamCaptureMode = SimpleNamespace(cudaStreamCaptureModeThreadLocal=1)

    def __init__(self):
        self.live, self.recording, self.launches = {}, None, 0

    def run(self, op):
        op() if self.recording is None else self.recording.append(op)

    def cudaMalloc(self, nbytes):
        buf = ctypes.create_string_buffer(nbytes)
        self.live[ctypes.addressof(buf)] = buf
        return 0, ctypes.addressof(buf)

    def cudaFree(self, ptr):
        del self.live[ptr]
        return (0,)

    cudaMallocHost, cudaFreeHost = cudaMalloc, cudaFree

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        self.run(lambda: ctypes.memmove(dst, src, nbytes))
        return (0,)

    def cudaStreamBeginCapture(self, stream, mode):
        self.recording = []
        return (0,)

    def cudaStreamEndCapture(self, stream):
        ops, self.recording = self.recording, None
        return 0, ops

    def cudaGraphLaunch(self, ops, stream):
        self.launches += 1
        for op in ops:
            op()
        return (0,)

    def cudaGraphInstantiate(self, ops, flags):
        return 0, list(ops)

    def cudaStreamCreateWithFlags(self, flags):
        return 0, 7

    def cudaStreamSynchronize(self, *args):
        return (0,)

    cudaStreamDestroy = cudaGraphDestroy = cudaGraphExecDestroy = cudaGetLastError = cudaStreamSynchronize


class FakeContext:
    """Its 'kernel' copies label ids to the three channels; like TensorRT it bakes the shape in at enqueue."""

    def __init__(self, rt):
        self.rt, self.addresses, self.batch, self.executes, self.capturable = rt, {}, None, 0, True

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr

    def set_input_shape(self, name, shape):
        self.batch = shape[0]

    def is_stream_capturable(self, stream):
        return self.capturable

    def execute_async_v3(self, stream):
        self.executes += 1
        n, src, dst = self.batch * H * W, self.addresses["labels"], self.addresses["image"]

        def kernel():
            labels = np.frombuffer((ctypes.c_int32 * n).from_address(src), np.int32)
            np.frombuffer((ctypes.c_uint8 * (3 * n)).from_address(dst), np.uint8)[:] = np.repeat(labels, 3)

        self.rt.run(kernel)
        return True


class FakeEngine:
    tensors = {"labels": ((-1, H, W), "int32", "input"), "image": ((-1, H, W, 3), "uint8", "output")}
    num_io_tensors = 2

    def __init__(self, rt):
        self.context = FakeContext(rt)

    def get_tensor_name(self, i):
        return list(self.tensors)[i]

    def get_tensor_shape(self, name):
        return self.tensors[name][0]

    def get_tensor_dtype(self, name):
        return self.tensors[name][1]

    def get_tensor_mode(self, name):
        return self.tensors[name][2]

    def get_tensor_profile_shape(self, name, profile):
        return [(1, H, W), (1, H, W), (4, H, W)]

    def create_execution_context(self):
        return self.context


@pytest.fixture
def fake_backend(tmp_path, monkeypatch):
    rt = FakeCudaRuntime()
    engine = FakeEngine(rt)

    class ILogger:
        Severity = SimpleNamespace(ERROR=1, WARNING=2)

        def __init__(self):
            pass

    fake_trt = SimpleNamespace(
        __version__="0",
        ILogger=ILogger,
        Runtime=lambda logger: SimpleNamespace(deserialize_cuda_engine=lambda data: engine),
        TensorIOMode=SimpleNamespace(INPUT="input"),
        nptype=np.dtype,
    )
    monkeypatch.setattr(trt_engine, "probe_cuda", lambda: None)
    monkeypatch.setattr(trt_engine, "import_tensorrt", lambda flavor: fake_trt)
    monkeypatch.setattr(trt_engine, "_cuda", lambda: (None, rt))
    plan = tmp_path / "model.plan"
    plan.write_bytes(b"plan")
    return TensorRTBackend(plan, max_batch=4), rt, engine.context


def run(backend, batch, seed):
    labels = np.random.default_rng(seed).integers(0, 200, (batch, H, W), dtype=np.int32)
    image = backend.infer({"labels": labels})
    np.testing.assert_array_equal(image, np.repeat(labels[..., None], 3, -1).astype(np.uint8))
    return image


def test_backend_captures_after_warm_up_and_replays(fake_backend):
    backend, rt, context = fake_backend
    assert backend.input_spec() == [{"name": "labels", "dtype": "int32", "shape": [-1, H, W]}]
    assert backend.output_spec() == [{"name": "image", "dtype": "uint8", "shape": [-1, H, W, 3]}]
    run(backend, 2, 0)  # warm-up
    run(backend, 2, 1)  # runs, then captures
    assert (context.executes, rt.launches) == (3, 0)  # the capture enqueued once more, without running
    run(backend, 2, 2)
    run(backend, 2, 3)  # replays copy the new inputs: the graph holds the pinned buffers' addresses
    assert (context.executes, rt.launches) == (3, 2)
    for seed in range(4):  # alternating batch sizes: no captures they could not replay
        run(backend, 1 + seed % 2, seed)
    assert (context.executes, rt.launches) == (7, 2)
    backend.close()
    assert rt.live == {}  # every device and pinned buffer was freed


def test_backend_runs_plainly_when_capture_is_impossible(fake_backend):
    backend, rt, context = fake_backend
    context.capturable = False
    for seed in range(4):
        run(backend, 3, seed)
    assert (context.executes, rt.launches) == (4, 0)


@pytest.mark.parametrize(
    "feeds, pattern",
    [
        ({"label": np.zeros((1, H, W), np.int32)}, r"got inputs \['label'\]; this engine takes labels int32"),
        ({"labels": np.zeros((1, H, W), np.int64)}, r"'labels' must be int32 of shape \(B, 16, 24\), got int64"),
        ({"labels": np.zeros((5, H, W), np.int32)}, r"one batch size in \[1, 4\], got \[5\]"),
        ({"labels": np.zeros((1, W, H), np.int32)}, r"got int32 \(1, 24, 16\)"),
    ],
)
def test_backend_rejects_bad_feeds(fake_backend, feeds, pattern):
    with pytest.raises(InputError, match=pattern):
        fake_backend[0].infer(feeds)
