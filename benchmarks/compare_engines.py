"""Two engine artifacts of the same model, timed side by side: runs alternate A, B, A, B... in one
process, so the machine's noise hits both alike. Prints p50 of each, B/A and the largest pixel
difference between their images on the same inputs.

    python benchmarks/compare_engines.py A_DIR B_DIR [A_DIR B_DIR ...] --backends onnxruntime openvino
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from rtgan import Engine
from rtgan.export import sample_feeds


def compare(a: str, b: str, backend: str, repeats: int) -> dict:
    engines = {"a": Engine.load(a, backend=backend, threads=2), "b": Engine.load(b, backend=backend, threads=2)}
    feeds = sample_feeds(engines["a"].manifest, batch=1)
    images = {k: e.run(**feeds) for k, e in engines.items()}  # also the warm-up
    times = {k: [] for k in engines}
    for _ in range(repeats):
        for k, e in engines.items():
            start = time.perf_counter()
            e.run(**feeds)
            times[k].append(time.perf_counter() - start)
    pa, pb = (float(np.median(times[k])) * 1e3 for k in ("a", "b"))
    diff = int(np.abs(images["a"].astype(int) - images["b"].astype(int)).max())
    return {"a": a, "b": b, "backend": backend, "a_ms": round(pa, 2), "b_ms": round(pb, 2),
            "b_over_a": round(pb / pa, 3), "max_abs_uint8": diff}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", help="pairs of artifact directories: A B [A B ...]")
    ap.add_argument("--backends", nargs="+", default=["onnxruntime", "openvino"])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", help="write the rows as JSON here")
    args = ap.parse_args()
    if len(args.dirs) % 2:
        ap.error("give the artifact directories in pairs")
    rows = []
    for a, b in zip(args.dirs[::2], args.dirs[1::2]):
        for backend in args.backends:
            r = compare(a, b, backend, args.repeats)
            rows.append(r)
            print(f"{b:40s} {backend:12s} A {r['a_ms']:8.1f} ms  B {r['b_ms']:8.1f} ms  B/A {r['b_over_a']:.2f}  "
                  f"max|A-B| {r['max_abs_uint8']}", flush=True)  # fmt: skip
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
