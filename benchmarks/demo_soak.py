"""Soak test of the live demo: run it headless for a long time and watch the process's memory.

    python benchmarks/demo_soak.py --minutes 30 --out benchmarks/results/demo

Runs `rtgan.demo` (built-in animated scene, bundled default model, no MP4 so the disk does not
grow) in this process while a thread samples the resident set size every few seconds. Writes
soak.json (samples, growth after warm-up, the demo's latency summary) and rss.png. The target is
RSS growth < 5 % from the end of the first minute to the end of the run.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=60, help="seconds before the baseline sample")
    ap.add_argument("--every", type=float, default=5, help="seconds between samples")
    ap.add_argument("--model", default=None, help="default: the bundled default model")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="benchmarks/results/demo")
    args = ap.parse_args()

    from rtgan import weights
    from rtgan.demo import Demo, DemoConfig

    out = Path(args.out)
    config = DemoConfig(
        source="scene",
        models=(args.model or weights.DEFAULT,),
        headless=True,
        record=False,
        seconds=args.minutes * 60,
        out=str(out / "soak-run"),
        threads=args.threads,
    )
    demo = Demo(config)
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    t0 = time.perf_counter()

    def sample():
        while not done.wait(args.every):
            samples.append((time.perf_counter() - t0, rss_mb()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    demo.run()
    done.set()
    sampler.join()
    base = next((m for t, m in samples if t >= args.warmup), samples[0][1])
    final = samples[-1][1]
    result = {
        "minutes": args.minutes,
        "rss_mb_after_warmup": round(base, 1),
        "rss_mb_final": round(final, 1),
        "rss_mb_max": round(max(m for _, m in samples), 1),
        "growth_pct": round(100 * (final - base) / base, 2),
        "target_pct": 5.0,
        "demo": demo.summary,
        "samples": [(round(t, 1), round(m, 1)) for t, m in samples],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3))
        ax.plot([t / 60 for t, _ in samples], [m for _, m in samples])
        ax.axvline(args.warmup / 60, ls=":", c="grey")
        ax.set(xlabel="minutes", ylabel="RSS MB", title=f"rtgan.demo soak: RSS growth {result['growth_pct']} %")
        fig.tight_layout()
        fig.savefig(out / "rss.png", dpi=110)
    except ImportError:
        pass
    print(f"RSS {base:.1f} MB after warm-up -> {final:.1f} MB at the end: {result['growth_pct']} % (target < 5 %)")


if __name__ == "__main__":
    main()
