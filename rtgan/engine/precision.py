"""Which precision an engine runs at: the artifact's own, or (`precision="auto"`) the fastest that
holds its fidelity floor on the CPU at hand. Torch-free.

A reduced artifact (bf16, int8) runs at its own precision. An fp32 artifact can also run on
OpenVINO with bf16 inference precision: export measures that (PSNR against the PyTorch reference,
speed against f32, on the exporting CPU) into the manifest's `bf16` entry, and "auto" takes it
when this CPU has bf16 units, the measured PSNR holds `BF16_FLOOR` and it was measurably faster.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..utils import cpu

BF16_FLOOR = 45.0  # dB, as export's default bf16 floor
MIN_SPEEDUP = 1.05  # below this, bf16's lost fidelity buys nothing measurable

PRECISIONS = (None, "auto", "fp32", "bf16", "int8")


def choose(manifest: dict, backend: str, requested: str | None) -> tuple[str, str]:
    """(the precision to run at, why) for `requested` (None: the artifact's own)."""
    if requested not in PRECISIONS:
        raise ConfigError(f"precision must be one of auto, fp32, bf16, int8 (or None), got {requested!r}")
    own = manifest.get("precision", "fp32")
    if requested is None or requested == own:
        return own, "the artifact's precision"
    if requested == "auto":
        if own != "fp32" or backend != "openvino":
            return own, "the artifact's precision (only OpenVINO runs an fp32 artifact in bf16)"
        measured = manifest.get("bf16")
        measured = measured if isinstance(measured, dict) else {}  # a hand-edited manifest: as if unmeasured
        psnr_db, speedup = measured.get("psnr_db_openvino"), measured.get("speedup_openvino")
        problem = cpu.precision_problem("bf16")
        if problem:
            return "fp32", problem
        if not isinstance(psnr_db, (int, float)) or not isinstance(speedup, (int, float)):
            return "fp32", f"no bf16 measurement recorded (floor {BF16_FLOOR} dB)"
        if psnr_db < BF16_FLOOR:
            return "fp32", f"bf16 measured {psnr_db} dB (floor {BF16_FLOOR} dB)"
        if speedup < MIN_SPEEDUP:
            return "fp32", f"bf16 measured only {speedup}x as fast as fp32 at export"
        return "bf16", f"bf16 holds {psnr_db} dB and ran {speedup}x as fast"
    if requested == "bf16" and own == "fp32" and backend == "openvino":
        problem = cpu.precision_problem("bf16")
        if problem:
            raise ConfigError(f"precision bf16: {problem}")
        return "bf16", "asked for"
    if requested == "fp32" and own == "bf16":
        return "fp32", "asked for (the bf16 artifact holds an fp32 IR)"
    raise ConfigError(
        f"this {own} artifact cannot run at {requested} on {backend}"
        + (" (bf16 runs on OpenVINO only)" if requested == "bf16" else " (export it at that precision)")
    )
