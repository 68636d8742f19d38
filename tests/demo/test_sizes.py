"""The demo's size: the largest shipped engine that paints in real time here, else the trained size;
models without an engine at the canvas size paint at their own and are resized, not dropped."""

import numpy as np
import pytest

from rtgan import weights
from rtgan.demo import engines
from rtgan.utils.extras import MissingDependency


def test_the_default_model_ships_engines_at_256_and_512():
    shipped = engines.shipped_engines(weights.path(weights.DEFAULT))
    assert set(shipped) >= {(256, 256), (512, 512)}
    assert shipped[(256, 256)].name == "engine" and shipped[(512, 512)].name == "engine-512x512"


@pytest.mark.parametrize("fps, size", [(120.0, (512, 512)), (12.0, (256, 256))])
def test_512_is_painted_only_where_it_measures_real_time(fps, size, monkeypatch):
    measured = []

    def rate(engine, repeats=5):
        measured.append((engine.height, engine.width))
        return fps

    monkeypatch.setattr(engines, "paint_rate", rate)
    said = []
    engine = engines.open_engine(weights.DEFAULT, "onnxruntime", log=said.append)
    assert (engine.height, engine.width) == size and measured == [(512, 512)]
    assert ("below 30" in said[0] and "--size 512x512" in said[0]) == (size == (256, 256))


def test_an_explicit_size_is_not_measured(monkeypatch):
    monkeypatch.setattr(engines, "paint_rate", lambda *a, **k: pytest.fail("measured"))
    engine = engines.open_engine(weights.DEFAULT, "onnxruntime", log=lambda *_: None, size=(512, 512))
    assert (engine.height, engine.width) == (512, 512)


def test_paint_rate_is_a_positive_rate_of_the_engine_at_hand():
    engine = engines.open_engine(weights.DEFAULT, "onnxruntime", log=lambda *_: None, size=(256, 256))
    assert 0 < engines.paint_rate(engine, repeats=2) < 1e4


def test_a_model_without_an_engine_at_the_canvas_size_paints_at_its_own(monkeypatch):
    def no_torch(*a, **k):  # as in a torch-free install: no export at 512
        raise MissingDependency("exporting needs PyTorch, which is not installed: pip install 'rtgan[torch]'")

    monkeypatch.setattr(engines, "_export", no_torch)
    said = []
    painter = engines.Painter(["landscape-asapnet", "landscape-pix2pixhd"], "onnxruntime", log=said.append,
                              size=(512, 512))  # fmt: skip
    painter.next_model()
    packet = engines.Packet(index=0, captured=0.0, labels=np.full((512, 512), weights_ids()[0], np.int32))
    painter(packet)
    assert painter.name == "landscape-pix2pixhd" and painter.models == ["landscape-asapnet", "landscape-pix2pixhd"]
    assert packet.painting.shape == (512, 512, 3) and (painter.engine.height, painter.engine.width) == (256, 256)
    assert any("paints 256x256 here, shown at 512x512" in s for s in said)


def weights_ids():
    from rtgan.data import landscapes

    return landscapes.LABEL_IDS
