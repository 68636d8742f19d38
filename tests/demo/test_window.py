"""The real OpenCV window under Xvfb: keys and a mouse stroke reach the demo, and a screenshot is taken.

Needs Xvfb and xdotool (Debian: xvfb xdotool; `.ci/run` installs them) and OpenCV with a GUI.
`RTGAN_SCREENSHOT=path.png` also copies the screenshot there (how docs/demo-window.png was made).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtgan.data import landscapes as L

ROOT = Path(__file__).parents[2]
gui = (
    "GUI:" in cv2.getBuildInformation() and cv2.getBuildInformation().split("GUI:")[1].split("\n")[0].strip() != "NONE"
)
pytestmark = pytest.mark.skipif(
    not (shutil.which("Xvfb") and shutil.which("xdotool") and gui),
    reason="needs Xvfb, xdotool and OpenCV with a GUI (apt-get install xvfb xdotool; pip install opencv-python)",
)


@pytest.fixture
def display(tmp_path):
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()  # Xvfb writes its display number once it accepts clients
    yield f":{number}"
    server.terminate()
    server.wait(60)


def _xdotool(env, *args) -> str:
    return subprocess.run(["xdotool", *args], env=env, check=True, capture_output=True, text=True, timeout=60).stdout


def test_window_keys_mouse_and_screenshot(landscape_engine, tmp_path, display):
    import mss
    import mss.tools

    env = {**os.environ, "DISPLAY": display, "RTGAN_NO_CAMERA": "1", "RTGAN_CACHE": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "rtgan.demo",
        "--model",
        str(landscape_engine),
        "--source",
        "scene",
        "--window",
        "--scale",
        "2",
        "--fps",
        "15",
        "--out",
        str(tmp_path / "out"),
    ]
    demo = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        window = _xdotool(env, "search", "--sync", "--name", "^rtgan$").split()[0]
        time.sleep(0.3)
        # with no window manager Qt sometimes never paints a new window; mapping it again fixes that
        _xdotool(env, "windowunmap", "--sync", window, "windowmap", "--sync", window)
        time.sleep(2.0)  # first frames through the pipeline
        for key in ("h", "p", "7"):  # help overlay, paint mode, brush 7 = sea
            _xdotool(env, "key", "--window", window, key)
            time.sleep(0.3)
        geo = dict(line.split("=") for line in _xdotool(env, "getwindowgeometry", "--shell", window).split())
        x0, y0 = int(geo["X"]), int(geo["Y"])
        # a horizontal stroke across the canvas panel, below the overlay (panel pixels x 2 = window pixels)
        # (pauses between events: under load a press right after a move can be lost)
        _xdotool(env, "mousemove", "--sync", str(x0 + 2 * 20), str(y0 + 2 * 50), "sleep", "0.1", "mousedown", "1")
        for x in range(30, 110, 10):
            _xdotool(env, "sleep", "0.05", "mousemove", "--sync", str(x0 + 2 * x), str(y0 + 2 * 50))
        _xdotool(env, "sleep", "0.1", "mouseup", "1")
        time.sleep(1.0)
        _xdotool(env, "key", "--window", window, "s")
        time.sleep(0.5)
        with mss.MSS(display=display) as screen:
            deadline = time.monotonic() + 60  # poll: the window may take a moment to repaint (more under load)
            while True:
                shot = screen.grab({"left": x0, "top": y0, "width": int(geo["WIDTH"]), "height": int(geo["HEIGHT"])})
                pixels = np.frombuffer(shot.rgb, np.uint8).reshape(-1, 3)[::7]
                if len({tuple(c) for c in pixels} & set(L.PALETTE.values())) >= 4 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            mss.tools.to_png(shot.rgb, shot.size, output=str(tmp_path / "screenshot.png"))
        _xdotool(env, "key", "--window", window, "q")
        out, err = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, err
    assert "Traceback" not in err
    if os.environ.get("RTGAN_SCREENSHOT"):
        shutil.copy(tmp_path / "screenshot.png", os.environ["RTGAN_SCREENSHOT"])

    # the snapshot the `s` key wrote: paint mode (legend strip under the panels, the help strip under
    # it, covering neither panel), the sea stroke drawn
    from rtgan.demo.paint import Canvas
    from rtgan.demo.view import help_strip

    legend = Canvas(128, 128, {i: L.NAMES[i] for i in L.LABEL_IDS}, L.PALETTE).legend(256).shape[0]
    snap = cv2.imread(str(tmp_path / "out" / "snapshot-001.png"))[..., ::-1]
    assert snap.shape == (2 * (128 + legend) + help_strip(512, 2).shape[0], 2 * 256, 3)  # the window, at its scale
    stroke = snap[2 * 50, 2 * 35 : 2 * 105]
    assert (stroke == L.PALETTE[L.ID["sea"]]).all(axis=1).mean() > 0.9
    # the screen shows the window's content: the canvas panel in palette colours, scaled x2
    screen = cv2.imread(str(tmp_path / "screenshot.png"))[..., ::-1]
    seen = {tuple(c) for c in screen.reshape(-1, 3)[::7]}
    assert len(seen & set(L.PALETTE.values())) >= 4


def test_window_paints_camera_frames_through_an_image_model(image_engine, tmp_path, display):
    """photo -> painting in a real window: a looping video as the camera, two panels, `s` and `q`."""
    from test_image_mode import _photo_video

    _photo_video(tmp_path / "in.mp4")
    env = {**os.environ, "DISPLAY": display, "RTGAN_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "rtgan.demo", "--model", str(image_engine), "--source", str(tmp_path / "in.mp4"),
           "--loop", "--window", "--scale", "2", "--fps", "15", "--out", str(tmp_path / "out")]  # fmt: skip
    demo = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        window = _xdotool(env, "search", "--sync", "--name", "^rtgan$").split()[0]
        time.sleep(0.3)
        _xdotool(env, "windowunmap", "--sync", window, "windowmap", "--sync", window)
        snap = tmp_path / "out" / "snapshot-001.png"
        deadline = time.monotonic() + 60
        while not snap.is_file() and time.monotonic() < deadline:  # once frames flow, `s` writes one
            time.sleep(0.5)
            _xdotool(env, "key", "--window", window, "s")
        time.sleep(0.5)
        _xdotool(env, "key", "--window", window, "q")
        out, err = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, err
    assert "Traceback" not in err
    frame = cv2.imread(str(snap))
    assert frame.shape == (2 * 128, 2 * 256, 3)  # camera | painting, at the window's scale
    camera, painting = frame[80:, :256].astype(int), frame[80:, 256:].astype(int)
    assert painting.std() > 5 and np.abs(camera - painting).mean() > 5  # a painting, not the frame again
    summary = json.loads((tmp_path / "out" / "latency.json").read_text())
    assert summary["frames_shown"] >= 1 and summary["source"] != "scene"
