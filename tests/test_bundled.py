"""The models shipped in rtgan/weights load with rtgan.models.load and paint landscape label maps."""

import json

import numpy as np
import pytest
import torch

from rtgan import models, weights
from rtgan.data import landscapes as L

present = [n for n in weights.BUNDLED if (weights.path(n) / "config.json").is_file()]


def test_the_demo_default_is_shipped():
    assert weights.DEFAULT in present


@pytest.mark.parametrize("name", present)
def test_bundled_model_loads_and_paints(name):
    model = models.load(weights.path(name)).eval()
    assert tuple(model.config.label_ids) == L.LABEL_IDS
    assert (weights.path(name) / "MODEL_CARD.md").is_file() and (weights.path(name) / "samples.png").is_file()
    labels = torch.from_numpy(L.layout(0, 256, 256).astype(np.int64))[None]
    with torch.inference_mode():
        kw = {"z": torch.zeros(1, model.config.z_dim)} if getattr(model.config, "use_vae", False) else {}
        image = model(model.prepare(labels), **kw)
    assert image.shape == (1, 3, 256, 256) and torch.isfinite(image).all()
    assert image.std() > 0.05  # not a flat image
    size = sum(p.stat().st_size for p in weights.path(name).iterdir())
    assert size < 20e6, f"{name} is {size / 1e6:.1f} MB"
    assert json.loads((weights.path(name) / "config.json").read_text())
