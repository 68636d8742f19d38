"""Screenshot of the demo's real window on a virtual screen (how docs/demo-window.png is made).

    python demos/window_screenshot.py --out docs/demo-window.png [--model NAME_OR_DIR] [--paint]

Starts Xvfb, runs `python -m rtgan.demo --window` on the built-in scene, lets it settle, optionally
switches to paint mode with the help overlay, grabs the window with mss and quits the demo with `q`.
Needs Xvfb and xdotool (Debian: xvfb xdotool), opencv-python (GUI build) and mss.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/demo-window.png")
    ap.add_argument("--model", default=None)
    ap.add_argument("--source", default="scene")
    ap.add_argument("--settle", type=float, default=6.0, help="seconds of frames before the shot")
    ap.add_argument("--keys", default="h", help="keys to press first, e.g. 'h' (help) or 'p h' (paint + help)")
    args = ap.parse_args()

    import mss
    import mss.tools

    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x900x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        display = f":{f.readline().strip()}"
    env = {**os.environ, "DISPLAY": display, "RTGAN_NO_CAMERA": "1"}
    xdo = lambda *a: subprocess.run(["xdotool", *a], env=env, check=True, capture_output=True, text=True).stdout  # noqa: E731
    cmd = [sys.executable, "-m", "rtgan.demo", "--window", "--source", args.source, "--out", "out/screenshot-run"]
    demo = subprocess.Popen(cmd + (["--model", args.model] if args.model else []), env=env)
    try:
        window = xdo("search", "--sync", "--name", "^rtgan$").split()[0]
        time.sleep(0.3)
        xdo("windowunmap", "--sync", window, "windowmap", "--sync", window)  # Qt with no window manager
        time.sleep(2.0)  # first frames through the pipeline: keys sent before are lost
        for key in args.keys.split():
            xdo("key", "--window", window, key)
            time.sleep(0.3)
        time.sleep(args.settle)
        geo = dict(line.split("=") for line in xdo("getwindowgeometry", "--shell", window).split())
        with mss.MSS(display=display) as screen:
            box = {
                "left": int(geo["X"]),
                "top": int(geo["Y"]),
                "width": int(geo["WIDTH"]),
                "height": int(geo["HEIGHT"]),
            }
            shot = screen.grab(box)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        mss.tools.to_png(shot.rgb, shot.size, output=args.out)
        xdo("key", "--window", window, "q")
        demo.wait(30)
        print(f"wrote {args.out}")
    finally:
        if demo.poll() is None:
            demo.kill()
        xvfb.terminate()
        xvfb.wait(10)


if __name__ == "__main__":
    main()
