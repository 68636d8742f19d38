"""CPU engines: SPADE-cityscapes 256x512, dense vs boundary-sparse graph (rtgan.export.sparse_graph).

    python benchmarks/sparse_spade_engine.py --repeats 3 [--int8]

Same random weights as benchmarks/sparse_spade.py (behaving like trained ones), one process, cases
interleaved per repeat, median ms. Engines are rtgan's own backends (ONNX Runtime, OpenVINO with
`openvino_config`: f32 or the bf16 hint, 2 threads) on a dense graph (the default rewrites) and on
the sparse one; `--int8` adds both graphs quantized by NNCF (plain post-training quantization on
4 landscapes, no accuracy control, so the dense one is not the exported int8 artifact). Maps: a
landscape (seed 3) and the adversarial checkerboard of 4-pixel cells. Writes
benchmarks/results/sparse_spade_engine/sparse_spade_engine.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

H, W = 256, 512
CITY = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27]  # landscape classes -> Cityscapes ids


def landscape(seed: int) -> np.ndarray:
    from rtgan.data import landscapes as L

    lut = np.zeros(256, np.int64)
    lut[list(L.LABEL_IDS)] = CITY
    return lut[L.layout(seed, H, W)].astype(np.int32)


def checkerboard() -> np.ndarray:
    y, x = np.mgrid[:H, :W]
    return np.where((y // 4 + x // 4) % 2 == 0, 7, 26).astype(np.int32)


def int8_model(onnx_path: Path, feeds: list[dict]):
    import nncf
    import openvino as ov

    return nncf.quantize(ov.Core().read_model(str(onnx_path)), nncf.Dataset(feeds), subset_size=len(feeds))


class Compiled:
    """An OpenVINO compiled model with the backends' `infer(feeds)`."""

    def __init__(self, compiled):
        self.request = compiled.create_infer_request()

    def infer(self, feeds: dict) -> np.ndarray:
        return self.request.infer(feeds)[0].copy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-pixels", type=int, default=64 * 128, help="layers below this stay dense")
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/sparse_spade_engine")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import openvino as ov

    from rtgan.engine.backends import OnnxRuntimeBackend, OpenVINOBackend, openvino_config
    from rtgan.export.exporter import psnr
    from rtgan.export.graph import inference_graph
    from rtgan.export.onnx import export_onnx
    from rtgan.export.rewrite import to_uint8
    from rtgan.export.sparse_graph import sparse_inference_graph
    from rtgan.models import get_model
    from rtgan.models.init import randomize_like_trained

    dense = randomize_like_trained(get_model("spade-cityscapes"), H, W, iterations=2).eval()
    sparse_graph = sparse_inference_graph(dense, H, W, args.min_pixels)
    tmp = Path(tempfile.mkdtemp(prefix="sparse_spade_engine_"))
    dirs = {"dense": tmp / "dense", "sparse": tmp / "sparse"}
    exported = {}
    for name, graph in (("dense", inference_graph(dense, H, W)), ("sparse", sparse_graph)):
        dirs[name].mkdir()
        t = time.perf_counter()
        export_onnx(graph, dirs[name] / "model.onnx")
        exported[name] = round(time.perf_counter() - t, 1)
    engines = {}
    for name, d in dirs.items():
        engines[f"onnxruntime {name} fp32"] = OnnxRuntimeBackend(d, {}, threads=args.threads)
    for precision in ("fp32", "bf16"):
        for name, d in dirs.items():
            engines[f"openvino {name} {precision}"] = OpenVINOBackend(d, {"precision": precision}, threads=args.threads)
    if args.int8:
        calib = [{"labels": m[None], "instance": m[None]} for m in (landscape(s) for s in (11, 12, 13, 14))]
        for name, d in dirs.items():
            compiled = ov.Core().compile_model(
                int8_model(d / "model.onnx", calib), "CPU", openvino_config("int8", args.threads)
            )
            engines[f"openvino {name} int8"] = Compiled(compiled)

    results = {"exported_seconds": exported, "min_pixels": args.min_pixels, "maps": {}}
    for map_name, ids in (("landscape", landscape(3)), ("checkerboard 4px", checkerboard())):
        feeds = {"labels": ids[None], "instance": ids[None]}
        with torch.inference_mode():
            labels = torch.from_numpy(ids[None])
            sem = dense.prepare(labels, labels)
            ref = dense(sem)
            err = float((sparse_graph.model(sem) - ref).abs().max())  # the sparse graph's math, eager, float
            ref8 = to_uint8(ref).numpy()
        cases = {"eager dense (official-style)": lambda sem=sem: dense(sem)}
        cases |= {k: (lambda e=e, f=feeds: e.infer(f)) for k, e in engines.items()}
        images = {k: e.infer(feeds) for k, e in engines.items()}  # also the warm-up
        fidelity = {k: round(min(99.0, psnr(im, ref8)), 2) for k, im in images.items()}
        levels = {k: int(np.abs(im.astype(int) - ref8).max()) for k, im in images.items()}
        times = {k: [] for k in cases}
        with torch.inference_mode():
            dense(sem)
            for _ in range(args.repeats):
                for k, fn in cases.items():
                    t = time.perf_counter()
                    fn()
                    times[k].append((time.perf_counter() - t) * 1e3)
        med = {k: float(np.median(v)) for k, v in times.items()}
        eager = med["eager dense (official-style)"]
        results["maps"][map_name] = {
            "load_average_1min_after": round(os.getloadavg()[0], 2),  # > threads: another process shared the CPU
            "max_abs_diff_sparse_vs_dense_float": err,
            "median_ms": {k: round(v, 1) for k, v in med.items()},
            "speedup_vs_eager": {k: round(eager / v, 2) for k, v in med.items()},
            "sparse_vs_dense_engine": {
                k: round(med[k.replace(" sparse ", " dense ")] / med[k], 2) for k in engines if " sparse " in k
            },
            "psnr_vs_torch_db": fidelity,
            "max_level_diff_vs_torch": levels,
        }
        print(map_name, json.dumps(results["maps"][map_name], indent=1), flush=True)
    shutil.rmtree(tmp)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sparse_spade_engine.json").write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results))


def markdown(results: dict) -> str:
    maps = results["maps"]
    names = list(next(iter(maps.values()))["median_ms"])
    head = "| engine | " + " | ".join(f"{m}: ms, × eager, PSNR dB" for m in maps) + " |"
    rows = [head, "|---|" + "---|" * len(maps)]
    for k in names:
        cells = []
        for r in maps.values():
            p = r["psnr_vs_torch_db"].get(k)
            cells.append(f"{r['median_ms'][k]:.0f}, {r['speedup_vs_eager'][k]:.2f}×" + (f", {p}" if p else ""))
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    rows += ["", "| sparse / dense engine | " + " | ".join(maps) + " |", "|---|" + "---|" * len(maps)]
    for k in next(iter(maps.values()))["sparse_vs_dense_engine"]:
        rows.append(f"| {k} | " + " | ".join(f"{r['sparse_vs_dense_engine'][k]:.2f}×" for r in maps.values()) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
