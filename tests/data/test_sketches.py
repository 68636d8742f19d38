"""Pencil sketches of the landscapes: deterministic, drawn where the regions meet, varied by style."""

import numpy as np
import pytest
from PIL import Image

from rtgan.data import landscapes, sketches


@pytest.fixture(scope="module")
def scene():
    return landscapes.render(11, 96, 128)


def test_same_arguments_same_sketch_and_styles_differ(scene):
    labels, photo = scene
    a, b = sketches.sketch(labels, photo, 3), sketches.sketch(labels, photo, 3)
    assert a.dtype == np.uint8 and a.shape == photo.shape and (a == b).all()
    others = [sketches.sketch(labels, photo, s) for s in range(4, 8)]
    assert all(np.abs(o.astype(int) - a).mean() > 1 for o in others)


def test_the_ink_is_on_the_region_outlines(scene):
    labels, photo = scene
    plain = sketches.Style(outline=1.0, detail=0, detail_share=0, hatch=0, hatch_period=4, width=0, wobble=0,
                           graphite=40, paper=(240, 238, 230), light=0, grain=0, blur=False)  # fmt: skip
    grey = sketches.sketch(labels, photo, plain).mean(-1)
    edges = sketches.outlines(labels)
    assert edges.any() and not edges.all()
    # every outline pixel is graphite (pressure varies: 0.7..1 of the way from paper to graphite)
    assert grey[edges].max() < 240 - 0.69 * 200 + 1
    assert np.abs(grey[~edges] - np.mean((240, 238, 230))).max() < 1  # paper elsewhere, nothing else drawn
    # an outline is where the label changes to the right or below
    y, x = np.argwhere(edges)[0]
    assert labels[y, x] != labels[y, min(x + 1, labels.shape[1] - 1)] or labels[y, x] != labels[y + 1, x]


def test_drawing_of_a_label_map_is_its_outlines_two_pixels_wide():
    labels = np.zeros((40, 50), np.uint8)
    labels[:, 25:] = 7  # one vertical boundary between columns 24 and 25
    d = sketches.drawing(labels)
    assert d.shape == (40, 50, 3) and (d[..., 0] == d[..., 2]).all()
    inked = np.flatnonzero((d[..., 0] < 128).all(0))
    assert list(inked) == [23, 24, 25]  # the outline column, dilated by one pixel either side


def test_shapes_that_disagree_are_refused(scene):
    labels, photo = scene
    with pytest.raises(ValueError, match="must be"):
        sketches.sketch(labels[:-1], photo)


def test_command_writes_sketches_and_photos(tmp_path):
    assert sketches.main(["--out", str(tmp_path / "s"), "--count", "2", "--size", "64x96", "--no-progress"]) == 0
    names = sorted(p.name for p in (tmp_path / "s" / "sketches").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "s" / "images").iterdir()) == ["000000.png", "000001.png"]
    drawn = np.asarray(Image.open(tmp_path / "s" / "sketches" / "000001.png"))
    assert (drawn == sketches.render(1, 64, 96)[0]).all()
    assert sketches.main(["--out", str(tmp_path / "t"), "--count", "0"]) == 2
