"""The animated scene moves; the paint canvas draws, fills, undoes, saves and loads."""

import numpy as np
import pytest

from rtgan.data import landscapes as L
from rtgan.demo.paint import Canvas
from rtgan.demo.scene import AnimatedScene
from rtgan.errors import InputError


def test_scene_clouds_drift_and_waves_move_the_shore():
    scene = AnimatedScene(128, 192)
    a, b = scene.frame(0.0), scene.frame(2.0)
    assert a.shape == (128, 192) and set(np.unique(a)) <= set(L.LABEL_IDS)
    clouds = lambda x: x == L.ID["clouds"]  # noqa: E731
    assert clouds(a).any() and (clouds(a) != clouds(b)).any()
    sky = np.isin(scene.base, [L.ID["sky"], L.ID["clouds"]])
    assert (np.isin(b, [L.ID["sky"], L.ID["clouds"]]) == sky).all()  # clouds stay in the sky
    sea = lambda x: x == L.ID["sea"]  # noqa: E731
    frames = [scene.frame(t) for t in np.arange(0, 2.5, 0.25)]
    assert len({sea(f).tobytes() for f in frames}) > 3  # the waterline moves
    changed = np.logical_or.reduce([f != scene.base for f in frames]) & ~sky
    assert (
        changed.any()
        and np.isin(
            scene.base[changed],
            [L.ID["sea"], L.ID["sand"], L.ID["grass"], L.ID["rock"], L.ID["dirt"], L.ID["water"], L.ID["river"]],
        ).all()
    )
    assert (scene.frame(1.5) == AnimatedScene(128, 192).frame(1.5)).all()  # deterministic


def _canvas(h=64, w=80):
    return Canvas(h, w, {i: L.NAMES[i] for i in L.LABEL_IDS}, L.PALETTE)


def test_canvas_strokes_fill_undo_clear():
    c = _canvas()
    assert (c.labels == L.LABEL_IDS[0]).all()
    c.select(L.LABEL_IDS.index(L.ID["sea"]))
    c.size = 6
    c.press(10, 10)
    c.drag(60, 10)
    c.release()
    stroke = c.labels == L.ID["sea"]
    assert stroke[10, 10:61].all() and not stroke[30].any()
    v = c.version
    c.select(L.LABEL_IDS.index(L.ID["grass"]))
    c.fill_mode = True
    c.press(5, 40)  # below the stroke: the sky region the stroke does not cut off
    assert c.version > v
    assert (c.labels[30:] == L.ID["grass"]).all() and (c.labels[stroke] == L.ID["sea"]).all()
    assert c.undo() and (c.labels[30:] == L.LABEL_IDS[0]).all()
    assert c.undo() and (c.labels == L.LABEL_IDS[0]).all()
    assert not c.undo()
    c.clear()
    assert (c.labels == L.ID["grass"]).all()
    c.pick(0, 0)
    assert c.brush_id == L.ID["grass"]


def test_canvas_save_load_roundtrip_and_errors(tmp_path):
    c = _canvas()
    c.labels[:] = L.layout(2, 64, 80)
    path = c.save(tmp_path / "canvas.png")
    d = _canvas()
    d.load(path)
    assert (d.labels == c.labels).all()
    bad = np.full((64, 80), 7, np.uint8)  # 7 is not a landscape class
    import cv2

    cv2.imwrite(str(tmp_path / "bad.png"), bad)
    with pytest.raises(InputError, match="label id 7"):
        d.load(tmp_path / "bad.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(InputError, match="not a readable"):
        d.load(tmp_path / "broken.png")


def test_legend_selects_the_class_under_the_pointer():
    c = _canvas()
    strip = c.legend(300)
    cells = c.legend_cells(300)
    for i in (0, 4, len(c.ids) - 1):
        x0, y0, x1, y1 = cells[i]
        x, y = (x0 + x1) // 2, y0 + 1
        assert c.class_at(x, y, 300) == i
        if i != c.brush:  # the selected swatch is outlined
            assert tuple(strip[y, x]) == L.PALETTE[c.ids[i]]
    assert c.class_at(5, strip.shape[0] + 3, 300) is None  # below the legend (the help strip)


@pytest.mark.parametrize("width", [256, 384, 512, 768])  # 2 or 3 panels of a 128 or 256 engine
def test_legend_shows_every_class_name_whole(width):
    import cv2

    c = _canvas()
    c.select(3)
    strip = c.legend(width)
    _, _, scale = c.legend_layout(width)
    cells = c.legend_cells(width)
    assert strip.shape[0] == max(y1 for _, _, _, y1 in cells) and len(cells) == len(c.ids)
    for i, (k, (x0, y0, x1, y1)) in enumerate(zip(c.ids, cells)):
        name = c.classes[k]
        text_width = cv2.getTextSize(name, cv2.FONT_HERSHEY_PLAIN, scale, 1)[0][0]
        assert text_width + 4 <= x1 - x0, (name, text_width, x1 - x0)  # the whole name fits its swatch
        assert 0.7 <= scale
        if i == c.brush:
            continue
        # what was drawn: the text's pixels span the whole name's width and stay inside the cell
        cell = strip[y0:y1, x0:x1].astype(int)
        ink = np.abs(cell - np.array(L.PALETTE[k])).sum(-1) > 60
        cols = np.flatnonzero(ink.any(0))
        # (getTextSize's box includes side bearings: OpenCV 5 draws the glyphs up to 4 px inside it)
        assert cols.size and cols[-1] - cols[0] + 1 >= text_width - 4 and cols[-1] < x1 - x0 - 1, name


def test_every_pair_of_class_colours_is_clearly_distinct_and_red_is_the_id():
    import cv2

    ids = list(L.PALETTE)
    rgb = np.array([L.PALETTE[i] for i in ids], np.float32)[None] / 255
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0]  # L 0..100, a and b around 0
    d = np.sqrt(((lab[:, None] - lab[None]) ** 2).sum(-1)) + np.eye(len(ids)) * 1e9
    i, j = np.unravel_index(d.argmin(), d.shape)
    assert d.min() >= 25, f"{L.NAMES[ids[i]]} and {L.NAMES[ids[j]]} are only delta-E {d.min():.1f} apart"
    assert all(L.PALETTE[i][0] == i for i in ids)  # the palette segmenter and colour label PNGs rely on it


def test_help_strip_covers_neither_the_canvas_nor_the_painting():
    from rtgan.demo.view import compose

    c = _canvas(128, 128)
    labels = np.zeros((128, 128, 3), np.uint8)
    labels[:] = L.PALETTE[L.ID["sea"]]
    painting = np.full((128, 128, 3), 90, np.uint8)
    for scale in (1, 2):
        legend = c.legend(256)
        plain = compose(None, labels, painting, ["overlay"], legend, help=False, scale=scale)
        helped = compose(None, labels, painting, ["overlay"], legend, help=True, scale=scale)
        assert (helped[: plain.shape[0]] == plain).all()  # panels and legend untouched
        strip = helped[plain.shape[0] :]
        assert strip.shape[0] > 0 and (strip == 255).any()  # the help, in a strip of its own
        assert (strip[:, -2 * scale :] == strip[0, -1]).all()  # wrapped inside the width, not cut at the edge


def test_recording_keeps_frames_whose_size_changes_with_legend_and_help(tmp_path):
    import cv2

    from rtgan.demo.view import Recorder

    recorder = Recorder(tmp_path / "r.mp4", 10)
    sizes = [(64, 128), (64 + 36, 128), (64 + 36 + 40, 128), (64, 192), (64, 128)]  # p, h, a camera frame
    for i, (h, w) in enumerate(sizes):
        recorder.write(np.full((h, w, 3), 40 * i, np.uint8))
    recorder.close()
    capture = cv2.VideoCapture(str(tmp_path / "r.mp4"))
    frames = []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    assert len(frames) == len(sizes) and all(f.shape == (64, 128, 3) for f in frames)
    assert abs(int(frames[2][10, 10, 0]) - 80) < 10  # the panels' part of a taller frame is kept
