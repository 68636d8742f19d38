"""The one table of export formats: `rtgan.export`, `rtgan.Engine`, `rtgan.bench` and the README read it."""

from __future__ import annotations

import dataclasses

from ..errors import ConfigError
from ..utils.names import lookup


@dataclasses.dataclass(frozen=True)
class Format:
    backend: str
    artifact: str  # the backend's own file in the artifact directory
    cpu: bool
    gpu: bool
    precisions: tuple[str, ...]
    extra: str  # pip extra that installs the backend
    description: str


FORMATS: dict[str, Format] = {
    f.backend: f
    for f in [
        Format(
            "onnxruntime", "model.onnx", True, True, ("fp32",), "cpu", "ONNX Runtime (CPU; CUDA provider if present)"
        ),
        Format("openvino", "model.xml", True, False, ("fp32",), "cpu", "OpenVINO IR on the CPU plugin"),
        Format("torch", "model", True, True, ("fp32",), "torch", "the PyTorch reference (prepare + forward)"),
        Format("tensorrt", "model.plan", False, True, ("fp32", "fp16"), "tensorrt", "TensorRT 10/11 plan"),
        Format("tensorrt-rtx", "model.plan", False, True, ("fp32", "fp16"), "tensorrt", "TensorRT-RTX plan"),
    ]
}
ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "ov": "openvino", "trt": "tensorrt", "trt-rtx": "tensorrt-rtx"}


def get_format(backend: str) -> Format:
    return lookup(ALIASES.get(backend, backend), FORMATS, "backend")


def check_precision(fmt: Format, precision: str) -> None:
    if precision not in fmt.precisions:
        raise ConfigError(
            f"backend {fmt.backend!r} offers precision {', '.join(fmt.precisions)}, not {precision!r}"
            + (
                " (int8 is offered only where it measurably wins; it did not on this CPU)"
                if precision == "int8"
                else ""
            )
        )


def markdown_table() -> str:
    rows = ["| backend | artifact | CPU | GPU | precisions | extra |", "|---|---|---|---|---|---|"]
    for f in FORMATS.values():
        tick = lambda b: "✅" if b else "—"
        cells = [f"`{f.backend}`", f"`{f.artifact}`", tick(f.cpu), tick(f.gpu), ", ".join(f.precisions), f"`{f.extra}`"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def check_can_export(
    fmt: Format, precision: str, *, verify: bool = True, compute_capability: str | None = None
) -> None:
    """Raise before any work when this machine lacks what exporting `fmt` needs (a library, a GPU)."""
    from ..utils.extras import nvidia_gpu_present, require, require_gpu

    check_precision(fmt, precision)
    if fmt.backend in ("onnxruntime", "openvino") or (verify and precision == "fp32"):
        require("onnxruntime", "cpu", "checking the exported graph against PyTorch (--no-verify skips it)")
    if fmt.backend == "openvino":
        require("openvino", "cpu", "the openvino backend")
    if precision == "fp16":
        require("onnxconverter_common", "tensorrt", "--precision fp16", package="onnxconverter-common")
    if fmt.backend == "tensorrt":
        require_gpu(
            "the tensorrt backend (a TensorRT plan is built on, and for, the GPU it runs on)",
            "build offline with --backend tensorrt-rtx --compute-capability SM86 (no GPU needed), "
            "or use --backend openvino / onnxruntime on the CPU",
        )
        require(
            "tensorrt", "tensorrt", "the tensorrt backend", package="TensorRT (pip install tensorrt on a GPU machine)"
        )
    if compute_capability is not None and fmt.backend != "tensorrt-rtx":
        raise ConfigError(
            f"--compute-capability names an offline TensorRT-RTX target; backend {fmt.backend!r} takes none"
            + (" (it builds for the GPU it runs on)" if fmt.backend == "tensorrt" else "")
        )
    if fmt.backend == "tensorrt-rtx":
        require("tensorrt_rtx", "tensorrt", "the tensorrt-rtx backend", package="tensorrt-rtx")
        if compute_capability is not None:
            import tensorrt_rtx

            from .tensorrt import _target

            _target(tensorrt_rtx, "tensorrt-rtx", compute_capability)  # a misspelled SMxx, before any work
        elif not nvidia_gpu_present():
            raise ConfigError(
                "tensorrt-rtx builds for a named GPU when this machine has none: add --compute-capability "
                "(SM75, SM80, SM86, SM89 or SM120; SM86 is RTX 30xx / A10)"
            )
