"""Train the bundled landscape models side by side on one borrowed GPU, in time-boxed pieces:

    python benchmarks/gpu/train.py --minutes 9 --pack $OUT        # repeat while the machine is warm

Each call starts (or resumes, from runs/gpu/PRESET) one `rtgan.train` process per preset on the
GPU, stops them all with SIGTERM after `--minutes` (each saves its checkpoint), and packs each run
into PACK/PRESET.tar: the generator (fp16 when that is harmless, as `rtgan.train.bundle` decides,
so that SPADE fits the 16 MiB a file that comes back from the device), losses, recipe changes, the
latest samples and train_state.json without the optimizer tensors. Unpacked into a directory, a
pack is what `python -m rtgan.train.bundle --run DIR` takes; it cannot be resumed (no optimizer
state), so a run lives as long as the machine that holds runs/gpu.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PRESETS = ("landscape-asapnet", "landscape-spade", "landscape-pix2pixhd")
# the CPU runs' recipe (model cards), at a GPU batch
TRAIN_ARGS = ["--count", "2000", "--ndf", "32", "--n_layers_D", "3", "--lambda_l1", "20", "--no_progress"]


def command(preset: str, runs: Path, args) -> list[str]:
    return [
        sys.executable, "-m", "rtgan.train", "--preset", preset, "--out", str(runs / preset),
        "--device", args.device, "--batch_size", str(args.batch_size), "--steps", str(args.steps),
        "--save_every", str(args.save_every), "--sample_every", str(args.save_every),
        "--workers", str(args.workers), "--threads", "2", *TRAIN_ARGS, *(["--amp"] if args.amp else []),
    ]  # fmt: skip


def train_for(presets, runs: Path, args) -> dict[str, int]:
    """Run every preset at once for args.minutes, then SIGTERM (they save); -> exit codes."""
    runs.mkdir(parents=True, exist_ok=True)
    procs = {}
    with contextlib.ExitStack() as logs:
        for p in presets:
            log = logs.enter_context(open(runs / f"{p}.log", "a"))
            procs[p] = subprocess.Popen(command(p, runs, args), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline and any(pr.poll() is None for pr in procs.values()):
            time.sleep(5)
        for pr in procs.values():
            if pr.poll() is None:
                pr.send_signal(signal.SIGTERM)
        return {p: pr.wait() for p, pr in procs.items()}


def pack(run: Path, dest: Path) -> Path:
    """run/ -> dest (a tar a bundle can read): optimizer-free, generator fp16 when harmless."""
    import torch

    from rtgan.models import load, save
    from rtgan.train.bundle import FP16_MIN_PSNR, fp16_psnr

    ckpt = run / "checkpoint"
    model = load(ckpt / "generator")
    db = fp16_psnr(model)
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "generator"
        save(model, gen, dtype=torch.float16 if db >= FP16_MIN_PSNR else None)
        files = {f"checkpoint/generator/{f.name}": f.read_bytes() for f in gen.iterdir()}
    files["checkpoint/train_state.json"] = (ckpt / "train_state.json").read_bytes()
    files["checkpoint/packed.json"] = json.dumps({"fp16_psnr": db}).encode()
    for name in ("losses.jsonl", "recipe_changes.jsonl", "train_config.json", "samples/latest.png"):
        if (run / name).is_file():
            files[name] = (run / name).read_bytes()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    ap.add_argument("--minutes", type=float, default=9.0, help="train this long, then save and pack")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs/gpu", help="run directories (resumed when present)")
    ap.add_argument("--pack", type=Path, help="write PRESET.tar here (e.g. $OUT on the device machine)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=200_000, help="the runs' total (they stop at --minutes first)")
    ap.add_argument("--save_every", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=4, help="data workers per run (the scenes render up front)")
    ap.add_argument("--amp", action="store_true", help="fp16 autocast with loss scaling")
    args = ap.parse_args(argv)
    codes = train_for(args.presets, args.runs, args)
    for p in args.presets:
        state = args.runs / p / "checkpoint" / "train_state.json"
        step = json.loads(state.read_text())["step"] if state.is_file() else 0
        print(f"{p}: exit {codes[p]}, step {step}; log {args.runs / p}.log")
        if args.pack and step:
            print(f"  packed {pack(args.runs / p, args.pack / f'{p}.tar')}")
    return 0 if all(c in (0, -signal.SIGTERM) for c in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
