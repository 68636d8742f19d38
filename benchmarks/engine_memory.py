"""Peak resident memory of an engine process with and without PyTorch, side by side:

    python benchmarks/engine_memory.py --out benchmarks/results/engine-memory

For each bundled model that ships its engine and each CPU runtime, two fresh processes load the
engine and paint 20 frames of a 256x256 landscape: one as a deployment runs it (NumPy and the
runtime only; it asserts torch never loaded), one that has imported torch first (as any process
that also holds the models does). Rounds alternate the two so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import resource, sys, time
{preload}
import numpy as np
from rtgan import Engine, weights
from rtgan.data.landscapes import layout
engine = Engine.load(weights.path({name!r}) / "engine", {backend!r}, threads=2)
labels = layout(3, 256, 256)
engine.run(labels)
t = time.perf_counter()
for _ in range(20):
    engine.run(labels)
ms = (time.perf_counter() - t) / 20 * 1e3
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, ms, "torch" in sys.modules)
"""


def measure(name: str, backend: str, with_torch: bool) -> dict:
    code = PROBE.format(preload="import torch" if with_torch else "", name=name, backend=backend)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    rss, ms, torch_loaded = out.split()
    assert (torch_loaded == "True") == with_torch
    return {"rss_mb": float(rss), "ms": float(ms)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/engine-memory")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from rtgan import weights

    names = [n for n in weights.BUNDLED if (weights.path(n) / "engine" / "manifest.json").is_file()]
    rows = []
    for name in names:
        for backend in ("openvino", "onnxruntime"):
            runs = {False: [], True: []}
            for _ in range(args.rounds):
                for with_torch in (False, True):
                    runs[with_torch].append(measure(name, backend, with_torch))
            best = {k: min(r["rss_mb"] for r in v) for k, v in runs.items()}
            ms = {k: sorted(r["ms"] for r in v)[len(v) // 2] for k, v in runs.items()}
            rows.append({"model": name, "backend": backend, "rss_mb_no_torch": round(best[False], 1),
                         "rss_mb_with_torch": round(best[True], 1), "ratio": round(best[True] / best[False], 2),
                         "ms_no_torch": round(ms[False], 1), "ms_with_torch": round(ms[True], 1)})  # fmt: skip
            print(rows[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine_memory.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
