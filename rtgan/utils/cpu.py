"""What this CPU can do for reduced precision, detected at run time (machines differ: some have
AVX-512 with BF16, VNNI and AMX, some AVX2 only). Torch-free.

`features()` reads the kernel's CPU flags; `RTGAN_CPU_FLAGS` overrides them (a comma-separated
list, empty for none), so tests and users can see what happens on a CPU without bf16 or VNNI.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

BF16 = ("avx512_bf16", "amx_bf16", "avx_ne_convert")  # native bf16 dot products / conversions
INT8_DOT = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot-product instructions


@functools.lru_cache(maxsize=1)
def _proc_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def features() -> frozenset[str]:
    forced = os.environ.get("RTGAN_CPU_FLAGS")
    if forced is not None:
        return frozenset(f.strip() for f in forced.split(",") if f.strip())
    return _proc_flags()


def has_bf16() -> bool:
    return any(f in features() for f in BF16)


def has_int8_dot() -> bool:
    return any(f in features() for f in INT8_DOT)


def precision_problem(precision: str) -> str | None:
    """Why this CPU cannot run `precision` well, or None when it can."""
    if precision == "bf16" and not has_bf16():
        return f"this CPU has no bf16 units ({', '.join(BF16)} absent): OpenVINO would run the model in fp32"
    if precision == "int8" and not has_int8_dot():
        return (
            f"this CPU has no int8 dot-product instructions ({', '.join(INT8_DOT)} absent): int8 runs "
            "there no faster than fp32, at int8's fidelity"
        )
    return None


def summary() -> dict:
    """The flags that matter here, for manifests and benchmark reports."""
    flags = features()
    keep = ("avx2", "avx512f", *BF16, *INT8_DOT)
    return {"flags": sorted(f for f in keep if f in flags), "bf16": has_bf16(), "int8_dot": has_int8_dot()}
