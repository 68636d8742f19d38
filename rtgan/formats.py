"""The one table of export formats: `rtgan.export`, `rtgan.Engine`, `rtgan.bench` and the README read it."""

from __future__ import annotations

import dataclasses

from .errors import ConfigError
from .utils.names import lookup


@dataclasses.dataclass(frozen=True)
class Format:
    backend: str
    artifact: str  # the backend's own file in the artifact directory
    cpu: bool
    gpu: bool
    precisions: tuple[str, ...]
    extra: str  # pip extra that installs the backend
    description: str
    options: tuple[str, ...] = ()  # export() options this backend takes beyond the common ones
    auto: int = 99  # Engine.load(backend="auto") tries the lowest first; bench times the CPU ones


# export() options every backend takes; the others are listed per backend in `options`
COMMON_OPTIONS = ("height", "width", "backend", "precision", "out", "rewrites", "force", "progress", "verify",
                  "plugins", "compact")  # fmt: skip
PLAN_OPTIONS = ("compute_capability", "max_batch")  # TensorRT-RTX builds offline for a named GPU
REDUCED_OPTIONS = ("min_psnr", "calibration")  # bf16 / int8 CPU artifacts: fidelity floor, calibration maps

FORMATS: dict[str, Format] = {
    f.backend: f
    for f in [
        Format("onnxruntime", "model.onnx", True, True, ("fp32", "int8"), "cpu",
               "ONNX Runtime (CPU; CUDA provider if present)", REDUCED_OPTIONS, auto=3),
        Format("openvino", "model.xml", True, False, ("fp32", "bf16", "int8"), "cpu", "OpenVINO IR on the CPU plugin",
               REDUCED_OPTIONS, auto=2),
        Format("torch", "model", True, True, ("fp32",), "torch", "the PyTorch reference (prepare + forward)", auto=4),
        Format("tensorrt", "model.plan", False, True, ("fp32", "fp16"), "tensorrt", "TensorRT 10/11 plan",
               ("max_batch",), auto=0),  # built for the GPU it runs on: no compute_capability
        Format("tensorrt-rtx", "model.plan", False, True, ("fp32", "fp16"), "tensorrt-rtx", "TensorRT-RTX plan",
               PLAN_OPTIONS, auto=1),
    ]
}  # fmt: skip
AUTO_ORDER = sorted(FORMATS, key=lambda b: FORMATS[b].auto)
CPU_BACKENDS = [b for b in AUTO_ORDER if FORMATS[b].cpu and b != "torch"]


def check_options(fmt: Format, given: dict) -> None:
    """Refuse an export() option the backend does not take (given with a non-default value)."""
    import difflib

    for name in given:
        if name not in COMMON_OPTIONS and name not in fmt.options:
            valid = list(COMMON_OPTIONS + fmt.options)
            hint = difflib.get_close_matches(name, valid, 1)
            takers = [b for b, f in FORMATS.items() if name in f.options]
            raise ConfigError(
                f"backend {fmt.backend!r} takes no option {name!r}"
                + (f" (only {', '.join(takers)} do)" if takers else "")
                + (f"; did you mean {hint[0]!r}?" if hint and hint[0] != name else "")
            )


ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "ov": "openvino", "trt": "tensorrt", "trt-rtx": "tensorrt-rtx"}


def get_format(backend: str) -> Format:
    return lookup(ALIASES.get(backend, backend), FORMATS, "backend")


def check_precision(fmt: Format, precision: str) -> None:
    if precision not in fmt.precisions:
        raise ConfigError(
            f"backend {fmt.backend!r} offers precision {', '.join(fmt.precisions)}, not {precision!r}"
            + (" (ONNX Runtime's CPU kernels have no bf16 convolutions: use openvino)" if precision == "bf16" else "")
        )


def markdown_table() -> str:
    rows = ["| backend | artifact | CPU | GPU | precisions | options | extra |", "|---|---|---|---|---|---|---|"]
    for f in FORMATS.values():
        tick = lambda b: "✅" if b else "—"
        options = ", ".join(f"`{o}`" for o in f.options) or "—"
        cells = [f"`{f.backend}`", f"`{f.artifact}`", tick(f.cpu), tick(f.gpu), ", ".join(f.precisions), options,
                 f"`{f.extra}`"]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def check_can_export(
    fmt: Format, precision: str, *, verify: bool = True, compute_capability: str | None = None
) -> None:
    """Raise before any work when this machine lacks what exporting `fmt` needs (a library, a GPU)."""
    from .utils.extras import nvidia_gpu_present, require, require_gpu

    check_precision(fmt, precision)
    if fmt.backend in ("onnxruntime", "openvino") or (verify and precision == "fp32"):
        require("onnxruntime", "cpu", "checking the exported graph against PyTorch (--no-verify skips it)")
    if fmt.backend == "openvino":
        require("openvino", "cpu", "the openvino backend")
    if precision == "int8" and fmt.backend == "openvino":
        require("nncf", "quantize", "--precision int8 on openvino (NNCF's post-training quantization)")
    if precision == "fp16":
        require("onnxconverter_common", fmt.extra, "--precision fp16", package="onnxconverter-common")
    if fmt.backend == "tensorrt":
        require_gpu(
            "the tensorrt backend (a TensorRT plan is built on, and for, the GPU it runs on)",
            "build offline with --backend tensorrt-rtx --compute-capability SM86 (no GPU needed), "
            "or use --backend openvino / onnxruntime on the CPU",
        )
        require(  # its wheels come from NVIDIA's package index only: the extra cannot pull them from PyPI
            "tensorrt", "tensorrt", "the tensorrt backend", package="TensorRT (NVIDIA's index: pip install tensorrt)"
        )
    check_options(fmt, {"compute_capability": compute_capability} if compute_capability is not None else {})
    if fmt.backend == "tensorrt-rtx":
        require("tensorrt_rtx", "tensorrt-rtx", "the tensorrt-rtx backend", package="tensorrt-rtx")
        if compute_capability is not None:
            import tensorrt_rtx

            from .export.tensorrt import _target  # torch-free: TensorRT-RTX's target names

            _target(tensorrt_rtx, "tensorrt-rtx", compute_capability)  # a misspelled SMxx, before any work
        elif not nvidia_gpu_present():
            raise ConfigError(
                "tensorrt-rtx builds for a named GPU when this machine has none: add --compute-capability "
                "(SM75, SM80, SM86, SM89 or SM120; SM86 is RTX 30xx / A10)"
            )
