"""`AnimatedScene.frame` (tabulated once, cheap per frame) against the animation written out plainly."""

import numpy as np
import pytest

from rtgan.data import landscapes as L
from rtgan.demo.scene import AnimatedScene


def frame_ref(scene: AnimatedScene, t: float) -> np.ndarray:
    """The scene at time t, every mask built per frame over the whole image."""
    h, w = scene.height, scene.width
    out = scene.base.copy()
    # clouds: the mirrored density field slides left by `shift` columns (wrapping), thresholded
    shift = int(t * scene.cloud_speed * w) % (2 * w)
    clouds = np.roll(scene.field, -shift, axis=1)[:, :w] > scene.cover
    out[scene.sky] = np.where(clouds[scene.sky], L.ID["clouds"], L.ID["sky"])
    # waves: column j reads the row dy[j] above (clipped); a waterline pixel takes that id when the
    # source is waterline too and differs in being sea
    amp = max(1.0, h / 100)
    cols = np.arange(w)[None, :]
    dy = np.round(amp * np.sin(2 * np.pi * (0.4 * t + 1.5 * cols / w))).astype(int)
    src = np.clip(np.arange(h)[:, None] - dy, 0, h - 1)
    moved_sea, moved_line = scene.sea[src, cols], scene.waterline[src, cols]
    swap = scene.waterline & moved_line & (moved_sea != scene.sea)
    out[swap] = scene.base[src, cols][swap]
    return out


TIMES = [0.0, 1 / 30, 0.37, 1.25, 2.5, 7.9, 33.3, 99.99, 1234.5, -0.6]


@pytest.mark.parametrize("size", [(256, 256), (512, 512), (256, 512), (512, 256), (128, 192), (61, 97)])
def test_frame_matches_the_plain_animation(size):
    scene = AnimatedScene(*size)
    ts = TIMES + [float(t) for t in np.random.default_rng(0).uniform(0, 200, 20)]
    for t in ts:
        got, want = scene.frame(t), frame_ref(scene, t)
        assert got.dtype == want.dtype and got.shape == size
        assert np.array_equal(got, want), f"{size} t={t}: {int((got != want).sum())} pixels differ"


def test_every_wave_offset_and_cloud_shift_is_exercised():
    """Over one wave period and one cloud wrap, each offset in [-reach, reach] and shifts on both
    sides of the mirror seam occur, and the frames still match."""
    scene = AnimatedScene(256, 256)
    seen_dy, seen_shift = set(), set()
    for t in np.arange(0, 2.5, 1 / 30):  # the sine travels a full period in 2.5 s
        cols = np.arange(scene.width)
        seen_dy |= set(np.round(scene._amp * np.sin(2 * np.pi * (0.4 * t + 1.5 * cols / scene.width))).astype(int))
        assert np.array_equal(scene.frame(t), frame_ref(scene, t))
    assert seen_dy == set(range(-scene._reach, scene._reach + 1))
    for t in np.arange(0, 100, 0.5):  # cloud_speed 0.02: 2W columns in 100 s
        seen_shift.add(int(t * scene.cloud_speed * scene.width) % (2 * scene.width))
        assert np.array_equal(scene.frame(t), frame_ref(scene, t))
    assert min(seen_shift) < scene.width < max(seen_shift)


def test_frames_are_fresh_arrays():
    scene = AnimatedScene(128, 128)
    a = scene.frame(1.0)
    a[:] = 0
    assert np.array_equal(scene.frame(1.0), frame_ref(scene, 1.0))
