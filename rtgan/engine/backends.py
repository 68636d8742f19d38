"""CPU backends and the PyTorch reference: each loads once in `__init__` and offers `infer(feeds)`.

`feeds` maps the contract's input names to checked NumPy arrays; `infer` returns the uint8
(B, H, W, 3) image. Heavy imports happen here, lazily, so `rtgan.engine` needs only NumPy.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np

from ..utils import cpu
from .contract import ONNX_FILE
from .tensorrt import BackendUnavailable


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BackendUnavailable(f"{module} is not installed: pip install 'rtgan[{extra}]'") from None


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, directory: Path, manifest: dict, device=None, threads=None, kernels: bool | None = None):
        if kernels:  # it has no custom ops of rtgan's to run: its wheel ships no headers to build them
            raise BackendUnavailable("fused CPU kernels run on OpenVINO, not onnxruntime (it runs the standard graph)")
        ort = _require("onnxruntime", "cpu")
        providers = ["CPUExecutionProvider"]
        if device in (None, "cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif device == "cuda":
            raise BackendUnavailable("onnxruntime has no CUDA provider here (pip install onnxruntime-gpu)")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        self.session = ort.InferenceSession(str(directory / ONNX_FILE), options, providers=providers)
        self.device = "cuda" if providers[0].startswith("CUDA") else "cpu"

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, feeds)[0]


def openvino_config(precision: str, threads: int | None = None) -> dict:
    """The compile config an artifact of `precision` runs with (export measures it the same way)."""
    # f32 for fp32 and int8: on CPUs with bf16 units (AVX512-BF16, AMX) OpenVINO otherwise runs
    # the float parts in bf16, off by up to 3 levels in 40 % of the pixels; bf16 is the artifact's choice
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def fused_graph(core, directory: Path, manifest: dict, precision: str, kernels: bool | None) -> tuple[Path | None, str]:
    """(the plugin-node graph to run with rtgan's OpenVINO extension, or None; why).

    `kernels` None: where the artifact has one, the extension builds here and export did not measure
    it slower at this precision; True: required (BackendUnavailable says why not); False: never."""
    from . import openvino_ext

    if kernels is False:
        return None, "fused kernels off (kernels=False)"
    plugins = manifest.get("plugins") if isinstance(manifest.get("plugins"), dict) else {}
    other = sorted(set(plugins.get("nodes", {})) - set(openvino_ext.OPS))
    why = None
    if not plugins:
        why = "the artifact has no graph of fused CPU kernels (export with plugins=True / --plugins)"
    elif other:
        why = f"its plugin graph holds nodes rtgan's CPU extension does not implement ({', '.join(other)})"
    else:
        measured = (plugins.get("openvino") or {}).get(precision)
        speedup = measured.get("speedup") if isinstance(measured, dict) else None
        if kernels is None and isinstance(speedup, (int, float)) and speedup < 1:
            why = f"the fused graph measured {speedup}x the standard one at {precision} when exported"
    if why is None:
        try:
            openvino_ext.add_to(core, log=_stderr)
        except openvino_ext.ExtensionUnavailable as e:
            why = f"rtgan's OpenVINO extension is unavailable: {e}"
    if why is not None:
        if kernels:
            raise BackendUnavailable(f"{directory}: {why}")
        return None, why
    return directory / plugins["file"], "rtgan's fused CPU kernels (OpenVINO extension)"


class OpenVINOBackend:
    name = "openvino"

    def __init__(
        self,
        directory: Path,
        manifest: dict,
        device: str | None = None,
        threads: int | None = None,
        kernels: bool | None = None,
    ):
        ov = _require("openvino", "cpu")
        if device not in (None, "cpu"):
            raise BackendUnavailable(f"the openvino backend runs on the CPU, not {device!r}")
        xml = directory / "model.xml"
        if not xml.is_file():  # an ONNX-only artifact: OpenVINO reads ONNX directly
            xml = directory / ONNX_FILE
        precision = manifest.get("precision", "fp32")
        problem = cpu.precision_problem(precision) if precision in ("bf16", "int8") else None
        if problem and precision == "bf16":
            raise BackendUnavailable(f"{directory} is a bf16 artifact and {problem}; export fp32 or int8")
        if problem:
            warnings.warn(f"{directory}: {problem}", RuntimeWarning, stacklevel=3)
        core = ov.Core()
        fused, self.kernels_reason = fused_graph(core, directory, manifest, precision, kernels)
        self.kernels = fused is not None
        self.model = core.compile_model(str(fused or xml), "CPU", openvino_config(precision, threads))
        self.request = self.model.create_infer_request()
        self.device = "cpu"

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.request.infer(feeds)[0].copy()


class TensorRTBackendAdapter:
    """TensorRT / TensorRT-RTX plans through rtgan.engine.tensorrt (GPU only)."""

    def __init__(self, directory: Path, manifest: dict, device=None, threads=None, kernels: bool | None = None):
        from .tensorrt import TensorRTBackend, device_compute_capability, probe_cuda

        flavor = manifest["backend"]
        self.kernels = bool((manifest.get("plugins") or {}).get("in_plan"))  # built into the plan, or not
        if kernels and not self.kernels:
            raise BackendUnavailable(f"{directory}: this {flavor} plan was built without the kernel plugins")
        self.name, self.device = flavor, "cuda"
        problem = probe_cuda()
        if problem:
            raise BackendUnavailable(f"{flavor} needs an NVIDIA GPU: {problem}")
        want, have = manifest.get("target", {}).get("gpu_arch"), device_compute_capability()
        if want and want != have:
            raise BackendUnavailable(f"{directory}: plan built for {want}, this GPU is {have}; re-export")
        self.impl = TensorRTBackend(directory / "model.plan", flavor=flavor, max_batch=manifest["max_batch"])

    def infer(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.impl.infer(feeds)


def _torch_backend():
    from .torch_backend import TorchBackend  # the one backend module that imports PyTorch and models

    return TorchBackend


BACKENDS = {
    "onnxruntime": OnnxRuntimeBackend,
    "openvino": OpenVINOBackend,
    "torch": lambda *a, **k: _torch_backend()(*a, **k),
    "tensorrt": TensorRTBackendAdapter,
    "tensorrt-rtx": TensorRTBackendAdapter,
}
