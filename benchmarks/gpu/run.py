"""GPU benchmark of rtgan's kernels and engines, one command on a CUDA machine:

    python benchmarks/gpu/run.py --out benchmarks/results/gpu

Per kernel (Triton, at the shapes the Cityscapes and landscape models run): time (CUDA events,
`triton.testing.do_bench`), achieved bandwidth or TFLOP/s, the fraction of the device's peak, and
the speedup over the eager PyTorch ops it replaces. End to end, for SPADE, ASAPNet and pix2pixHD at
their Cityscapes presets (256x512, batch 1): eager PyTorch, rtgan's torch engine with the fused
kernels, and ONNX Runtime's CUDA provider when installed.
`--smoke` runs tiny shapes on the CPU through the Triton interpreter: it checks the script, not speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# dense peaks (TFLOP/s fp32 non-tensor, fp16 tensor) of common parts; others: fp32 from SMs x clock
KNOWN_PEAKS = {"H100 80GB HBM3": (67.0, 989.0), "H100 PCIe": (51.0, 756.0), "H200": (67.0, 989.0),
               "A100-SXM4-80GB": (19.5, 312.0), "A100-SXM4-40GB": (19.5, 312.0), "L4": (30.3, 121.0)}  # fmt: skip


def device_peaks() -> dict:
    p = torch.cuda.get_device_properties(0)
    info = {"name": p.name, "sms": p.multi_processor_count, "capability": f"{p.major}.{p.minor}"}
    try:  # memory clock and bus width give the DRAM peak; cupy reads them from the driver
        import cupy

        a = cupy.cuda.runtime.getDeviceProperties(0)
        info["dram_gbs"] = 2 * a["memoryClockRate"] * 1e3 * a["memoryBusWidth"] / 8 / 1e9
        clock_ghz = a["clockRate"] / 1e6
    except Exception:  # noqa: BLE001  (no cupy: leave the fraction of peak empty)
        info["dram_gbs"], clock_ghz = None, None
    fp32, fp16 = next((v for k, v in KNOWN_PEAKS.items() if k in p.name), (None, None))
    if fp32 is None and clock_ghz:
        fp32 = p.multi_processor_count * 128 * 2 * clock_ghz / 1e3
    info["fp32_tflops"], info["fp16_tensor_tflops"] = fp32, fp16
    return info


def timed(fn, smoke: bool) -> float:
    """Milliseconds per call: CUDA events through triton.testing.do_bench, wall clock in smoke mode."""
    if smoke:
        fn()
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3
    from triton.testing import do_bench

    return do_bench(fn, warmup=25, rep=200)


def max_err(got, want) -> float:
    """Largest absolute difference between a kernel's output and its reference's on the same inputs: on
    a GPU the compiled kernel may differ from what the interpreter checked (TF32 dots, fused FMAs)."""
    return float((got.float() - want.float()).abs().max())


def spade_cases(dev, smoke: bool) -> list[dict]:
    from rtgan.kernels.spade_norm import norm_denorm

    shape = (1, 8, 16, 32) if smoke else (1, 64, 256, 512)  # SPADE-cityscapes' last block at 256x512
    rows = []
    for dtype in (torch.float32, torch.float16):
        x = torch.randn(shape, device=dev, dtype=dtype)
        g, b = torch.randn_like(x), torch.randn_like(x)
        mean = torch.randn(shape[1], device=dev)
        var = torch.rand(shape[1], device=dev) + 0.5
        for mode, stats in (("running", (mean, var)), ("instance", ())):

            def eager(x=x, g=g, b=b, stats=stats):
                n = F.batch_norm(x, *stats, eps=1e-5) if stats else F.instance_norm(x, eps=1e-5)
                return F.leaky_relu(n * (1 + g) + b, 0.2)

            fused = lambda x=x, g=g, b=b, stats=stats: norm_denorm(x, g, b, *stats)  # noqa: E731
            ms, ms_eager = timed(fused, smoke), timed(eager, smoke)
            passes = 4 if stats else 5  # x, gamma, beta in, y out (+ x again for the statistics)
            moved = passes * x.numel() * x.element_size()
            rows.append({"kernel": f"spade_norm_denorm {mode}", "dtype": str(dtype).split(".")[-1],
                         "shape": list(shape), "ms": ms, "eager_ms": ms_eager, "speedup": ms_eager / ms,
                         "gb_s": moved / ms / 1e6, "max_err": max_err(fused(), eager())})  # fmt: skip
    return rows


def row_modulate_cases(dev, smoke: bool) -> list[dict]:
    """Sparse SPADE's consumer: 35 class rows plus a row per boundary pixel (10 % of them)."""
    from rtgan.kernels.row_modulate import row_modulate, row_modulate_reference

    n, c, h, w = (1, 8, 16, 32) if smoke else (1, 64, 256, 512)
    rows = torch.randint(0, 35, (n, h, w), device=dev, dtype=torch.int32)
    boundary = torch.rand(n, h, w, device=dev) < 0.1
    rows[boundary] = torch.arange(35, 35 + int(boundary.sum()), device=dev, dtype=torch.int32)
    table = torch.randn(35 + int(boundary.sum()), 2 * c, device=dev)
    out = []
    for dtype in (torch.float32, torch.float16):
        x = torch.randn(n, c, h, w, device=dev, dtype=dtype)
        ms = timed(partial(row_modulate, x, table, rows), smoke)
        ms_eager = timed(partial(row_modulate_reference, x, table, rows), smoke)
        moved = 2 * x.numel() * x.element_size() + rows.numel() * 4  # x in, y out, rows (table rows cached)
        err = max_err(row_modulate(x, table, rows), row_modulate_reference(x, table, rows))
        out.append({"kernel": "row_modulate (sparse SPADE)", "dtype": str(dtype).split(".")[-1], "shape": [n, c, h, w],
                    "ms": ms, "eager_ms": ms_eager, "speedup": ms_eager / ms, "gb_s": moved / ms / 1e6,
                    "max_err": err})  # fmt: skip
    return out


def asap_cases(dev, smoke: bool) -> list[dict]:
    from rtgan.kernels.asap_mlp import asap_mlp, asap_mlp_reference

    rows = []
    # extra float channels: the landscape preset's 4 noise channels, Cityscapes' instance edges
    configs = [("landscape", 15, 4, 32, 4, (1, 256, 256)), ("cityscapes", 35, 1, 64, 5, (1, 256, 512))]
    if smoke:
        configs = [("landscape", 15, 4, 32, 4, (1, 32, 32))]
    for tag, classes, n_extra, hid, depth, (b, h, w) in configs:
        ch = [classes + n_extra + 16] + [hid] * (depth - 1) + [3]
        n_params = sum(co + ci * co for ci, co in zip(ch, ch[1:]))
        labels = torch.randint(0, classes, (b, h, w), device=dev, dtype=torch.int32)
        extra = torch.randn(b, n_extra, h, w, device=dev)
        # FLOPs the fused kernel does per pixel: extra and code rows of layer 1, hidden layers, output layer
        per_pixel = 2 * ((n_extra + 16) * hid + (depth - 2) * hid * hid + hid * 3)
        for dtype in (torch.float32, torch.float16):
            params = torch.randn(b, n_params, h // 16, w // 16, device=dev, dtype=dtype) * 0.2
            e = extra.to(dtype)
            args = (labels, params, classes, ch, 16, e, True)
            ms = timed(partial(asap_mlp, *args), smoke)
            ms_eager = timed(partial(asap_mlp_reference, *args), smoke)
            tflops = per_pixel * b * h * w / ms / 1e9
            rows.append({"kernel": f"asap_pixel_mlp {tag}", "dtype": str(dtype).split(".")[-1], "shape": [b, h, w],
                         "ms": ms, "eager_ms": ms_eager, "speedup": ms_eager / ms, "tflops": tflops,
                         "max_err": max_err(asap_mlp(*args), asap_mlp_reference(*args))})  # fmt: skip
    return rows


def end_to_end(dev, smoke: bool) -> list[dict]:
    from rtgan.engine.torch_backend import TorchBackend
    from rtgan.export import export, model_feeds, reference_image
    from rtgan.models import get_model
    from rtgan.models.init import randomize_like_trained

    rows = []
    presets = {"spade": "spade-cityscapes", "asapnet": "asapnet-cityscapes", "pix2pixhd": "pix2pixhd-label2city-512p"}
    h, w = (256, 512) if not smoke else (256, 256)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "rtgan-gpu-bench"
    for arch, preset in presets.items():
        if smoke and arch != "asapnet":
            continue
        model = randomize_like_trained(get_model(preset), h, w, iterations=1 if smoke else 4).to(dev)
        feeds = model_feeds(model, h, w, batch=1, seed=1)
        art = export(model.cpu(), height=h, width=w, backend="torch", out=work / arch, progress=False, verify=False)
        manifest = json.loads((art / "manifest.json").read_text())
        model.to(dev)
        cases = {"eager PyTorch": partial(reference_image, model, feeds)}
        fused = TorchBackend(art, manifest, device=str(dev), kernels=arch != "pix2pixhd")
        cases["rtgan torch + fused kernels" if fused.kernels else "rtgan torch"] = partial(fused.infer, feeds)
        try:
            import onnxruntime as ort

            if "CUDAExecutionProvider" in ort.get_available_providers() and not smoke:
                from rtgan import Engine

                onnx = export(model.cpu(), height=h, width=w, out=work / f"{arch}-ort", progress=False, verify=False)
                model.to(dev)
                engine = Engine.load(onnx, backend="onnxruntime", device="cuda")
                cases["ONNX Runtime CUDA"] = partial(engine.run, feeds["labels"], feeds.get("instance"))
        except ImportError:
            pass
        base, want = None, None
        for name, fn in cases.items():
            ms = timed(fn, smoke)  # includes host<->device copies of the label map and image, as a caller pays
            img = np.asarray(fn()).astype(np.int16)
            base, want = base or ms, img if want is None else want
            rows.append({"arch": arch, "case": name, "ms": ms, "vs_eager": base / ms, "size": [h, w],
                         "max_diff_levels": int(np.abs(img - want).max())})  # fmt: skip
    return rows + stylegan_end_to_end(dev, smoke)


def stylegan_end_to_end(dev, smoke: bool) -> list[dict]:
    """StyleGAN eager with its AdaIN as the fused norm-denorm kernel (what CUDA tensors get) against the
    same model with the kernel switched off: the official code's instance norm + affine."""
    from unittest import mock

    from rtgan.models import stylegan
    from rtgan.models.stylegan import StyleGANConfig, StyleGANGenerator

    size = 64 if smoke else 1024
    model = StyleGANGenerator(StyleGANConfig(size=size)).eval().to(dev)
    g = torch.Generator(device="cpu").manual_seed(3)
    z = torch.randn(1, 512, generator=g).to(dev)
    steps = int(np.log2(size // 4))  # blocks at 4, 8, ... size px, one noise map each
    noise = [torch.randn(1, 1, 4 * 2**i, 4 * 2**i, generator=g).to(dev) for i in range(steps + 1)]

    def paint():
        with torch.inference_mode():
            return model(z, noise=noise)

    fused_ms, fused = timed(paint, smoke), paint()
    with mock.patch.object(stylegan, "use_adain_kernel", lambda x, gamma: False):
        eager_ms, eager = timed(paint, smoke), paint()
    diff = float((fused - eager).abs().max())
    return [{"arch": "stylegan", "case": "eager (instance norm + affine)", "ms": eager_ms, "vs_eager": 1.0,
             "size": [size, size], "max_diff_levels": 0},
            {"arch": "stylegan", "case": "eager + fused AdaIN kernel", "ms": fused_ms, "vs_eager": eager_ms / fused_ms,
             "size": [size, size], "max_abs_diff": diff,
             "max_diff_levels": int(round(diff * 127.5))}]  # fmt: skip


def markdown(result: dict) -> str:
    d = result["device"]
    lines = [f"Device: {d.get('name')} ({d.get('sms')} SMs), DRAM peak {d.get('dram_gbs')} GB/s, "
             f"fp32 {d.get('fp32_tflops')} / fp16 tensor {d.get('fp16_tensor_tflops')} TFLOP/s", "",
             "| kernel | dtype | shape | ms | eager ms | speedup | GB/s or TFLOP/s | % of peak | max abs err |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in result["kernels"]:
        if "gb_s" in r:
            rate, peak = f"{r['gb_s']:.0f} GB/s", d.get("dram_gbs")
            frac = r["gb_s"] / peak if peak else None
        else:
            rate = f"{r['tflops']:.2f} TFLOP/s"
            peak = d.get("fp16_tensor_tflops") if r["dtype"] == "float16" else d.get("fp32_tflops")
            frac = r["tflops"] / peak if peak else None
        pct = f"{100 * frac:.0f}%" if frac is not None else "n/a"
        lines.append(f"| {r['kernel']} | {r['dtype']} | {r['shape']} | {r['ms']:.3f} | {r['eager_ms']:.3f} | "
                     f"{r['speedup']:.1f}x | {rate} | {pct} | {r['max_err']:.2g} |")  # fmt: skip
    lines += ["", "| architecture | case | ms | vs eager | max diff vs eager (uint8 levels) |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['arch']} | {r['case']} | {r['ms']:.2f} | {r['vs_eager']:.2f}x | {r['max_diff_levels']} |"
        for r in result["end_to_end"]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/gpu")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU (Triton interpreter)")
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args(argv)
    if args.smoke:
        os.environ.setdefault("TRITON_INTERPRET", "1")
        dev, peaks = torch.device("cpu"), {"name": "cpu (smoke)"}
    else:
        if not torch.cuda.is_available():
            print("no CUDA device: run this on a GPU machine (or --smoke to check the script)", file=sys.stderr)
            return 2
        dev, peaks = torch.device("cuda"), device_peaks()
    torch.manual_seed(0)
    kernels = spade_cases(dev, args.smoke) + row_modulate_cases(dev, args.smoke) + asap_cases(dev, args.smoke)
    result = {"device": peaks, "kernels": kernels}
    result["end_to_end"] = [] if args.skip_e2e else end_to_end(dev, args.smoke)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "gpu.md").write_text(markdown(result) + "\n")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
