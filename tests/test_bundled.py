"""The models shipped in rtgan/weights load with rtgan.models.load and paint landscape label maps, or
(the sketch model) pencil sketches of landscapes."""

import json

import numpy as np
import pytest
import torch

from rtgan import models, weights
from rtgan.data import landscapes as L

present = [n for n in weights.BUNDLED if (weights.path(n) / "config.json").is_file()]


def test_the_demo_default_is_shipped():
    assert weights.DEFAULT in present


def _image_in(model) -> bool:
    return model.signature().inputs[0].kind == "image"


@pytest.mark.parametrize("name", present)
def test_bundled_model_loads_and_paints(name):
    model = models.load(weights.path(name)).eval()
    if _image_in(model):
        return  # a sketch model: the test below
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


@pytest.mark.parametrize("name", [n for n in present if _image_in(models.load(weights.path(n)))])
def test_bundled_sketch_model_paints_a_drawing_as_a_landscape(name):
    """Held-out scenes: a painting's light and dark follow its own scene's render more than the other
    scenes' (the drawing carries no colours, so the layout is what must match), and it is not flat."""
    from rtgan.data import sketches
    from rtgan.export import reference_image

    model = models.load(weights.path(name)).eval()
    scenes = [L.render(s, 256, 256) for s in range(40_000_000, 40_000_006)]
    drawings = np.stack([sketches.sketch(labels, photo, style=i) for i, (labels, photo) in enumerate(scenes)])
    paintings = reference_image(model, {"source": drawings}).astype(float)
    assert paintings.std() > 20
    z = lambda x: (x - x.mean((1, 2), keepdims=True)) / x.std((1, 2), keepdims=True)  # noqa: E731
    grey = lambda x: z(x.mean(-1))  # noqa: E731
    c = np.einsum("ihw,jhw->ij", grey(paintings), grey(np.stack([p for _, p in scenes]).astype(float))) / 256**2
    own, others = np.diag(c).mean(), c[~np.eye(len(c), dtype=bool)].mean()
    assert own > others + 0.1, c.round(2)
