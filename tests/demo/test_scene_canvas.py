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
    strip = c.legend(300, 20)
    n = len(c.ids)
    for i in (0, 4, n - 1):
        x = int((i + 0.5) * 300 / n)
        assert c.class_at(x, 300) == i
        if i != c.brush:  # the selected swatch is outlined
            assert tuple(strip[1, x]) == L.PALETTE[c.ids[i]]
