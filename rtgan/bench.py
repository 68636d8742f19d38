"""python -m rtgan.bench: latency of rtgan engines vs the eager PyTorch reference, side by side in one run.

Per architecture (SPADE, ASAPNet, pix2pixHD at their Cityscapes presets, 256x512; the CycleGAN
ResNet-9 generator, OASIS-ADE20K and SEAN-CelebAMask-HQ at their 256x256 release sizes; random
realistic weights), or per trained model
(`--model landscape-asapnet`, at its natural size), it measures, each in a fresh process so peak
memory and thread pools do not leak between cases: the eager reference (prepare + forward,
numerically the official model), a naive ONNX export of it (no rewrites) on ONNX Runtime, and
rtgan's engine on each requested backend. Label-map models paint a random label map; image-in
models (CycleGAN) translate a rendered landscape photo, one the int8 calibration never sees.
Every latency is also a ratio to the eager reference, and throughput is set against a matmul
peak measured in the same run. A bf16 or int8 engine that its export refuses (below its fidelity
floor) is listed with the reason instead of a time.

Every argument is checked before any work; the models and engines are built in a temporary
directory that is removed at the end, on error and on Ctrl-C alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from . import catalog
from .errors import ConfigError
from .formats import CPU_BACKENDS, FORMATS, check_can_export, get_format
from .presets import get_preset
from .utils import cli, extras
from .utils.names import lookup

PROG = "python -m rtgan.bench"
PRESETS = {
    "spade": "spade-cityscapes",
    "asapnet": "asapnet-cityscapes",
    "pix2pixhd": "pix2pixhd-label2city-512p",
    "cyclegan": "cyclegan-style-monet",  # ResNet-9, ngf 64, instance norm: every released CycleGAN
    "oasis": "oasis-ade20k",  # 151 one-hot channels after the 64-d noise
    "sean": "sean-celebahq",  # the only released SEAN weights
}
DEFAULT_ARCHS = ("spade", "asapnet", "pix2pixhd")  # the Cityscapes label-map presets, at one size
DEFAULT_BACKENDS = tuple(CPU_BACKENDS)  # the formats table's CPU runtimes
DEFAULT_SIZE = "256x512"  # the Cityscapes presets' size; a --model paints at its own
ARCH_SIZES = {"cyclegan": "256x256", "oasis": "256x256", "sean": "256x256"}  # their released sizes
PICTURE_SEED = 1000  # the landscape an image-in model translates (calibration uses seeds 0-23)


@dataclasses.dataclass(frozen=True)
class Subject:
    """One model to measure: an architecture's preset with random realistic weights, or a trained model."""

    name: str  # what the table and plot call it: the preset's or the model's name
    arch: str
    height: int
    width: int
    preset: str | None = None  # random weights of this preset (--archs)
    path: Path | None = None  # an rtgan model directory (--model)

    @property
    def size(self) -> str:
        return f"{self.height}x{self.width}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """A checked bench run: what `measure` does, decided before any of it starts."""

    subjects: tuple[Subject, ...]
    backends: tuple[str, ...]
    repeats: int
    threads: int
    ablation: bool = False
    precisions: tuple[str, ...] = ("fp32",)  # each backend x each precision it offers (formats table)


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


# --- checks: every one runs before any model is built, the torch-free ones before PyTorch loads


def check_backends(backends) -> tuple[str, ...]:
    """Canonical backend names (aliases resolved, duplicates dropped); raises when one is misspelled,
    or cannot run on this machine (no GPU for TensorRT, its library not installed)."""
    names = tuple(dict.fromkeys(get_format(b).backend for b in backends))
    # the naive-export case and the convolution profile run on ONNX Runtime whatever the backends
    extras.require("onnxruntime", "cpu", "the bench's naive-ONNX baseline")
    for name in names:
        fmt = get_format(name)
        if not fmt.cpu:  # a plan is built on, and timed on, the GPU it runs on
            extras.require_gpu(
                f"benchmarking the {name} backend",
                f"choose CPU backends: {', '.join(b for b, f in FORMATS.items() if f.cpu)}",
            )
        # bench exports fp32 without the exporter's own verification: it compares against eager itself
        check_can_export(fmt, "fp32", verify=False)
    return names


def plan_subjects(archs=(), models=(), size: tuple[int, int] | None = None) -> tuple[Subject, ...]:
    """The models to measure, torch-free: architectures at `size` (when None, 256x512, or the arch's own
    size in ARCH_SIZES: CycleGAN's 256x256), or trained models (bundled names or rtgan model
    directories, via the catalog) at `size` or their natural size."""
    if archs and models:
        raise ConfigError("give --archs (presets with random weights) or --model (trained models), not both")
    subjects = []
    for arch in archs:
        preset = lookup(arch, PRESETS, "architecture")
        h, w = size or cli.parse_size(ARCH_SIZES.get(arch, DEFAULT_SIZE))
        subjects.append(Subject(preset, arch, h, w, preset=preset))
    for model in models:
        ref = catalog.resolve(model)
        if ref.kind != "model":
            raise ConfigError(
                f"{model}: bench needs the model's weights for its eager reference, and this is an "
                f"{'exported engine' if ref.kind == 'engine' else 'official checkpoint'}; give a bundled model "
                "or an rtgan model directory (rtgan.models.save, rtgan.train.bundle)"
            )
        h, w = size or ref.natural_size() or (None, None)
        if h is None:
            raise ConfigError(f"{model}: its config names no size; give --size HxW")
        subjects.append(Subject(ref.name, ref.arch(), h, w, path=ref.path))
    if not subjects:
        raise ConfigError("nothing to measure: give --archs or --model")
    return tuple(subjects)


def plan(
    archs=(),
    backends=DEFAULT_BACKENDS,
    size: tuple[int, int] | None = None,
    repeats: int = 5,
    threads: int | None = None,
    ablation: bool = False,
    models=(),
    precisions=("fp32",),
) -> Plan:
    """Every argument checked, torch-free (sizes come next, in `check_sizes`, which needs PyTorch)."""
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    subjects = plan_subjects(archs, models, size)
    backends = check_backends(backends)
    precisions = tuple(dict.fromkeys(precisions))
    for p in precisions:
        if not any(p in get_format(b).precisions for b in backends):
            raise ConfigError(f"--precisions {p}: none of the backends {', '.join(backends)} offers it")
        for b in backends:
            if p in ("bf16", "int8") and p in get_format(b).precisions:
                check_can_export(get_format(b), p, verify=False)  # a missing NNCF, before the run
    return Plan(subjects, backends, repeats, threads or os.cpu_count() or 1, ablation, precisions)


def check_sizes(plan: Plan) -> None:
    """Raise unless every subject can paint its size: the configs' own check, before any model is built."""
    from .models import make_config

    for s in plan.subjects:
        if s.preset is not None:
            config = get_preset(s.preset).config()
        else:
            config = make_config(s.arch, **catalog.resolve(str(s.path)).meta()["config"])
        try:
            config.check_size(s.height, s.width)
        except ValueError as e:
            raise ConfigError(f"{s.name}: {e}") from None


# --- one case, in a fresh process


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

        engine = Engine.load(spec["artifact"], backend=spec["backend"], threads=threads,
                             precision=spec.get("precision"), kernels=spec.get("kernels"))  # fmt: skip
        run = lambda: engine.run(**feeds)  # noqa: E731  (the inputs its signature declares, by name)
    result = _percentiles(_time(run, spec["repeats"]))
    np.save(spec["image"], run())
    result["peak_rss_mb"] = _peak_rss_mb()
    if spec.get("profile") and spec["kind"] != "eager":
        result["conv_ms"] = _ort_conv_time(spec["artifact"], feeds, threads, Path(spec["image"]).parent)
    return result


def _ort_conv_time(artifact: str, feeds: dict, threads: int, scratch: Path) -> float:
    """Milliseconds ONNX Runtime spends in convolutions per frame (from its profiler). The profile is
    written under `scratch`, the run's temporary directory, so it goes when the run ends."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(scratch / "ort-profile")
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


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _in_process(spec: dict) -> dict:
    # Ctrl-C reaches the whole process group; the parent handles it (terminates the worker, removes the
    # temporary directory, prints one line), not the worker with a traceback of its own. So the worker
    # starts with SIGINT blocked, which it inherits through exec, and then ignores it. Blocked in the
    # parent rather than ignored: a Ctrl-C during the start is delivered inside the `with`, not lost.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        # leaving the `with` terminates and joins the worker, also on an error or Ctrl-C in the parent,
        # so no child is still writing into the temporary directory when it is removed
        with mp.get_context("spawn").Pool(1, initializer=_ignore_sigint) as pool:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            return pool.apply(_case, (spec,))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


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


# --- the run


@contextlib.contextmanager
def _private_temp() -> Iterator[Path]:
    """A temporary directory for one run, made the temp folder of this process and (through TMPDIR,
    which spawned processes inherit) of every case process while the run lasts, so that what the
    libraries leave there (ONNX Runtime's session file, PyTorch's caches, profiles) goes with it.
    Removed however the run ends: success, error or Ctrl-C."""
    with tempfile.TemporaryDirectory(prefix="rtgan-bench-") as tmp:
        scratch = Path(tmp) / "tmp"
        scratch.mkdir()
        saved = os.environ.get("TMPDIR"), tempfile.tempdir
        os.environ["TMPDIR"] = tempfile.tempdir = str(scratch)
        try:
            yield Path(tmp)
        finally:
            if saved[0] is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved[0]
            tempfile.tempdir = saved[1]


def _subject_model(s: Subject, work: Path, say):
    """(model, directory the eager case loads it from): a trained model as it is, or a preset with
    realistic random weights saved into the work directory."""
    from .models import get_model, load, save
    from .models.init import randomize_like_trained

    if s.path is not None:
        say(f"{s.name}: loading the trained model, {s.size} ...")
        return load(s.path), s.path
    say(f"{s.name}: building realistic random weights at {s.size} ...")
    model = randomize_like_trained(get_model(s.preset), s.height, s.width, iterations=4)
    return model, save(model, work / "model")


def _cases(
    s: Subject, plan: Plan, model, model_dir: Path, work: Path, refused: list | None = None
) -> list[tuple[str, dict]]:
    """(label, spec) of each case of one subject, exporting its engines into `work`; a reduced-precision
    export below its fidelity floor goes to `refused` instead."""
    refused = [] if refused is None else refused
    from .export import Rewrites, export

    def build(out: str, **options) -> str:
        return str(export(model, height=s.height, width=s.width, out=work / out, progress=False, verify=False,
                          **options))  # fmt: skip

    arch = getattr(getattr(model, "config", None), "arch", None)
    cases = [("eager PyTorch (official-style)", {"kind": "eager", "model": str(model_dir)})]
    naive = build("naive", rewrites=Rewrites.none())
    cases.append(("naive ONNX on onnxruntime", {"kind": "engine", "artifact": naive, "backend": "onnxruntime"}))
    for backend in plan.backends:
        for precision in [p for p in plan.precisions if p in get_format(backend).precisions]:
            if precision in ("bf16", "int8"):  # calibrated and measured on held-out maps, as a user's export
                try:
                    art = str(export(model, height=s.height, width=s.width, out=work / f"{backend}-{precision}",
                                     backend=backend, precision=precision, progress=False))  # fmt: skip
                except ConfigError as e:  # below its fidelity floor: what a user would be told, in the report
                    refused.append({"subject": s.name, "case": f"rtgan {backend} {precision}", "refused": str(e)})
                    continue
            else:
                art = build(f"{backend}-{precision}", backend=backend, precision=precision)
            spec = {"kind": "engine", "artifact": art, "backend": backend,
                    "profile": backend == "onnxruntime" and precision == "fp32"}  # fmt: skip
            cases.append((f"rtgan {backend}" + ("" if precision == "fp32" else f" {precision}"), spec))
        if backend == "openvino" and arch == "oasis":
            # its fused CPU kernel is the label conv (LabelConv3x3): fp32, and a bf16 export of that graph,
            # with the layer groups that hurt kept in float32 (rtgan.export.bf16), measured like any bf16 export
            fused = build("openvino-fused", backend="openvino", plugins=True)
            cases.append(("rtgan openvino fused", {"kind": "engine", "artifact": fused, "backend": "openvino",
                                                   "kernels": True}))  # fmt: skip
            if "bf16" in plan.precisions:
                try:
                    art = str(export(model, height=s.height, width=s.width, out=work / "openvino-fused-bf16",
                                     backend="openvino", precision="bf16", plugins=True, progress=False))  # fmt: skip
                    cases.append(("rtgan openvino fused bf16", {"kind": "engine", "artifact": art,
                                                                "backend": "openvino", "kernels": True}))  # fmt: skip
                except ConfigError as e:
                    refused.append({"subject": s.name, "case": "rtgan openvino fused bf16", "refused": str(e)})
        if backend == "openvino" and arch == "asapnet":
            # the fused CPU kernels (rtgan.engine.openvino_ext): fp32, and bf16 inference of the same file
            fused = build("openvino-fused", backend="openvino", plugins=True)
            for precision in [p for p in plan.precisions if p in ("fp32", "bf16")]:
                spec = {"kind": "engine", "artifact": fused, "backend": "openvino", "kernels": True,
                        "precision": precision}  # fmt: skip
                cases.append(("rtgan openvino fused" + ("" if precision == "fp32" else f" {precision}"), spec))
    if plan.ablation:  # each opt-in rewrite on top of the default, on ONNX Runtime
        for label, rw in [
            ("+ merged gamma/beta", Rewrites(merge_gamma_beta=True)),
            ("+ label gathers", Rewrites(label_gather=True)),
            ("all rewrites", Rewrites.all()),
        ]:
            art = build(label.replace(" ", "_").replace("/", "_"), rewrites=rw)
            cases.append((f"rtgan onnxruntime {label}", {"kind": "engine", "artifact": art, "backend": "onnxruntime"}))
        # the exact conditioning rewrites are on by default: their share is each fp32 engine without them
        off = {"oasis": ("without the noise split", Rewrites(split_noise_conv=False)),
               "sean": ("without the style tables", Rewrites(style_tables=False))}.get(arch)  # fmt: skip
        for backend in plan.backends if off else ():
            art = build(f"{backend}-{off[0].replace(' ', '_')}", backend=backend, rewrites=off[1])
            cases.append((f"rtgan {backend} {off[0]}", {"kind": "engine", "artifact": art, "backend": backend}))
    return cases


def bench_feeds(model, height: int, width: int) -> dict[str, np.ndarray]:
    """The engine inputs every case of a subject runs on (batch 1): the inputs its signature declares,
    a random label map for a label-map model; an image input gets a rendered landscape photo (not
    noise: what a translator is for), of a seed the int8 calibration does not use."""
    from .data import landscapes
    from .export import model_feeds

    feeds = model_feeds(model, height, width, batch=1, seed=1)
    for i in model.signature().inputs:
        if i.kind == "image":
            feeds[i.name] = np.ascontiguousarray(landscapes.render(PICTURE_SEED, height, width)[1][None])
    return feeds


def _measure_subject(s: Subject, plan: Plan, machine: dict, work: Path, say, refused: list) -> list[dict]:
    from .export import psnr

    model, model_dir = _subject_model(s, work, say)
    feeds = bench_feeds(model, s.height, s.width)
    say(f"  {model.signature().describe()}")
    np.savez(work / "feeds.npz", **feeds)
    flops, conv_flops = model_flops(model, feeds)
    rows, reference = [], None
    for i, (name, spec) in enumerate(_cases(s, plan, model, model_dir, work, refused)):
        image = work / f"{i}.npy"
        spec.update(feeds=str(work / "feeds.npz"), repeats=plan.repeats, threads=plan.threads, image=str(image))
        say(f"  {name} ...", end="", flush=True)
        r = _in_process(spec)
        r.update(
            arch=s.arch,
            preset=s.name,
            subject=s.name,
            case=name,
            size=s.size,
            gflop=round(flops / 1e9, 1),
            achieved_gflops=round(flops / 1e9 / (r["p50_ms"] / 1e3), 1),
        )
        if "conv_ms" in r:
            r["conv_gflops"] = round(conv_flops / 1e9 / (r["conv_ms"] / 1e3), 1)
            r["conv_fraction_of_peak"] = round(r["conv_gflops"] / machine["matmul_peak_gflops"], 3)
        if reference is None:  # the eager case comes first: every image is compared to it
            reference = np.load(image)
        r["psnr_db"] = round(min(psnr(np.load(image), reference), 999.0), 1)
        rows.append(r)
        say(f" p50 {r['p50_ms']:.0f} ms, {r['psnr_db']} dB vs eager")
    for r in rows:
        r["speedup_vs_eager"] = round(rows[0]["p50_ms"] / r["p50_ms"], 3)
    return rows


def measure(plan: Plan, workdir=None, progress: bool = True) -> dict:
    """Run a checked plan; returns {'machine': ..., 'rows': [...]}. The models and engines go to `workdir`
    (kept) or, by default, to a temporary directory that is gone when this returns or raises."""
    say = print if progress else (lambda *a, **k: None)
    with _private_temp() as tmp:
        work = Path(workdir) if workdir is not None else tmp / "work"
        check_sizes(plan)
        peaks = matmul_peak(plan.threads)
        machine = {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": plan.threads,
            "matmul_gflops": peaks,
            "matmul_peak_gflops": max(peaks.values()),
        }
        say(f"matmul peak (GFLOP/s fp32, {plan.threads} threads): {peaks}")
        rows, refused = [], []
        for i, s in enumerate(plan.subjects):
            sub = work / f"{i}-{s.arch}"
            sub.mkdir(parents=True, exist_ok=True)
            rows += _measure_subject(s, plan, machine, sub, say, refused)
    return {"machine": machine, "rows": rows, **({"refused": refused} if refused else {})}


def benchmark(
    archs=DEFAULT_ARCHS,
    backends=DEFAULT_BACKENDS,
    height=None,
    width=None,
    repeats=5,
    threads=None,
    workdir=None,
    progress=True,
    ablation=False,
    models=(),
) -> dict:
    """Measure every case; returns {'machine': ..., 'rows': [...]}. `models` (bundled names or rtgan model
    directories) replaces `archs`; sizes default to 256x512 for archs (CycleGAN 256x256), the natural
    size for models."""
    if (height is None) != (width is None):
        raise ConfigError("give both height and width, or neither")
    size = (height, width) if height is not None else None
    p = plan(() if models else archs, backends, size, repeats, threads, ablation, models)
    return measure(p, workdir, progress)


# --- reporting


def _subject_of(row: dict) -> str:
    return row.get("subject", row["arch"])  # bench.json files from before --model group by arch


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
    lines += ["", *(f"- {r['subject']}: {r['case']} not measured: {r['refused']}" for r in result.get("refused", []))]
    return "\n".join(lines).rstrip()


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subjects = list(dict.fromkeys(_subject_of(r) for r in result["rows"]))
    fig, axes = plt.subplots(1, len(subjects), figsize=(5 * len(subjects), 4), squeeze=False)
    for ax, subject in zip(axes[0], subjects):
        rows = [r for r in result["rows"] if _subject_of(r) == subject]
        bars = ax.barh(
            [r["case"] for r in rows],
            [r["p50_ms"] for r in rows],
            color=["#999999" if r["case"].startswith(("eager", "naive")) else "#2a7ab9" for r in rows],
        )
        for bar, r in zip(bars, rows):
            lossy = isinstance(r.get("psnr_db"), (int, float)) and r["psnr_db"] < 80  # reduced precision
            label = f" {r['speedup_vs_eager']:.2f}×" + (f", {r['psnr_db']:.0f} dB" if lossy else "")
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center")
        ax.invert_yaxis()
        ax.set_title(f"{subject} {rows[0]['size']}, batch 1")
        ax.set_xlabel("p50 latency (ms), lower is better")
        ax.set_xlim(0, max(r["p50_ms"] for r in rows) * 1.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(result: dict, out: Path, with_plot: bool) -> list[Path]:
    """bench.md (and latency.png) in `out`; prints the table. Returns the files written."""
    written = [out / "bench.md"]
    written[0].write_text(markdown(result) + "\n")
    if with_plot:
        plot(result, out / "latency.png")
        written.append(out / "latency.png")
    print(markdown(result))
    return written


# --- the command


def parser() -> cli.Parser:
    ap = cli.Parser(PROG, description=__doc__)
    ap.add_argument(
        "--archs",
        nargs="+",
        metavar="ARCH",
        help="architectures at their presets, random realistic weights: "
        + ", ".join(f"{a} ({p})" for a, p in PRESETS.items())
        + f" (default: {' '.join(DEFAULT_ARCHS)}, unless --model)",
    )
    ap.add_argument(
        "--model",
        nargs="+",
        default=[],
        metavar="NAME",
        help="trained model(s) instead of --archs: a bundled model "
        f"({', '.join(catalog.weights.BUNDLED)}) or an rtgan model directory, at its natural size unless --size",
    )
    ap.add_argument(
        "--backends",
        nargs="+",
        metavar="BACKEND",
        help="engine backends to time, besides eager and the naive ONNX export "
        f"(default: {' '.join(DEFAULT_BACKENDS)})",
    )
    sizes = ", ".join(f"{s} for {a}" for a, s in ARCH_SIZES.items())
    cli.add_size(
        ap,
        help=f"image size (default: {DEFAULT_SIZE} for --archs, {sizes}; the model's natural size for --model)",
    )
    ap.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32"],
        choices=["fp32", "fp16", "bf16", "int8"],
        help="engine precisions to time on each backend that offers them (bf16, int8: calibrated CPU artifacts)",
    )
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per case (after one warm-up run)")
    ap.add_argument("--threads", type=int, help=f"threads per case (default: all cores, {os.cpu_count()} here)")
    ap.add_argument("--out", default="out/bench", help="directory for bench.json, bench.md and latency.png")
    ap.add_argument("--ablation", action="store_true", help="also time each opt-in rewrite on ONNX Runtime")
    ap.add_argument("--no-plot", action="store_true", help="write the table and JSON only (no matplotlib needed)")
    ap.add_argument("--report", metavar="JSON", help="only redraw the table and plot of a saved bench.json")
    return ap


def _out_dir(path: str) -> Path:
    """--out, created now: a path that cannot be a directory fails before the run, not after it."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {path}: cannot create the directory ({e.strerror or e})") from None
    return out


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    if not args.no_plot:
        extras.require("matplotlib", "bench", "the latency plot (--no-plot skips it)")
    if args.report:
        try:
            result = json.loads(Path(args.report).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"--report {args.report}: not a readable bench.json ({e})") from None
        write_report(result, Path(args.report).parent, not args.no_plot)
        return 0
    archs = args.archs if args.archs is not None else ([] if args.model else list(DEFAULT_ARCHS))
    backends = args.backends or DEFAULT_BACKENDS
    p = plan(archs, backends, cli.size_of(args), args.repeats, args.threads, args.ablation, args.model,
             args.precisions)  # fmt: skip
    out = _out_dir(args.out)
    result = measure(p)
    result["command"] = f"{PROG} " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    written = [out / "bench.json", *write_report(result, out, not args.no_plot)]
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def _exit_on_sigterm(signum, frame) -> None:
    # like Ctrl-C, `kill` (a CI timeout, a job scheduler) unwinds the run, so its temporary files go
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is not threading.main_thread():  # signal handlers live on the main thread
        return cli.run(lambda: _main(argv), PROG)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return cli.run(lambda: _main(argv), PROG)
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
