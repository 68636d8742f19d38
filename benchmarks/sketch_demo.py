"""The photo -> painting demo on the bundled sketch model, end to end, headless:

    python benchmarks/sketch_demo.py --out benchmarks/results/sketch_demo [--frames 300]

Writes a 'camera' video of pencil sketches (rtgan.data.sketches: held-out scenes, each drawing held
still for a second, at 240x320 so the demo fits it), runs `python -m rtgan.demo --model
sketch2landscape-pix2pix` headless on it, and keeps its latency.json (fps, per-stage medians) and
the last snapshot. Also times the engine alone (`Engine.run`, median of 30) on both CPU runtimes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL = "sketch2landscape-pix2pix"


def write_video(path: Path, scenes: int = 6, seconds: float = 1.0, fps: int = 30) -> None:
    import cv2

    from rtgan.data import sketches

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (320, 240))
    rng = np.random.default_rng(0)
    for s in range(scenes):
        drawing = sketches.render(50_000_000 + s, 240, 320)[0]
        for _ in range(int(seconds * fps)):  # a hand-held drawing: a pixel or two of shake, sensor noise
            dy, dx = rng.integers(-2, 3, 2)
            frame = np.roll(drawing, (dy, dx), (0, 1)).astype(np.int16) + rng.normal(0, 2, drawing.shape).astype(
                np.int16
            )
            writer.write(np.clip(frame, 0, 255).astype(np.uint8)[..., ::-1])
    writer.release()


def engine_ms(repeats: int = 30) -> dict[str, float]:
    from rtgan import Engine, weights
    from rtgan.data import sketches

    drawing = sketches.render(50_000_000, 256, 256)[0]
    out = {}
    for backend in ("onnxruntime", "openvino"):
        engine = Engine.load(weights.path(MODEL) / "engine", backend, precision="auto")
        for _ in range(3):
            engine.run(source=drawing)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            engine.run(source=drawing)
            times.append(time.perf_counter() - t0)
        out[f"{backend} {engine.precision}"] = round(float(np.median(times)) * 1e3, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--frames", type=int, default=150)
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "sketches.mp4"
    write_video(video)
    run = out / "demo"
    shutil.rmtree(run, ignore_errors=True)
    cmd = [sys.executable, "-m", "rtgan.demo", "--model", MODEL, "--source", str(video), "--loop", "--headless",
           "--frames", str(a.frames), "--no-record", "--out", str(run)]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT)
    summary = json.loads((run / "latency.json").read_text())
    result = {"demo": summary, "engine_ms": engine_ms(), "command": " ".join(cmd[1:])}
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.copy(sorted(run.glob("snapshot-*.png"))[-1], out / "snapshot.png")
    video.unlink()
    print(json.dumps({"fps": summary.get("fps"), "engine_ms": result["engine_ms"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
