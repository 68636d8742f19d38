"""pytest-benchmark suite of the same cases as `python -m rtgan.bench`, at a reduced size.

    python -m pytest benchmarks -p no:cacheprovider --benchmark-only

Full-size numbers, with every case in its own process, come from `python -m rtgan.bench` (BENCHMARKS.md).
"""

import numpy as np
import pytest

from rtgan import Engine
from rtgan.bench import PRESETS
from rtgan.export import Rewrites, export, model_feeds, reference_image
from rtgan.models import get_model
from rtgan.models.init import randomize_like_trained

H, W = 64, 128


@pytest.fixture(scope="module", params=list(PRESETS))
def model(request):
    return randomize_like_trained(get_model(PRESETS[request.param]), H, W, iterations=2)


def test_eager(benchmark, model):
    feeds = model_feeds(model, H, W)
    image = benchmark(lambda: reference_image(model, feeds))
    assert image.dtype == np.uint8


@pytest.mark.parametrize(
    "backend,rewrites",
    [("onnxruntime", Rewrites.none()), ("onnxruntime", Rewrites()), ("openvino", Rewrites())],
    ids=["naive-ort", "ort", "openvino"],
)
def test_engine(benchmark, model, backend, rewrites, tmp_path):
    art = export(
        model, height=H, width=W, backend=backend, rewrites=rewrites, out=tmp_path / "a", progress=False, verify=False
    )
    engine = Engine.load(art, backend=backend)
    f = model_feeds(model, H, W)
    image = benchmark(lambda: engine.run(f["labels"], f.get("instance")))
    assert image.dtype == np.uint8
