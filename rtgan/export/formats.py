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
