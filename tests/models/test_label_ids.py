"""Models on a subset of an id space (`label_ids`): the bundled landscape models take COCO-Stuff ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rtgan import Engine, InputError
from rtgan.errors import ConfigError
from rtgan.export import export, reference_image
from rtgan.models import build, load, make_config, save
from rtgan.models.init import randomize_like_trained

IDS = (156, 123, 154, 7)
OPTIONS = dict(label_nc=4, no_instance=True, ngf=4, n_downsample_global=2, n_blocks_global=1)


def twins():
    """The same weights with and without label_ids."""
    plain = build(make_config("pix2pixhd", **OPTIONS))
    randomize_like_trained(plain, 32, 32)
    mapped = build(make_config("pix2pixhd", **OPTIONS, label_ids=IDS))
    mapped.load_state_dict(plain.state_dict())
    return plain.eval(), mapped.eval()


def test_ids_map_to_channels_in_order():
    plain, mapped = twins()
    channels = torch.randint(0, 4, (2, 32, 32))
    ids = torch.tensor(IDS)[channels]
    assert torch.equal(mapped.prepare(ids), plain.prepare(channels))
    with torch.no_grad():
        assert torch.equal(mapped(mapped.prepare(ids)), plain(plain.prepare(channels)))


def test_unknown_ids_are_named():
    _, mapped = twins()
    for bad in (5, 200, -1):
        labels = torch.full((1, 32, 32), 156)
        labels[0, 3, 3] = bad
        with pytest.raises(InputError, match=f"label id {bad} is not one of this model's classes"):
            mapped.prepare(labels)


@pytest.mark.parametrize("ids", [(1, 2, 3), (1, 1, 2, 3), (1, 2, 3, -4)])
def test_bad_label_ids_are_config_errors(ids):
    with pytest.raises(ConfigError, match="label_ids"):
        make_config("pix2pixhd", **OPTIONS, label_ids=ids)


def test_label_ids_survive_save_and_load(tmp_path):
    _, mapped = twins()
    save(mapped, tmp_path / "m")
    assert load(tmp_path / "m").config.label_ids == IDS


def test_engine_takes_dataset_ids_and_refuses_others(tmp_path):
    _, mapped = twins()
    art = export(mapped, height=32, width=32, backend="onnxruntime", out=tmp_path / "a", progress=False)
    engine = Engine.load(art, backend="onnxruntime")
    rng = np.random.default_rng(0)
    labels = np.asarray(IDS, np.int32)[rng.integers(0, 4, (2, 32, 32))]
    got = engine.run(labels)
    want = reference_image(mapped, {"labels": labels})
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    labels[1, 0, 0] = 3
    with pytest.raises(InputError, match="label id 3 is not one of this model's classes"):
        engine.run(labels)
