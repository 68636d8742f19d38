"""Engine-only latency of a bundled model at 256x256, per CPU runtime, rounds interleaved:

    python benchmarks/demo_engine.py --out benchmarks/results/demo [--baseline ARTIFACT_DIR ...]
    python benchmarks/demo_engine.py --model landscape-pix2pixhd --rewrites default no_resize_fold --out DIR

Exports the model (default: the demo's `landscape-asapnet`; a bundled name or a model directory)
with each named rewrite set (default: the default rewrites and label gathers), for ONNX Runtime
and OpenVINO, and times `Engine.run` on one landscape label map; `--baseline` adds exported
artifacts from another checkout (e.g. an older demo cache) to the same rounds, for before/after ratios.
Every engine's image is compared with the first one's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from rtgan import models, weights
    from rtgan.data.landscapes import layout
    from rtgan.engine import Engine
    from rtgan.export import export
    from rtgan.export.rewrite import Rewrites

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rewrite_sets = {
        "default": Rewrites(),
        "label_gather": Rewrites(label_gather=True),
        "no_resize_fold": Rewrites(fold_resize_conv=False),
    }
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/demo")
    ap.add_argument("--model", default="landscape-asapnet", help="a bundled model's name or a model directory")
    ap.add_argument("--rewrites", nargs="+", default=["default", "label_gather"], choices=list(rewrite_sets))
    ap.add_argument("--baseline", nargs="*", default=[], help="exported artifact directories to time alongside")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30, help="timed runs per engine per round")
    args = ap.parse_args(argv)

    net = models.load(args.model if Path(args.model).is_dir() else weights.path(args.model))
    labels = layout(0, 256, 256).astype(np.int32)[None]
    engines = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("onnxruntime", "openvino"):
            for name in args.rewrites:
                rw = rewrite_sets[name]
                art = export(net, height=256, width=256, backend=backend, out=f"{tmp}/{backend}-{name}", rewrites=rw)
                engines[f"{backend} {name}"] = Engine.load(art, backend)
        for d in args.baseline:
            manifest = json.loads((Path(d) / "manifest.json").read_text())
            engines[f"baseline {manifest['backend']} {Path(d).name}"] = Engine.load(d, manifest["backend"])
        first = next(iter(engines.values())).run(labels).astype(int)
        diff = {k: int(np.abs(e.run(labels).astype(int) - first).max()) for k, e in engines.items()}
        for e in engines.values():
            for _ in range(10):
                e.run(labels)
        times = {k: [] for k in engines}
        for _ in range(args.rounds):
            for k, e in engines.items():
                for _ in range(args.runs):
                    t = time.perf_counter()
                    e.run(labels)
                    times[k].append(time.perf_counter() - t)
    rows = [
        {
            "engine": k,
            "p50_ms": float(np.median(t) * 1e3),
            "p90_ms": float(np.percentile(t, 90) * 1e3),
            "fps": float(1 / np.median(t)),
            "max_abs_diff_vs_first": diff[k],
        }
        for k, t in times.items()
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "engine.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("| engine | p50 ms | p90 ms | fps | max diff vs first (uint8) |\n|---|---|---|---|---|")
    for r in rows:
        d = r["max_abs_diff_vs_first"]
        print(f"| {r['engine']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['fps']:.1f} | {d} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
