"""The demo end to end, headless: built-in scene, a generated video, faults, Ctrl-C, model caching."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtgan.data import landscapes as L
from rtgan.demo import Demo, DemoConfig, engines
from rtgan.demo.__main__ import main
from rtgan.demo.pipeline import Packet
from rtgan.demo.scene import AnimatedScene
from rtgan.demo.sources import Camera, Scene, SourceError, open_source

ROOT = Path(__file__).parents[2]


def _video_frames(path: Path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            return frames
        frames.append(f)


def _config(engine, out, **kw):
    return DemoConfig(**{"models": (str(engine),), "headless": True, "out": str(out), **kw})


def test_headless_builtin_scene_writes_video_snapshots_and_latency(landscape_engine, tmp_path):
    demo = Demo(_config(landscape_engine, tmp_path, source="scene", frames=12), log=lambda *_: None)
    assert demo.run() == 0
    frames = _video_frames(tmp_path / "demo.mp4")
    assert len(frames) == 12 and frames[0].shape == (128, 256, 3)  # labels | painting
    assert not list(tmp_path.glob(".*part*"))
    assert len(list(tmp_path.glob("snapshot-*.png"))) == 3  # first, middle, last
    summary = json.loads((tmp_path / "latency.json").read_text())
    assert summary["frames_shown"] == 12 and summary["backend"] in ("openvino", "onnxruntime")
    for stage in ("capture", "segment", "paint", "display", "end_to_end"):
        assert summary[f"{stage}_ms"]["median"] > 0
    # the labels panel shows the scene in its palette colours
    labels_panel = cv2.imread(str(tmp_path / "snapshot-001.png"))[20:, :128, ::-1]
    colours = {tuple(c) for c in labels_panel.reshape(-1, 3)}
    assert len(colours & set(L.PALETTE.values())) >= 5


def _write_marker_video(path: Path, frames: int = 24, size=(120, 160)) -> None:
    """A 'camera' filming a marker drawing of the moving scene, at another size than the engine's."""
    scene = AnimatedScene(*size)
    lut = np.zeros((256, 3), np.uint8)
    for i, c in L.PALETTE.items():
        lut[i] = c
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size[::-1])
    rng = np.random.default_rng(0)
    for t in range(frames):
        img = cv2.GaussianBlur(lut[scene.frame(t / 5)].astype(np.float32), (0, 0), 1.2)
        img = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
        writer.write(img[..., ::-1])
    writer.release()


def test_headless_generated_video_ends_cleanly(landscape_engine, tmp_path):
    _write_marker_video(tmp_path / "in.mp4")
    messages = []
    demo = Demo(_config(landscape_engine, tmp_path / "out", source=str(tmp_path / "in.mp4")), log=messages.append)
    assert demo.run() == 0
    assert "source ended (end of stream)" in messages
    frames = _video_frames(tmp_path / "out" / "demo.mp4")
    assert 1 <= len(frames) <= 24 and frames[0].shape == (128, 384, 3)  # input | labels | painting
    # the segmented labels in the last frame match the drawing's: read the labels panel back to ids
    last = cv2.imread(str(sorted((tmp_path / "out").glob("snapshot-*.png"))[-1]))[30:, 128:256, ::-1]
    known = np.zeros(1 << 24, bool)
    for c in L.PALETTE.values():
        known[(c[0] << 16) | (c[1] << 8) | c[2]] = True
    codes = (last[..., 0].astype(int) << 16) | (last[..., 1].astype(int) << 8) | last[..., 2]
    assert known[codes].mean() > 0.9  # labels panel = class colours (the overlay text aside)


def test_slow_stage_keeps_latency_bounded(landscape_engine, tmp_path):
    demo = Demo(_config(landscape_engine, tmp_path, source="scene", frames=10, fps=60), log=lambda *_: None)
    segment, read, captured = demo.segment, demo.source.read, []

    def counted():
        frame = read()
        captured.append(frame is not None)
        return frame

    def slow(packet):
        # segmenting lasts while the scene captures 6 more frames (counted, not timed: CI may be loaded)
        deadline = time.monotonic() + 60  # only a guard against a hang
        while len(captured) < packet.index + 7 and not demo.pipeline._stop.is_set():
            assert time.monotonic() < deadline
            time.sleep(0.002)
        return segment(packet)

    demo.source.read = counted
    demo.pipeline._threads[1]._args = ("segment", slow, *demo.pipeline._threads[1]._args[2:])
    assert demo.run() == 0
    s = demo.summary
    assert s["frames_shown"] == 10 and all(captured)
    assert s["dropped"]["segment"] > 10  # frames were dropped, not queued
    # not a growing backlog: every frame captured was shown or dropped, but for at most one in each
    # mailbox, in each stage and in capture's hand
    assert len(captured) - s["frames_shown"] - sum(s["dropped"].values()) <= 6, (len(captured), s["dropped"])


class _Failing:
    kind, fps = "labels", 50.0

    def __init__(self, good: int):
        self.good, self.closed = good, False
        self.scene = Scene(128, 128)

    def read(self):
        self.good -= 1
        if self.good < 0:
            raise OSError("camera unplugged")
        return self.scene.read()

    def close(self):
        self.closed = True


def test_source_failing_mid_run_stops_with_a_message(landscape_engine, tmp_path):
    messages = []
    demo = Demo(_config(landscape_engine, tmp_path, source="scene", frames=1000), log=messages.append)
    broken = _Failing(good=40)  # 0.8 s of frames, then the device errors
    demo.source.set(broken)
    assert demo.run() == 1
    assert any("capture stage failed: OSError: camera unplugged" in m for m in messages)
    assert broken.closed and demo.summary["frames_shown"] > 0
    assert len(_video_frames(tmp_path / "demo.mp4")) == demo.summary["frames_shown"]  # finished, readable


def test_ctrl_c_stops_cleanly_with_files_closed(landscape_engine, tmp_path):
    env = {**os.environ, "RTGAN_CACHE": str(tmp_path / "cache"), "RTGAN_NO_CAMERA": "1"}
    cmd = [
        sys.executable,
        "-m",
        "rtgan.demo",
        "--model",
        str(landscape_engine),
        "--headless",
        "--frames",
        "100000",
        "--out",
        str(tmp_path / "out"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    first = proc.stdout.readline()  # the camera fallback message
    started = proc.stdout.readline()
    assert "painting with" in first + started, first + started
    deadline = time.monotonic() + 120  # only a guard against a hang: wait for the first frame shown
    while not (tmp_path / "out" / "snapshot-001.png").is_file():
        assert time.monotonic() < deadline and proc.poll() is None, "no frame shown"
        time.sleep(0.05)
    time.sleep(0.5)  # a few more frames, usually (not counted on: CI may be loaded)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: stopped cleanly" in out
    frames = _video_frames(tmp_path / "out" / "demo.mp4")
    assert len(frames) >= 1  # a finished, readable MP4 (the snapshot came after the first frame was recorded)
    assert json.loads((tmp_path / "out" / "latency.json").read_text())["frames_shown"] == len(frames)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The demo's index and the engines it exports in a fresh folder (both sit under RTGAN_CACHE)."""
    monkeypatch.setattr(engines, "INDEX", tmp_path / "index.json")
    return tmp_path


def test_model_directory_is_exported_once_then_opened_from_the_cache(landscape_model, tmp_path, cache, monkeypatch):
    engine = engines.open_engine(str(landscape_model), "auto", log=lambda *_: None)
    assert (engine.height, engine.width) == (256, 256)
    assert Path(next(iter(json.loads((tmp_path / "index.json").read_text()).values()))).parent == tmp_path / "engines"

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(engines, "_export", no_export)
    again = engines.open_engine(str(landscape_model), "auto", log=lambda *_: None)
    assert again.directory == engine.directory
    # both open on the runtime chosen for the export, not whichever Engine's own "auto" prefers
    assert engine.backend_name == again.backend_name == engines.cpu_backend()


def test_missing_camera_falls_back_to_the_scene_and_bad_sources_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RTGAN_NO_CAMERA", "1")
    said = []
    assert isinstance(open_source(None, 64, 64, log=said.append), Scene) and "no camera" in said[0]
    with pytest.raises(SourceError, match="no such video file"):
        open_source(str(tmp_path / "missing.mp4"), 64, 64)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(SourceError, match="cannot decode"):
        open_source(str(tmp_path / "broken.mp4"), 64, 64)
    (tmp_path / "x.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="not a readable image"):
        open_source(str(tmp_path / "x.png"), 64, 64)


def test_cli_reports_bad_input_without_a_traceback(landscape_engine, tmp_path, capsys):
    assert main(["--model", str(landscape_engine), "--source", str(tmp_path / "nope.mp4"), "--headless"]) == 2
    assert "nope.mp4: no such video file" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "nothing"), "--headless"]) == 2
    err = capsys.readouterr().err
    assert "no model" in err and "landscape-asapnet" in err and len(err.strip().splitlines()) == 1


class _FakeCapture:
    """A camera that delivers frames, goes away for `gap` reopen attempts, then comes back."""

    opened = 0

    def __init__(self, frames, gap):
        self.frames, self.gap = frames, gap

    def __call__(self, index):
        _FakeCapture.opened += 1
        return self

    def isOpened(self):
        return _FakeCapture.opened == 1 or _FakeCapture.opened > 1 + self.gap

    def set(self, *a):
        return True

    def read(self):
        if not self.isOpened() or (_FakeCapture.opened == 1 and self.frames <= 0):
            return False, None
        self.frames -= 1
        return True, np.zeros((4, 4, 3), np.uint8)

    def release(self):
        pass


@pytest.mark.parametrize("gap, comes_back", [(2, True), (10, False)])
def test_camera_reconnects_or_gives_up(monkeypatch, gap, comes_back):
    _FakeCapture.opened = 0
    monkeypatch.setattr(cv2, "VideoCapture", _FakeCapture(frames=2, gap=gap))
    monkeypatch.setattr(time, "sleep", lambda s: None)
    said = []
    cam = Camera(0, retries=4, log=said.append)
    assert cam.read() is not None and cam.read() is not None
    frame = cam.read()  # the camera drops out here
    assert (frame is not None) == comes_back
    assert any("reconnecting" in m for m in said)
    assert comes_back or "gone after 4 reconnects" in said[-1]


class _FakeWindow:
    def __init__(self):
        self.bars = {}

    def set_trackbar(self, label, value):
        self.bars[label] = value


def test_keys_drive_pause_paint_mode_brushes_models_and_snapshots(landscape_engine, tmp_path):
    said = []
    demo = Demo(
        DemoConfig(models=(str(landscape_engine), str(landscape_engine)), source="scene", out=str(tmp_path)),
        log=said.append,
    )
    window = _FakeWindow()
    demo.window = window
    key = lambda ch, last=None: demo._key(ord(ch) if isinstance(ch, str) else ch, last, window)  # noqa: E731
    assert key(" ") and demo.pipeline.paused.is_set()
    assert key(" ") and not demo.pipeline.paused.is_set()
    assert key("p") and demo.painting_mode and demo.source.current is not demo.live
    assert key("3") and demo.canvas.brush == 2 and window.bars["class"] == 2
    size = demo.canvas.size
    assert key("]") and demo.canvas.size == size + 2 and window.bars["brush"] == size + 2
    assert key("f") and demo.canvas.fill_mode
    demo._on_mouse(cv2.EVENT_LBUTTONDOWN, 5, 5, 0)  # a fill on the canvas panel
    assert (demo.canvas.labels == demo.canvas.ids[2]).mean() > 0.05
    assert key("u") and key("c") and (demo.canvas.labels == demo.canvas.ids[2]).all()
    demo._on_mouse(cv2.EVENT_LBUTTONDOWN, 3, demo.height + 5, 0)  # the legend strip: first class
    assert demo.canvas.brush == 0
    assert key("w") and len(list(tmp_path.glob("canvas-*.png"))) == 1
    assert key("p") and not demo.painting_mode and demo.source.current is demo.live
    assert key("n") and "no style input" in said[-1]
    demo.painter.next_model()
    packet = demo.segment(Packet(0, 0.0, labels=demo.live.read()))
    demo.painter(packet)
    assert demo.painter.current == 1 and packet.painting.shape == (128, 128, 3)
    assert key("s", packet) and len(list(tmp_path.glob("snapshot-*.png"))) == 1
    assert key("h") and demo.help
    assert not key("q") and not key(27)


def test_vae_style_is_stable_until_n_asks_for_a_new_one(tmp_path):
    from rtgan import models
    from rtgan.export import export
    from rtgan.models.init import init_weights

    vae = init_weights(models.get_model("landscape-spade", ngf=4, z_dim=8))
    engine = export(vae, height=256, width=256, backend="onnxruntime", out=tmp_path / "vae", progress=False)
    painter = engines.Painter([str(engine)], log=lambda *_: None)
    labels = L.layout(0, 256, 256)
    paint = lambda: painter(Packet(0, 0.0, labels=labels)).painting  # noqa: E731
    a, b = paint(), paint()
    assert (a == b).all()  # one z per style: no flicker between frames
    assert painter.new_style()
    assert (paint() != a).any()


def test_headless_video_through_a_user_onnx_segmenter(landscape_engine, tmp_path):
    from test_segment import _tiny_segmentation_net

    _tiny_segmentation_net(tmp_path / "seg.onnx")
    (tmp_path / "map.json").write_text(json.dumps({"classes": {"0": "flower", "1": "grass", "2": "sea"}}))
    _write_marker_video(tmp_path / "in.mp4", frames=10)
    config = _config(landscape_engine, tmp_path / "out", source=str(tmp_path / "in.mp4"), segmenter="onnx",
                     seg_model=str(tmp_path / "seg.onnx"), seg_mapping=str(tmp_path / "map.json"))  # fmt: skip
    demo = Demo(config, log=lambda *_: None)
    assert demo.run() == 0 and demo.summary["frames_shown"] >= 1
    labels_panel = cv2.imread(str(sorted((tmp_path / "out").glob("snapshot-*.png"))[-1]))[30:, 128:256, ::-1]
    colours = {tuple(c) for c in labels_panel.reshape(-1, 3)}
    allowed = {L.PALETTE[L.ID[n]] for n in ("flower", "grass", "sea")}
    assert len(colours & allowed) >= 2 and not (colours & (set(L.PALETTE.values()) - allowed))


# --- issue 17: every bundled model opens, model switching, no display, corrupted cache, sources, fitting ---


@pytest.mark.parametrize(
    "name, size",
    [
        ("landscape-asapnet", "64x64"),  # any multiple of 16
        ("landscape-pix2pixhd", "64x64"),  # any multiple of 8 (its config has no crop_size: this crashed)
        pytest.param("landscape-spade", None, marks=pytest.mark.slow),  # a VAE: 256x256 only, ~20 s to export
    ],
)
def test_every_bundled_model_opens_by_name(name, size, tmp_path, cache, monkeypatch, capsys):
    monkeypatch.setenv("RTGAN_NO_CAMERA", "1")
    out = tmp_path / "out"
    args = ["--model", name, "--headless", "--frames", "2", "--no-record", "--out", str(out)]
    assert main(args + (["--size", size] if size else [])) == 0, capsys.readouterr().err
    summary = json.loads((out / "latency.json").read_text())
    assert summary["model"] == name and summary["frames_shown"] == 2
    assert summary["size"] == ([int(v) for v in size.split("x")] if size else [256, 256])
    painting = cv2.imread(str(sorted(out.glob("snapshot-*.png"))[-1]))[:, -summary["size"][1] :]
    assert painting.std() > 5  # a painting, not a blank panel


def test_size_that_a_model_cannot_paint_or_an_engine_does_not_have_is_one_line(landscape_engine, tmp_path, capsys):
    base = ["--headless", "--frames", "1", "--source", "scene", "--out", str(tmp_path)]
    assert main(["--model", str(landscape_engine), "--size", "64x64", *base]) == 2
    err = capsys.readouterr().err.strip()
    assert "exported at 128x128: it paints that size only, not 64x64" in err and len(err.splitlines()) == 1
    assert main(["--model", "landscape-spade", "--size", "64x64", *base]) == 2  # fails before exporting
    err = capsys.readouterr().err.strip()
    assert "256x256 only" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def _broken_models(engine: Path, tmp_path: Path) -> list[str]:
    """Models that cannot paint beside `engine`: each fails differently when the demo switches to it."""
    corrupt = tmp_path / "corrupt-engine"  # a file no longer matching its manifest's SHA-256
    shutil.copytree(engine, corrupt)
    manifest = json.loads((corrupt / "manifest.json").read_text())
    victim = corrupt / next(iter(manifest["files"]))
    victim.write_bytes(b"\0" * 64 + victim.read_bytes()[64:])
    other_size = tmp_path / "other-size-engine"  # claims another size than the demo paints
    shutil.copytree(engine, other_size)
    manifest["height"] = manifest["width"] = 64
    (other_size / "manifest.json").write_text(json.dumps(manifest))
    junk = tmp_path / "junk-model"  # a config.json that is not a model's (valid JSON, wrong shape)
    junk.mkdir()
    (junk / "config.json").write_text("[]")
    return [str(corrupt), str(other_size), str(junk), str(tmp_path / "no-such-model")]


def test_switching_models_any_number_of_times_keeps_the_session_and_the_drawing(landscape_engine, tmp_path):
    said = []
    broken = _broken_models(landscape_engine, tmp_path)
    models = (str(landscape_engine), broken[0], broken[1], str(landscape_engine), broken[2], broken[3])
    demo = Demo(_config(landscape_engine, tmp_path, models=models, source="scene", paint=True), log=said.append)
    demo.canvas.select(demo.canvas.ids.index(L.ID["sea"]))
    demo.canvas.press(10, 10)  # an unsaved drawing
    demo.canvas.drag(100, 60)
    drawing = demo.canvas.labels.copy()
    for i in range(len(models) + 2):  # round the cycle and on: the broken ones are gone by then
        demo.painter.next_model()
        packet = demo.painter(demo.segment(Packet(i, 0.0, labels=demo.source.read())))
        assert packet.painting.shape == (128, 128, 3)
        demo.frame(packet)
    assert (demo.canvas.labels == drawing).all()
    assert demo.painter.models == [str(landscape_engine)] * 2  # the broken ones left the cycle
    for model in broken:  # each named once, on one line with its problem
        lines = [m for m in said if model + ":" in m and "cannot switch to" in m]
        assert len(lines) == 1 and "\n" not in lines[0] and "dropped from the cycle" in lines[0], said
    assert any("SHA-256" in m for m in said) and any("64x64" in m for m in said)
    # and live: m pressed while the pipeline runs, the broken models back in the cycle
    demo.painter.models, demo.painter.current = [str(landscape_engine), *broken], 0
    demo.config.frames = 20
    pressing = threading.Event()

    def press_m():
        while not pressing.wait(0.03):
            demo.painter.next_model()

    presser = threading.Thread(target=press_m, daemon=True)
    presser.start()
    try:
        assert demo.run() == 0
    finally:
        pressing.set()
        presser.join()
    assert demo.pipeline.error is None and demo.summary["frames_shown"] == 20
    assert demo.painter.models == [str(landscape_engine)]
    assert (demo.canvas.labels == drawing).all()


def test_window_without_a_display_is_one_line_before_any_work(landscape_engine, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)

    def no_work(*a, **k):
        raise AssertionError("the engine was opened before the display check")

    monkeypatch.setattr(engines, "open_engine", no_work)
    assert main(["--model", str(landscape_engine), "--window", "--source", "scene", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no display found" in err and "DISPLAY" in err and "--headless" in err


def test_corrupted_cached_engine_is_rebuilt(landscape_model, cache, monkeypatch):
    said = []
    engine = engines.open_engine(str(landscape_model), "onnxruntime", log=said.append, size=(64, 64))
    directory = engine.directory
    manifest = json.loads((directory / "manifest.json").read_text())
    for name in manifest["files"]:  # flip bytes in every file of the cached artifact
        data = bytearray((directory / name).read_bytes())
        data[len(data) // 2 : len(data) // 2 + 16] = bytes(b ^ 0xFF for b in data[len(data) // 2 : len(data) // 2 + 16])
        (directory / name).write_bytes(bytes(data))
    said.clear()
    again = engines.open_engine(str(landscape_model), "onnxruntime", log=said.append, size=(64, 64))
    assert any(f"cached engine {directory} is corrupted" in m and "rebuilding" in m for m in said), said
    assert any("exporting" in m for m in said)
    painting = again.run(L.layout(0, 64, 64))
    assert painting.shape == (64, 64, 3)
    said.clear()  # and the rebuilt one is the cached one now: no third export
    engines.open_engine(str(landscape_model), "onnxruntime", log=said.append, size=(64, 64))
    assert not said


def test_an_explicit_camera_is_never_replaced_and_latency_json_says_what_was_painted(
    landscape_engine, tmp_path, monkeypatch
):
    monkeypatch.setenv("RTGAN_NO_CAMERA", "1")
    for spec in ("0", "3"):
        with pytest.raises(SourceError, match=rf"no camera at index {spec}.*--source scene"):
            open_source(spec, 64, 64)
    said = []
    demo = Demo(_config(landscape_engine, tmp_path, frames=3), log=said.append)  # no source given
    assert demo.run() == 0
    assert any("no camera" in m and "scene" in m for m in said)
    summary = json.loads((tmp_path / "latency.json").read_text())
    assert summary["source"] == "scene" and summary["requested_source"] is None and summary["painted"] == ["scene"]


def test_a_label_map_of_another_shape_is_cropped_not_squashed_and_said_once(landscape_engine, tmp_path):
    labels = np.full((300, 200), L.ID["sea"], np.uint8)  # 300 high, 200 wide: sea bands top and bottom
    labels[50:250] = L.ID["grass"]  # the centre 200x200 square is all grass
    cv2.imwrite(str(tmp_path / "map.png"), labels)
    said = []
    demo = Demo(_config(landscape_engine, tmp_path, source=f"labels:{tmp_path / 'map.png'}"), log=said.append)
    for i in range(3):
        packet = demo.segment(Packet(i, 0.0, labels=demo.live.read()))
        assert packet.labels.shape == (128, 128)
        assert (packet.labels == L.ID["grass"]).all()  # squashing would have kept sea at the top and bottom
    notes = [m for m in said if "300x200" in m]
    assert len(notes) == 1 and "128x128" in notes[0] and "200x200" in notes[0] and "nearest" in notes[0]


def test_cli_follows_the_rtgan_convention(capsys):
    from rtgan.demo.__main__ import parse

    config = parse(["--seg_model", "net.onnx", "--seg-mapping", "map.json", "--size", "64x96", "--no_record"])
    assert (config.seg_model, config.seg_mapping) == ("net.onnx", "map.json")  # either spelling
    assert config.size == (64, 96) and config.record is False
    assert parse([]).source is None and parse([]).size is None
    with pytest.raises(SystemExit):
        parse(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: out/demo)" in text and "(default: palette)" in text and "(default: 30.0)" in text
