"""ASAPNet's fused CPU pixelwise MLP (rtgan/kernels/asap_mlp_openvino.cpp), measured side by side.

    python benchmarks/fused_mlp.py --out benchmarks/results/fused_mlp

1. The op alone: the full-resolution stream of the bundled landscape-asapnet (its MLP parameters,
   channels-last, from its own low-res stream on a landscape) as the standard-op graph (one-hot, tiles, matmuls,
   activations, uint8) on ONNX Runtime and OpenVINO, and as the one OpenVINO op, at 256 and 512.
2. Whole engines: ONNX Runtime fp32 (the standard graph: what every CPU engine was before), OpenVINO
   fp32 / bf16 with the standard graph and with the fused op, at 256x256 and 512x512; their worst
   PSNR against the PyTorch reference on 4 held-out landscape maps.

Runs alternate between variants in one process (the machine's noise hits all alike) with a pause
between them, since ONNX Runtime's worker threads spin for a while after each run and would slow
whatever runs next. Medians; ratios against ONNX Runtime fp32.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from rtgan import Engine, weights
from rtgan.data import landscapes
from rtgan.engine import openvino_ext
from rtgan.export import export
from rtgan.export.exporter import psnr, reference_image
from rtgan.export.plugins import register_symbolics
from rtgan.export.rewrite import TiledHighResStream, to_uint8
from rtgan.models import load
from rtgan.models.asapnet import HighResStream
from rtgan.models.labels import noise_map
from rtgan.utils import cpu


class Stream(torch.nn.Module):
    """The full-resolution stream alone: (ids, params) -> uint8 image, standard ops or the fused op."""

    def __init__(self, model, kernel: bool):
        super().__init__()
        c = model.config
        self.nc, self.noise_nc = c.num_classes, c.noise_nc
        self.stream = TiledHighResStream(HighResStream(c), c.num_classes, gather=False, kernel=kernel)
        self.octaves = model.noise_octaves

    def forward(self, ids: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        # params come channels-last, as the engines' last 1x1 convolution writes them for the op
        params = params.permute(0, 3, 1, 2)
        sem = (ids.long().unsqueeze(1) == torch.arange(self.nc).view(1, -1, 1, 1)).float()
        out = self.stream(sem, noise_map(sem, None, self.noise_nc, self.octaves), params)
        return out if out.dtype == torch.uint8 else to_uint8(out)


def _timed(runs: dict, repeats: int) -> dict[str, float]:
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, run in runs.items():
            time.sleep(0.05)  # let ONNX Runtime's spinning threads park
            start = time.perf_counter()
            run()
            times[k].append(time.perf_counter() - start)
    return {k: float(np.median(v)) * 1e3 for k, v in times.items()}


def op_alone(model, size: int, out: Path, repeats: int) -> dict:
    import onnxruntime as ort
    import openvino as ov

    lut = {v: i for i, v in enumerate(model.config.label_ids)}
    scene = landscapes.layout(3, size, size)
    ids = np.vectorize(lut.get)(scene).astype(np.int32)[None]
    with torch.no_grad():
        params = model.lowres_stream(model.prepare(torch.from_numpy(scene.astype(np.int64))[None]))
        params = params.permute(0, 2, 3, 1).contiguous()
    files = {}
    register_symbolics()
    for name, kernel in (("standard", False), ("fused", True)):
        files[name] = out / f"stream-{name}-{size}.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(Stream(model, kernel), (torch.from_numpy(ids), params), str(files[name]),
                              input_names=["ids", "params"], output_names=["image"], opset_version=18,
                              dynamo=False, custom_opsets={"rtgan": 1})  # fmt: skip
    feeds = {"ids": ids, "params": params.numpy()}
    core = ov.Core()
    openvino_ext.add_to(core)
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2}
    compiled = {n: core.compile_model(str(f), "CPU", config) for n, f in files.items()}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(files["standard"]), options, providers=["CPUExecutionProvider"])
    runs = {"onnxruntime standard": lambda: session.run(None, feeds),
            "openvino standard": lambda: compiled["standard"](feeds),
            "openvino fused op": lambda: compiled["fused"](feeds)}  # fmt: skip
    ms = _timed(runs, repeats)
    images = {k: np.asarray(r()[0]) for k, r in runs.items()}
    base = images["onnxruntime standard"].astype(int)
    return {k: {"ms": round(v, 2), "speedup": round(ms["onnxruntime standard"] / v, 2),
                "max_abs_uint8_vs_onnxruntime": int(np.abs(images[k].astype(int) - base).max())}
            for k, v in ms.items()}  # fmt: skip


def engines(model, size: int, out: Path, repeats: int) -> dict:
    shipped = weights.path("landscape-asapnet") / f"engine-{size}x{size}"
    if size == 512 and shipped.is_dir():
        path = shipped
    else:
        path = export(model, height=size, width=size, out=out / f"engine-{size}", plugins=True, compact=True,
                      progress=False, verify=False, force=True)  # fmt: skip
    variants = {"onnxruntime fp32": ("onnxruntime", "fp32", None),
                "openvino fp32 standard": ("openvino", "fp32", False),
                "openvino bf16 standard": ("openvino", "bf16", False),
                "openvino fp32 fused": ("openvino", "fp32", True),
                "openvino bf16 fused": ("openvino", "bf16", True)}  # fmt: skip
    if not cpu.has_bf16():
        variants = {k: v for k, v in variants.items() if "bf16" not in k}
    loaded = {k: Engine.load(path, b, precision=p, kernels=kern, threads=2) for k, (b, p, kern) in variants.items()}
    maps = [landscapes.layout(seed, size, size) for seed in (101, 102, 103, 104)]
    refs = [reference_image(model, {"labels": m[None].astype(np.int32)}) for m in maps]
    ms = _timed({k: (lambda e=e: e.run(maps[0])) for k, e in loaded.items()}, repeats)
    result = {}
    for k, e in loaded.items():
        worst = min(psnr(e.run(m)[None], r) for m, r in zip(maps, refs))
        result[k] = {"ms": round(ms[k], 2), "speedup": round(ms["onnxruntime fp32"] / ms[k], 2),
                     "psnr_db": round(min(worst, 99.0), 2), "kernels": e.kernels}  # fmt: skip
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default="benchmarks/results/fused_mlp")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model = load(weights.path("landscape-asapnet")).eval()
    results = {"cpu": cpu.summary(), "op": {}, "engine": {}}
    with tempfile.TemporaryDirectory() as tmp:  # the graphs and engines measured: not results
        for size in a.sizes:
            print(f"{size}x{size}: the op alone", flush=True)
            results["op"][size] = op_alone(model, size, Path(tmp), a.repeats)
            print(f"{size}x{size}: whole engines", flush=True)
            results["engine"][size] = engines(model, size, Path(tmp), a.repeats)
    (out / "fused_mlp.json").write_text(json.dumps(results, indent=1) + "\n")
    for part in ("op", "engine"):
        print(f"\n| {part} | size | ms | vs ONNX Runtime fp32 |" + (" PSNR dB |" if part == "engine" else ""))
        print("|---|---|---|---|" + ("---|" if part == "engine" else ""))
        for size, rows in results[part].items():
            for k, r in rows.items():
                extra = f" {r['psnr_db']} |" if part == "engine" else ""
                print(f"| {k} | {size}x{size} | {r['ms']} | {r['speedup']}x |{extra}")


if __name__ == "__main__":
    main()
