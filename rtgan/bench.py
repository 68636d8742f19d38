"""python -m rtgan.bench: latency of rtgan engines vs the eager PyTorch reference, side by side in one run.

Per architecture (SPADE, ASAPNet, pix2pixHD at their Cityscapes presets) it measures, each in a
fresh process so peak memory and thread pools do not leak between cases: the eager reference
(prepare + forward, numerically the official model), a naive ONNX export of it (no rewrites) on
ONNX Runtime, and rtgan's engine on each requested backend. Every latency is also a ratio to the
eager reference, and throughput is set against a matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .utils.cli import parse_size

PRESETS = {"spade": "spade-cityscapes", "asapnet": "asapnet-cityscapes", "pix2pixhd": "pix2pixhd-label2city-512p"}


def _percentiles(times: list[float]) -> dict:
    ms = np.array(times) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "runs": len(times),
    }


def _time(fn, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def _case(spec: dict) -> dict:
    """One measurement in a fresh process: returns latency percentiles and the process's peak RSS."""
    threads = spec["threads"]
    os.environ["OMP_NUM_THREADS"] = str(threads)
    feeds = {k: np.asarray(v) for k, v in np.load(spec["feeds"]).items()}
    if spec["kind"] == "eager":
        import torch

        from .models import load

        torch.set_num_threads(threads)
        from .export import reference_image

        model = load(spec["model"])
        run = lambda: reference_image(model, feeds)  # noqa: E731

    else:
        from .engine import Engine

        engine = Engine.load(spec["artifact"], backend=spec["backend"], threads=threads)
        run = lambda: engine.run(feeds["labels"], feeds.get("instance"), feeds.get("z"))  # noqa: E731
    result = _percentiles(_time(run, spec["repeats"]))
    np.save(spec["image"], run())
    result["peak_rss_mb"] = _peak_rss_mb()
    if spec.get("profile") and spec["kind"] != "eager":
        result["conv_ms"] = _ort_conv_time(spec["artifact"], feeds, threads)
    return result


def _ort_conv_time(artifact: str, feeds: dict, threads: int) -> float:
    """Milliseconds ONNX Runtime spends in convolutions per frame (from its profiler)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="rtgan-ort-profile-")) / "profile")
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(Path(artifact) / "model.onnx"), options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        session.run(None, feeds)
    profile = Path(session.end_profiling())
    events = json.loads(profile.read_text())
    profile.unlink()
    conv = [
        e["dur"]
        for e in events
        if e.get("cat") == "Node"
        and "Conv" in e.get("args", {}).get("op_name", "")
        and e["name"].endswith("_kernel_time")
    ]
    return sum(conv) / 3 / 1e3


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space, which exec replaces,
    so unlike ru_maxrss it does not report the spawning parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_process(spec: dict) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_case, (spec,))


def matmul_peak(threads: int, n: int = 2048) -> dict:
    """Best fp32 GFLOP/s of an n x n matmul with `threads` threads, in PyTorch and in ONNX Runtime's own
    GEMM (the library the engine's convolutions run on); the larger is the machine's peak."""
    import torch

    flop = 2 * n**3
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    peaks = {"torch": flop / min(_time(lambda: a @ b, 5, warmup=2)) / 1e9}
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("MatMul", ["a", "b"], ["c"])],
            "mm",
            [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "ab"],
            [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(
            helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString(),
            options,
            providers=["CPUExecutionProvider"],
        )
        feeds = {"a": a.numpy(), "b": b.numpy()}
        peaks["onnxruntime"] = flop / min(_time(lambda: session.run(None, feeds), 5, warmup=2)) / 1e9
    except ImportError:
        pass
    return {k: round(v, 1) for k, v in peaks.items()}


def model_flops(model, feeds) -> tuple[float, float]:
    """(all FLOPs, convolution FLOPs) of one eager forward, from PyTorch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    from .export import reference_image

    with FlopCounterMode(display=False) as counter:
        reference_image(model, feeds)
    by_op = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    return float(counter.get_total_flops()), float(sum(v for k, v in by_op.items() if "convolution" in k))


def benchmark(
    archs=("spade", "asapnet", "pix2pixhd"),
    backends=("onnxruntime", "openvino"),
    height=256,
    width=512,
    repeats=5,
    threads=None,
    workdir=None,
    progress=True,
    ablation=False,
) -> dict:
    """Measure every case; returns {'machine': ..., 'rows': [...]}."""
    from .export import Rewrites, export, model_feeds, psnr
    from .models import get_model, save
    from .models.init import randomize_like_trained

    threads = threads or os.cpu_count() or 1
    workdir = Path(workdir or tempfile.mkdtemp(prefix="rtgan-bench-"))
    say = print if progress else (lambda *a, **k: None)
    peaks = matmul_peak(threads)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": threads,
        "matmul_gflops": peaks,
        "matmul_peak_gflops": max(peaks.values()),
    }
    say(f"matmul peak (GFLOP/s fp32, {threads} threads): {peaks}")
    rows = []
    for arch in archs:
        preset = PRESETS[arch]
        say(f"{preset}: building realistic random weights at {height}x{width} ...")
        model = randomize_like_trained(get_model(preset), height, width, iterations=4)
        save(model, workdir / arch / "model")
        feeds = model_feeds(model, height, width, batch=1, seed=1)
        np.savez(workdir / arch / "feeds.npz", **feeds)
        flops, conv_flops = model_flops(model, feeds)
        cases = [("eager PyTorch (official-style)", {"kind": "eager", "model": str(workdir / arch / "model")})]
        naive = export(
            model,
            height=height,
            width=width,
            out=workdir / arch / "naive",
            rewrites=Rewrites.none(),
            progress=False,
            verify=False,
        )
        cases.append(
            ("naive ONNX on onnxruntime", {"kind": "engine", "artifact": str(naive), "backend": "onnxruntime"})
        )
        for backend in backends:
            art = export(
                model,
                height=height,
                width=width,
                backend=backend,
                out=workdir / arch / backend,
                progress=False,
                verify=False,
            )
            cases.append(
                (
                    f"rtgan {backend}",
                    {"kind": "engine", "artifact": str(art), "backend": backend, "profile": backend == "onnxruntime"},
                )
            )
        if ablation:  # each opt-in rewrite on top of the default, on ONNX Runtime
            for label, rw in [
                ("+ merged gamma/beta", Rewrites(merge_gamma_beta=True)),
                ("+ label gathers", Rewrites(label_gather=True)),
                ("all rewrites", Rewrites.all()),
            ]:
                art = export(
                    model,
                    height=height,
                    width=width,
                    out=workdir / arch / label.replace(" ", "_"),
                    rewrites=rw,
                    progress=False,
                    verify=False,
                )
                cases.append(
                    (f"rtgan onnxruntime {label}", {"kind": "engine", "artifact": str(art), "backend": "onnxruntime"})
                )
        for name, spec in cases:
            image = workdir / arch / f"{len(rows)}.npy"
            spec.update(feeds=str(workdir / arch / "feeds.npz"), repeats=repeats, threads=threads, image=str(image))
            say(f"  {name} ...", end="", flush=True)
            r = _in_process(spec)
            r.update(
                arch=arch,
                preset=preset,
                case=name,
                size=f"{height}x{width}",
                gflop=round(flops / 1e9, 1),
                achieved_gflops=round(flops / 1e9 / (r["p50_ms"] / 1e3), 1),
            )
            if "conv_ms" in r:
                r["conv_gflops"] = round(conv_flops / 1e9 / (r["conv_ms"] / 1e3), 1)
                r["conv_fraction_of_peak"] = round(r["conv_gflops"] / machine["matmul_peak_gflops"], 3)
            if name.startswith("eager"):
                reference = np.load(image)
            r["psnr_db"] = round(min(psnr(np.load(image), reference), 999.0), 1)
            rows.append(r)
            say(f" p50 {r['p50_ms']:.0f} ms, {r['psnr_db']} dB vs eager")
        eager = next(r["p50_ms"] for r in rows if r["arch"] == arch and r["case"].startswith("eager"))
        for r in rows:
            if r["arch"] == arch:
                r["speedup_vs_eager"] = round(eager / r["p50_ms"], 3)
    return {"machine": machine, "rows": rows}


def markdown(result: dict) -> str:
    m = result["machine"]
    peaks = ", ".join(f"{k} {v}" for k, v in m["matmul_gflops"].items())
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['threads']} threads; fp32 2048² matmul GFLOP/s measured in "
        f"the same run: {peaks}; peak = {m['matmul_peak_gflops']}.",
        "",
        "| model | case | p50 ms | p90 ms | p99 ms | fps | × eager | PSNR dB | GMAC | GFLOP/s | conv % of peak "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        conv = f"{100 * r['conv_fraction_of_peak']:.0f} %" if "conv_fraction_of_peak" in r else ""
        r = {**r, "psnr_db": "ref" if r["case"].startswith("eager") else r["psnr_db"]}
        lines.append(
            f"| {r['preset']} {r['size']} | {r['case']} | {r['p50_ms']:.0f} | {r['p90_ms']:.0f} | "
            f"{r['p99_ms']:.0f} | {1e3 / r['p50_ms']:.2f} | **{r['speedup_vs_eager']:.2f}** | {r['psnr_db']} | "
            f"{r['gflop'] / 2:.1f} | "
            f"{r['achieved_gflops']} | {conv} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = list(dict.fromkeys(r["arch"] for r in result["rows"]))
    fig, axes = plt.subplots(1, len(archs), figsize=(5 * len(archs), 4), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        rows = [r for r in result["rows"] if r["arch"] == arch]
        bars = ax.barh(
            [r["case"] for r in rows],
            [r["p50_ms"] for r in rows],
            color=["#999999" if r["case"].startswith(("eager", "naive")) else "#2a7ab9" for r in rows],
        )
        for bar, r in zip(bars, rows):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {r['speedup_vs_eager']:.2f}×", va="center")
        ax.invert_yaxis()
        ax.set_title(f"{arch} {rows[0]['size']}, batch 1")
        ax.set_xlabel("p50 latency (ms), lower is better")
        ax.set_xlim(0, max(r["p50_ms"] for r in rows) * 1.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rtgan.bench", description=__doc__)
    ap.add_argument("--archs", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--backends", nargs="+", default=["onnxruntime", "openvino"])
    ap.add_argument("--size", default="256x512", help="HxW")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", default="out/bench")
    ap.add_argument("--ablation", action="store_true", help="also time each opt-in rewrite on ONNX Runtime")
    ap.add_argument("--report", metavar="JSON", help="only redraw the table and plot of a saved bench.json")
    args = ap.parse_args(argv)
    h, w = parse_size(args.size)
    if args.report:
        result = json.loads(Path(args.report).read_text())
        out = Path(args.report).parent
        (out / "bench.md").write_text(markdown(result) + "\n")
        plot(result, out / "latency.png")
        print(markdown(result))
        return 0
    result = benchmark(args.archs, args.backends, h, w, args.repeats, args.threads, ablation=args.ablation)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result["command"] = "python -m rtgan.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "bench.md").write_text(markdown(result) + "\n")
    plot(result, out / "latency.png")
    print(markdown(result))
    print(f"wrote {out / 'bench.json'}, {out / 'bench.md'}, {out / 'latency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
