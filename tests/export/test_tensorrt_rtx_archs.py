"""CI proof that every architecture's exported graph parses and builds with TensorRT-RTX (offline, SM86)."""

import json

import pytest

from rtgan import Engine
from rtgan.engine import BackendUnavailable
from rtgan.export import export, psnr, reference_image, sample_feeds

from helpers import make

pytest.importorskip("tensorrt_rtx")


@pytest.mark.parametrize(
    "variant,precision",
    [
        ("spade-normal-syncbatch3", "fp32"),
        ("spade-vae", "fp32"),
        ("asap-tile32-tent-reflect", "fp32"),
        ("p2phd-local", "fp32"),
        ("p2phd-bilinear-noise-decoder", "fp16"),  # bilinear Resize and decoder noise, as the bundled model
        ("asap-tile16", "fp16"),
    ],
)
def test_offline_plan_builds(variant, precision, tmp_path):
    model, (h, w) = make(variant)
    out = export(
        model,
        height=h,
        width=w,
        backend="tensorrt-rtx",
        precision=precision,
        compute_capability="SM86",
        out=tmp_path / "plan",
        progress=False,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["target"] == {"device": "cuda", "gpu_arch": "SM86"}
    assert manifest["plan"]["plan_bytes"] > 0 and (out / "model.plan").stat().st_size == manifest["plan"]["plan_bytes"]
    with pytest.raises(BackendUnavailable, match="needs an NVIDIA GPU"):
        Engine.load(out, backend="tensorrt-rtx")
    if precision == "fp32":  # without a GPU, 'auto' falls back to a CPU runtime on the same ONNX graph
        engine = Engine.load(out)
        assert engine.backend_name in ("openvino", "onnxruntime")
        feeds = sample_feeds(manifest, batch=1)
        got = engine.run(feeds["labels"], feeds.get("instance"), feeds.get("z"))
        assert psnr(got, reference_image(model, feeds)) >= 60
