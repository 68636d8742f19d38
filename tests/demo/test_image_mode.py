"""The demo's photo -> painting mode: image-to-image engines take the frames themselves (no
segmentation), label sources reach them as pencil drawings, and `m` switches between the two kinds."""

import json

import cv2
import numpy as np

from rtgan import Engine
from rtgan.data import landscapes as L
from rtgan.data import sketches
from rtgan.demo import Demo, DemoConfig, engines
from rtgan.demo.imaging import resize_cover
from rtgan.demo.pipeline import Packet


def _photo_video(path, frames: int = 12, size=(120, 160)) -> list[np.ndarray]:
    """A 'camera' panning over rendered landscape photos, at another size than the engine's; returns
    the frames as a decoder reads them back (RGB)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, size[::-1])
    photo = L.render(7, size[0], size[1] + frames * 4)[1]
    for t in range(frames):
        writer.write(np.ascontiguousarray(photo[:, t * 4 : t * 4 + size[1], ::-1]))
    writer.release()
    cap, decoded = cv2.VideoCapture(str(path)), []
    while (ok := cap.read())[0]:
        decoded.append(ok[1][..., ::-1])
    return decoded


def _same_engine(path, engine: Engine) -> Engine:
    """`path` opened as the demo opened it: same runtime, same precision (auto may pick bf16)."""
    return Engine.load(path, backend=engine.backend_name, precision=engine.precision)


def _config(models, out, **kw):
    return DemoConfig(**{"models": tuple(map(str, models)), "headless": True, "out": str(out), **kw})


def test_headless_video_goes_straight_through_an_image_model(image_engine, tmp_path):
    decoded = _photo_video(tmp_path / "in.mp4")
    said = []
    demo = Demo(_config([image_engine], tmp_path / "out", source=str(tmp_path / "in.mp4")), log=said.append)
    calls = []
    segmenter = demo.segmenter
    demo.painter.to_labels = demo.segmenter = lambda image: calls.append(1) or segmenter(image)
    assert demo.run() == 0
    assert not calls, "an image-to-image model's frames are not segmented"
    summary = json.loads((tmp_path / "out" / "latency.json").read_text())
    assert summary["frames_shown"] >= 1 and "source ended (end of stream)" in said
    for stage in ("capture", "segment", "paint", "display", "end_to_end"):
        assert summary[f"{stage}_ms"]["median"] > 0
    video = cv2.VideoCapture(str(tmp_path / "out" / "demo.mp4"))
    ok, first = video.read()
    assert ok and first.shape == (128, 256, 3)  # camera | painting: no labels panel
    # the last snapshot's painting is the engine's painting of one of the frames, fitted to 128x128
    snap = cv2.imread(str(sorted((tmp_path / "out").glob("snapshot-*.png"))[-1]))[..., ::-1]
    engine = _same_engine(image_engine, demo.painter.engine)
    errors = []
    for frame in decoded:
        fitted = resize_cover(frame, 128, 128)
        painting = engine.run(source=fitted).astype(int)
        errors.append(
            max(np.abs(snap[40:, 128:] - painting[40:]).max(), np.abs(snap[40:, :128] - fitted[40:].astype(int)).max())
        )
    assert min(errors) == 0, errors  # below the overlay text
    assert np.abs(snap[40:, 128:].astype(int) - snap[40:, :128]).mean() > 5  # and not the camera frame again


def test_label_sources_reach_an_image_model_as_a_drawing(image_engine, tmp_path):
    demo = Demo(_config([image_engine], tmp_path, source="scene", frames=3), log=lambda *_: None)
    assert demo.palette == L.PALETTE  # the landscape classes: scene, canvas and label models work
    packet = demo.painter(demo.segment(Packet(0, 0.0, labels=demo.live.read())))
    assert (packet.image == sketches.drawing(packet.labels)).all()
    engine = _same_engine(image_engine, demo.painter.engine)
    assert (packet.painting == engine.run(source=packet.image)).all()
    frame = demo.frame(packet)
    assert frame.shape == (128, 384, 3)  # drawing | labels | painting
    assert demo.run() == 0


def test_m_switches_between_image_and_label_models_both_ways(image_engine, landscape_engine, tmp_path):
    said = []
    demo = Demo(_config([image_engine, landscape_engine], tmp_path, source="scene"), log=said.append)
    label_frame = demo.live.read()
    photo = L.render(3, 128, 128)[1]
    # image model: a camera frame is not segmented
    packet = demo.painter(demo.segment(Packet(0, 0.0, image=photo)))
    assert packet.labels is None and packet.painting.shape == (128, 128, 3)
    # a frame prepared for the image model, painted after `m` by the label model: segmented then
    pending = demo.segment(Packet(1, 0.0, image=photo))
    demo.painter.next_model()
    packet = demo.painter(pending)
    assert demo.painter.current == 1 and not demo.painter.takes_image, said
    assert packet.labels is not None and (packet.labels == demo.segmenter(pending.image)).all()
    e = demo.painter.engine
    label_engine = Engine.load(landscape_engine, backend=e.backend_name, precision=e.precision)
    assert (packet.painting == label_engine.run(packet.labels)).all()
    # and back: a label frame prepared for the label model, painted by the image model as a drawing
    pending = demo.segment(Packet(2, 0.0, labels=label_frame))
    assert pending.image is None
    demo.painter.next_model()
    packet = demo.painter(pending)
    assert demo.painter.current == 0 and (packet.image == sketches.drawing(label_frame)).all()
    assert not [m for m in said if "cannot switch" in m], said


def test_munit_style_is_stable_until_n_draws_a_new_one(tmp_path):
    from rtgan.export import export
    from rtgan.models import get_model

    model = get_model("munit-edges2shoes", dim=8, mlp_dim=32)
    out = export(model, height=64, width=64, backend="onnxruntime", out=tmp_path / "munit", progress=False)
    painter = engines.Painter([str(out)], log=lambda *_: None)
    photo = L.render(2, 64, 64)[1]
    paint = lambda: painter(Packet(0, 0.0, image=photo)).painting  # noqa: E731
    a, b = paint(), paint()
    assert (a == b).all()  # one style code per style: no flicker
    assert painter.new_style()
    c = paint()
    assert (c != a).any()
    engine = Engine.load(out, backend=painter.engine.backend_name, precision=painter.engine.precision)
    assert (c == engine.run(source=photo, style_code=painter.z[0])).all()
