"""Ahead-of-time compilation of every Triton kernel to cubin, per GPU architecture, with no GPU.

    python -m rtgan.kernels.aot --out build/kernels            # sm_80, sm_86, sm_89, sm_90
    python -m rtgan.kernels.aot --arch 86 --markdown           # the resource table for BENCHMARKS.md

Each variant (kernel x dtype x mode) is compiled with `triton.compile(..., target=GPUTarget)`;
registers and spills come from running Triton's bundled ptxas with -v on the same PTX, shared
memory and the hidden scratch parameters from Triton's metadata (a launcher outside Triton, such
as a TensorRT plugin, must pass those scratch pointers: null when their sizes are 0, as here).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

from .triton_util import triton

ARCHS = (80, 86, 89, 90)


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    fn: object
    signature: dict
    constexprs: dict
    num_warps: int = 4


def variants() -> list[Variant]:
    """Every kernel variant the runtime can launch (signatures come from the kernels' own modules)."""
    from . import asap_mlp as am
    from . import spade_norm as sn

    out = []
    for dt in ("fp32", "fp16"):
        out.append(Variant(f"spade_plane_stats_{dt}", sn._plane_stats, *sn.stats_signature(dt)))
        for instance in (True, False):
            mode = "instance" if instance else "stats"  # stats: running (C,) or per-sample (N, C), as the plugin
            out.append(Variant(f"spade_norm_denorm_{mode}_{dt}", sn._norm_denorm, *sn.kernel_signature(dt, instance)))
    from . import row_modulate as rm

    for dt in ("fp32", "fp16"):
        out.append(Variant(f"row_modulate_{dt}", rm._row_modulate, *rm.kernel_signature(dt)))
    # ASAPNet: the landscape preset (15 classes + 4 noise channels, tile 16, width 32, depth 4) and
    # Cityscapes' (35 classes + instance edges, width 64, depth 5), fp32 and fp16 parameters, float
    # and uint8 output
    for tag, classes, extra, hid, depth in (("landscape", 15, 4, 32, 4), ("cityscapes", 35, 1, 64, 5)):
        channels = [classes + extra + 16] + [hid] * (depth - 1) + [3]
        for dt in ("fp32", "fp16"):
            for u8 in (False, True):
                sig, consts, warps = am.kernel_signature(dt, classes, channels, 16, extra, u8)
                out.append(Variant(f"asap_mlp_{tag}_{dt}_{'u8' if u8 else dt}", am._asap_mlp, sig, consts, warps))
    return out


def ptxas(ptx: str, arch: int) -> tuple[bytes, str]:
    """Assemble PTX with Triton's bundled ptxas -v (it accepts any PTX Triton emits) -> (cubin, ptxas log)."""
    from triton.backends.nvidia.compiler import get_ptxas

    tool = get_ptxas(arch).path
    sm = f"sm_{arch}a" if arch == 90 else f"sm_{arch}"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "k.ptx", Path(tmp) / "k.cubin"
        src.write_text(ptx)
        res = subprocess.run([tool, "-v", f"-arch={sm}", str(src), "-o", str(dst)], capture_output=True, text=True)
        if res.returncode:
            raise RuntimeError(f"ptxas failed for sm_{arch}: {res.stderr.strip()[-2000:]}")
        return dst.read_bytes(), res.stderr + res.stdout


def _ptxas_usage(ptx: str, arch: int) -> dict:
    """Registers, spill bytes and stack from ptxas -v."""
    info = ptxas(ptx, arch)[1]
    regs = re.search(r"Used (\d+) registers", info)
    spill_st = re.search(r"(\d+) bytes spill stores", info)
    spill_ld = re.search(r"(\d+) bytes spill loads", info)
    stack = re.search(r"(\d+) bytes stack frame", info)
    return {
        "registers": int(regs.group(1)) if regs else None,
        "spill_bytes": (int(spill_st.group(1)) if spill_st else 0) + (int(spill_ld.group(1)) if spill_ld else 0),
        "stack_bytes": int(stack.group(1)) if stack else 0,
    }


def compile_kernel(fn, signature: dict, constexprs: dict, num_warps: int, arch: int, ptx_version: int | None = None):
    """One Triton kernel compiled for `arch` (x10) with no GPU; `ptx_version` pins the PTX ISA (e.g. 84)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    options = {"num_warps": num_warps} | ({"ptx_version": ptx_version} if ptx_version else {})
    return triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs),
                          target=GPUTarget("cuda", arch, 32), options=options)  # fmt: skip


def compile_variant(v: Variant, arch: int, out: Path | None = None) -> dict:
    kernel = compile_kernel(v.fn, v.signature, v.constexprs, v.num_warps, arch)
    cubin, md = kernel.asm["cubin"], kernel.metadata
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{v.name}.sm_{arch}.cubin").write_bytes(cubin)
    return {
        "kernel": v.name,
        "arch": f"sm_{arch}",
        "cubin_bytes": len(cubin),
        "elf": cubin[:4] == b"\x7fELF",
        "num_warps": md.num_warps,
        "shared_bytes": md.shared,
        "scratch_bytes": md.global_scratch_size + md.profile_scratch_size,
        **_ptxas_usage(kernel.asm["ptx"], arch),
    }


def compile_all(archs=ARCHS, out: Path | None = None, names: list[str] | None = None) -> list[dict]:
    if triton is None:
        raise RuntimeError("Triton is not installed: pip install 'rtgan[kernels]'")
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError("TRITON_INTERPRET is set: kernels are interpreted, not compiled; unset it for AOT")
    chosen = [v for v in variants() if names is None or v.name in names]
    if names is not None and len(chosen) != len(set(names)):
        raise ValueError(f"unknown kernel variants: {sorted(set(names) - {v.name for v in chosen})}")
    return [compile_variant(v, a, out) for v in chosen for a in archs]


def markdown(rows: list[dict]) -> str:
    lines = [
        "| kernel | arch | registers | shared B | spills B | stack B | warps | cubin B |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kernel']} | {r['arch']} | {r['registers']} | {r['shared_bytes']} | {r['spill_bytes']} | "
            f"{r['stack_bytes']} | {r['num_warps']} | {r['cubin_bytes']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m rtgan.kernels.aot", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--arch", type=int, action="append", help="compute capability x10 (default: 80 86 89 90)")
    ap.add_argument("--out", type=Path, help="write the cubins here")
    ap.add_argument("--markdown", action="store_true", help="print the resource table")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--only", nargs="+", metavar="VARIANT", help="compile these variants only")
    args = ap.parse_args(argv)
    rows = compile_all(tuple(args.arch or ARCHS), args.out, args.only)
    print(json.dumps(rows) if args.json else markdown(rows) if args.markdown else "\n".join(map(str, rows)))


if __name__ == "__main__":
    main()
