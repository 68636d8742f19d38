"""End-to-end latency of the live demo, headless, cases side by side in one run.

    python benchmarks/demo_latency.py --seconds 20 --out benchmarks/results/demo

Cases, each on the bundled default model at its resolution with the fastest CPU runtime:
- `scene`: the built-in animated scene (labels, no segmentation) paced at 30 fps, as the README
  main command runs it but without writing the MP4;
- `scene + mp4`: the same, also writing demo.mp4 (what the main command does);
- `camera-like video`: a 640x480 30 fps video of a marker drawing through the palette segmenter
  (the webcam path: cover-resize, segment, paint).
Writes latency.json and latency.md (fps shown, end-to-end latency, per-stage medians).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def marker_video(path: Path, seconds: float = 10, size=(480, 640), fps: int = 30) -> Path:
    """A camera filming a marker drawing of the animated scene: blurred, noisy palette colours."""
    import cv2

    from rtgan.data import landscapes as L
    from rtgan.demo.scene import AnimatedScene

    scene = AnimatedScene(*size)
    lut = np.zeros((256, 3), np.uint8)
    for i, c in L.PALETTE.items():
        lut[i] = c
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size[::-1])
    rng = np.random.default_rng(0)
    for t in range(int(seconds * fps)):
        img = cv2.GaussianBlur(lut[scene.frame(t / fps)], (0, 0), 2.0).astype(np.float32)
        writer.write(np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)[..., ::-1])
    writer.release()
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--model", default=None, help="default: the bundled default model")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="benchmarks/results/demo")
    args = ap.parse_args()

    from rtgan import weights
    from rtgan.demo import Demo, DemoConfig

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = marker_video(out / "marker-drawing.mp4")
    model = args.model or weights.DEFAULT
    cases = {
        "scene": dict(source="scene", record=False),
        "scene + mp4": dict(source="scene", record=True),
        "camera-like video": dict(source=str(video), record=False, loop=True),
    }
    results = {}
    for name, kw in cases.items():
        config = DemoConfig(
            models=(model,),
            headless=True,
            seconds=args.seconds,
            threads=args.threads,
            out=str(out / "runs" / name.replace(" ", "-").replace("+", "")),
            **kw,
        )
        demo = Demo(config, log=lambda *_: None)
        demo.run()
        results[name] = demo.summary
        print(
            f"{name}: {demo.summary.get('fps', 0):.1f} fps, end-to-end median "
            f"{demo.summary['end_to_end_ms']['median']:.0f} ms"
        )
    video.unlink()
    (out / "latency.json").write_text(json.dumps(results, indent=1) + "\n")
    rows = [
        "| case | fps shown | end-to-end ms (p50 / p90) | capture | segment | paint | display | dropped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in results.items():
        med = lambda k, s=s: f"{s[f'{k}_ms']['median']:.1f}"  # noqa: E731
        e2e = s["end_to_end_ms"]
        rows.append(
            f"| {name} | {s.get('fps', 0):.1f} | {e2e['median']:.0f} / {e2e['p90']:.0f} | {med('capture')} | "
            f"{med('segment')} | {med('paint')} | {med('display')} | {s['dropped']} |"
        )
    first = next(iter(results.values()))
    head = (
        f"{first['model']} ({first['backend']}), {first['size'][0]}x{first['size'][1]}, {args.seconds:g} s per case\n\n"
    )
    (out / "latency.md").write_text(head + "\n".join(rows) + "\n")
    print(head + "\n".join(rows))


if __name__ == "__main__":
    main()
