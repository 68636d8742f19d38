"""CPU: SPADE-cityscapes 256x512 with boundary-sparse modulation vs the dense engine vs official-style eager.

    python benchmarks/sparse_spade.py --repeats 3 --out benchmarks/results/sparse_spade

Same weights (random, behaving like trained ones), same process, cases interleaved per repeat.
Maps: a procedural landscape (15 classes placed on Cityscapes ids, each region one instance) and
an adversarial checkerboard of 4-pixel cells. Reports each map's boundary density (pixels whose
5x5 window is not one class, at full resolution and averaged over the SPADE layers' resolutions).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def boundary_density(labels: torch.Tensor) -> float:
    lab = labels.float()[None, None]
    return float((F.max_pool2d(lab, 5, 1, 2) != -F.max_pool2d(-lab, 5, 1, 2)).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/sparse_spade")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from rtgan import Engine
    from rtgan.data import landscapes as L
    from rtgan.export import export
    from rtgan.kernels.sparse_spade import calibrate, sparsify
    from rtgan.models import get_model
    from rtgan.models.init import randomize_like_trained

    h, w = 256, 512
    dense = randomize_like_trained(get_model("spade-cityscapes"), h, w, iterations=2).eval()
    sparse = sparsify(copy.deepcopy(dense))
    index = np.zeros(256, np.int64)
    index[list(L.LABEL_IDS)] = np.arange(len(L.LABEL_IDS))
    other = torch.from_numpy(index[L.layout(11, h, w)] + 7)[None]  # another landscape, for calibration
    with torch.inference_mode():  # per-layer fallback densities from timings of both paths
        report = calibrate(sparse, dense.prepare(other, other))
    artifact = export(dense, height=h, width=w, backend="onnxruntime", progress=False)
    engine = Engine.load(artifact, "onnxruntime", threads=args.threads)

    city = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27]
    lut = np.zeros(256, np.int64)
    for i, v in enumerate(L.LABEL_IDS):
        lut[v] = city[i]
    land = torch.from_numpy(lut[L.layout(3, h, w)])
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    checker = torch.where((y // 4 + x // 4) % 2 == 0, 7, 26)
    results = {}
    for name, labels in (("landscape", land), ("checkerboard 4px", checker)):
        ids = labels.numpy().astype(np.int32)
        with torch.inference_mode():
            sem = dense.prepare(labels[None], labels[None])
            ref = dense(sem)
            err = float((sparse(sem) - ref).abs().max())
            cases = {
                "eager dense (official-style)": lambda sem=sem: dense(sem),
                "eager boundary-sparse": lambda sem=sem: sparse(sem),
                "onnxruntime engine (dense)": lambda ids=ids: engine.run(ids, ids),
            }
            times = {k: [] for k in cases}
            for fn in cases.values():
                fn()  # warm-up
            for _ in range(args.repeats):
                for k, fn in cases.items():
                    t = time.perf_counter()
                    fn()
                    times[k].append((time.perf_counter() - t) * 1e3)
        med = {k: float(np.median(v)) for k, v in times.items()}
        base = med["eager dense (official-style)"]
        layer_sizes = [(h >> s, w >> s) for s in range(0, 7)]
        per_layer = [boundary_density(F.interpolate(labels[None, None].float(), size=s, mode="nearest")[0, 0])
                     for s in layer_sizes]  # fmt: skip
        results[name] = {
            "boundary_density_full_res": round(boundary_density(labels), 4),
            "boundary_density_mean_over_layers": round(float(np.mean(per_layer)), 4),
            "max_abs_diff_sparse_vs_dense": err,
            "median_ms": {k: round(v, 1) for k, v in med.items()},
            "speedup_vs_eager": {k: round(base / v, 2) for k, v in med.items()},
        }
        print(name, json.dumps(results[name], indent=1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results["calibration"] = report
    (out / "sparse_spade.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
