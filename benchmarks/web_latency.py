"""Latency the web studio adds over `Engine.run`, measured from a real browser, side by side in one run.

    python benchmarks/web_latency.py                          # landscape-asapnet 256x256, 200 frames
    python benchmarks/web_latency.py --frames 50 --encodings rgba,jpeg

Serves the studio in this process (uvicorn in a thread) on one engine, and times, with that same
engine: `Engine.run` alone (before and after the browser runs), then headless Chromium (Playwright)
sending the page's label map as the page does, one frame in flight. The page times each frame in
JS with performance.now(), from building the id frame to the painting drawn on its canvas
(putImageData, or the decoded JPEG / PNG drawn); the server reports its Engine.run time in each
painting's header. Added latency = round trip - the server's engine time, frame by frame.
Prints a markdown table per painting encoding and the command line. Target: added p50 <= 10 ms.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time

import numpy as np

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
TARGET_MS = 10.0
LOOP = "async (n) => { const out = []; for (let i = 0; i < n; i++) out.push(await studio.paint()); return out; }"


def engine_alone(engine, ids: np.ndarray, frames: int) -> list[float]:
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        engine.run(ids)
        times.append((time.perf_counter() - start) * 1000)
    return times


def row(name: str, values) -> str:
    v = np.asarray(values, float)
    return f"| {name} | {np.percentile(v, 50):.2f} | {np.percentile(v, 99):.2f} | {v.mean():.2f} | {len(v)} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="landscape-asapnet")
    ap.add_argument("--size", default="256x256")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--encodings", default="rgba,jpeg,png", help="painting encodings to compare (rgba: raw)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, help="engine threads (default: the runtime's)")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    from rtgan.data import landscapes
    from rtgan.demo.engines import open_engine
    from rtgan.web import create_app
    from rtgan.web.server import BackgroundServer

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    size = tuple(int(v) for v in args.size.split("x"))
    engine = open_engine(args.model, args.backend, args.threads, lambda s: None, size)
    if "labels" not in engine.input_names:
        raise SystemExit(f"{args.model} does not paint label maps; this benchmark sends id frames")
    ids = landscapes.layout(3, engine.height, engine.width)
    if engine.label_ids is not None and not set(np.unique(ids)) <= set(engine.label_ids):
        ids = np.full((engine.height, engine.width), engine.label_ids[0], np.uint8)
    engine_alone(engine, ids, args.warmup)
    alone = engine_alone(engine, ids, args.frames)
    app = create_app({args.model: engine}, log=lambda s: None)
    results = {}
    with BackgroundServer(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.goto(url)
        page.wait_for_function("() => window.studio && studio.idle() && studio.stats.painted > 0", timeout=60_000)
        page.evaluate("(ids) => { studio.state.ids.set(ids); }", ids.ravel().tolist())  # a landscape, not a blank map
        for encoding in args.encodings.split(","):
            page.evaluate(f"() => studio.encoding({encoding!r})")
            page.evaluate(LOOP, args.warmup)
            results[encoding] = page.evaluate(LOOP, args.frames)
        browser.close()
    alone += engine_alone(engine, ids, args.frames)  # after too: the machine may have drifted meanwhile

    command = shlex.join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])
    print(f"`{command}`  ({os.cpu_count()} CPUs; {args.model} {engine.width}x{engine.height}, "
          f"{engine.backend_name} {engine.precision}; Chromium headless, localhost)\n")  # fmt: skip
    status = 0
    for encoding, samples in results.items():
        rtt = np.array([s["rtt"] for s in samples])
        eng = np.array([s["engine"] for s in samples])
        srv = np.array([s["server"] for s in samples])
        print(f"painting sent as **{encoding}**\n\n| ms | p50 | p99 | mean | frames |\n|---|---|---|---|---|")
        print(row("Engine.run alone (same engine, no server)", alone))
        print(row("Engine.run in the server (its header)", eng))
        print(row("server: frame in -> painting encoded", srv))
        print(row("browser round trip (send -> painting drawn)", rtt))
        print(row("**added: round trip - Engine.run**", rtt - eng))
        print(row("of it outside the server (round trip - server)", rtt - srv))
        added = float(np.percentile(rtt - eng, 50))
        met = added <= TARGET_MS
        status |= 0 if met or encoding != "rgba" else 1
        print(f"\nadded p50 {added:.2f} ms: {'within' if met else 'above'} the {TARGET_MS:g} ms target\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
