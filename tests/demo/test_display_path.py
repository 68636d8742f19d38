"""The display path's fast forms against their plain ones: label colours, composition, the recorder thread."""

import numpy as np
import pytest

from rtgan.data import landscapes as L
from rtgan.demo.imaging import palette_lut
from rtgan.demo.paint import Canvas
from rtgan.demo.scene import AnimatedScene
from rtgan.demo.view import LabelColours, Recorder, _text, compose, help_strip


def compose_ref(input_rgb, labels_rgb, painting, overlay=(), legend=None, help=False, scale=1):
    """`compose` as numpy reads it: concatenate, flip the channels, enlarge, then the text."""
    import cv2

    frame = np.concatenate(([input_rgb] if input_rgb is not None else []) + [labels_rgb, painting], axis=1)
    if legend is not None:
        frame = np.concatenate([frame, legend], axis=0)
    frame = frame[..., ::-1]
    if scale != 1:
        frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    frame = np.ascontiguousarray(frame)
    if overlay:
        _text(frame, list(overlay), 5 * scale, 13 * scale, scale)
    if help:
        frame = np.concatenate([frame, help_strip(frame.shape[1], scale)], axis=0)
    return frame


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
@pytest.mark.parametrize("size", [(256, 256), (61, 97)])
def test_label_colours_are_the_lut_lookup(dtype, size):
    rng = np.random.default_rng(1)
    for lut in (palette_lut(L.PALETTE, 256), palette_lut(None, 300)):
        labels = rng.integers(0, len(lut), size).astype(dtype)
        got = LabelColours(lut)(labels)
        assert got.dtype == np.uint8 and got.flags.c_contiguous and np.array_equal(got, lut[labels])
    with pytest.raises(IndexError):
        LabelColours(lut)(np.full(size, len(lut), np.int32))


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("camera, paint, help", [(False, False, False), (True, False, True), (False, True, True)])
def test_compose_matches_the_plain_composition(scale, camera, paint, help):
    h, w = 96, 128
    rng = np.random.default_rng(2)
    labels = AnimatedScene(h, w).frame(0.7)
    lut = palette_lut(L.PALETTE, 256)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8) if camera else None
    painting = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    legend = Canvas(h, w, {i: L.NAMES[i] for i in L.LABEL_IDS}, L.PALETTE).legend(w * 2) if paint else None
    args = (["12.3 fps  latency 80 ms REC", "model (backend)  ms: capture 1"], legend, help, scale)
    got = compose(image, LabelColours(lut)(labels), painting, *args)
    want = compose_ref(image, lut[labels], painting, *args)
    assert got.flags.c_contiguous and np.array_equal(got, want)


def _frames(path):
    import cv2

    capture, frames = cv2.VideoCapture(str(path)), []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    return frames


def test_recorder_thread_keeps_every_frame_as_it_was_written(tmp_path):
    recorder = Recorder(tmp_path / "r.mp4", 10, backlog=2)  # a small backlog: write waits, never drops
    frame = np.zeros((64, 96, 3), np.uint8)
    for i in range(12):
        frame[:] = 20 * i  # one buffer, changed after each write
        recorder.write(frame)
    assert not (tmp_path / "r.mp4").exists()  # under its final name only once closed
    assert recorder.close() == tmp_path / "r.mp4" and recorder.frames == 12
    frames = _frames(tmp_path / "r.mp4")
    assert len(frames) == 12 and all(abs(int(f[32, 48, 0]) - 20 * i) < 10 for i, f in enumerate(frames))
    assert not list(tmp_path.glob(".*part*")) and recorder.close() is None


def test_an_encoder_error_is_raised_on_the_callers_thread(tmp_path):
    recorder = Recorder(tmp_path / "r.mp4", 10)
    recorder.write(np.zeros((64, 96, 3), np.uint8))

    class Failing:  # the real writer, failing from now on
        def __init__(self, writer):
            self.writer = writer

        def write(self, frame):
            raise RuntimeError("encoder broke")

        def release(self):
            self.writer.release()

    recorder.writer = Failing(recorder.writer)
    recorder.write(np.zeros((64, 96, 3), np.uint8))
    with pytest.raises(RuntimeError, match="encoder broke"):
        recorder.close()
    assert (tmp_path / "r.mp4").exists() and not list(tmp_path.glob(".*part*"))  # what was encoded is kept
