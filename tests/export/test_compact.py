"""`compact=True`: fp16-exact weights stored as fp16, spectral norm left for the runtime to fold."""

import json

import numpy as np
import pytest
import torch

from rtgan import Engine
from rtgan.export import export, psnr, reference_image, sample_feeds
from rtgan.models import get_model

from helpers import make

pytest.importorskip("onnxruntime")


def _fp16_exact(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())  # as the shipped weights: fp16 values in an fp32 model
    return model


@pytest.mark.parametrize("preset,size", [("landscape-spade", (256, 256)), ("landscape-asapnet", (64, 64))])
def test_compact_halves_the_file_and_paints_the_same(preset, size, tmp_path):
    torch.manual_seed(0)
    model, (h, w) = _fp16_exact(get_model(preset)), size  # spectral norm, VAE encoder; octave noise
    plain = export(model, height=h, width=w, out=tmp_path / "plain", progress=False)
    small = export(model, height=h, width=w, out=tmp_path / "small", progress=False, compact=True)
    manifest = json.loads((small / "manifest.json").read_text())
    assert manifest["storage"]["exact_fp16_weights"] and manifest["rewrites"]["fold_spectral"] is False
    for name in ["model.onnx"] + (["encoder.onnx"] if "style_encoder" in manifest else []):
        assert (small / name).stat().st_size < 0.62 * (plain / name).stat().st_size, name
    feeds = sample_feeds(manifest, batch=2, seed=1)
    ref = reference_image(model, feeds)
    a, b = (Engine.load(d, "onnxruntime").run(**feeds) for d in (plain, small))
    assert psnr(b, ref) >= 60 and np.abs(a.astype(int) - b.astype(int)).max() <= 1
    if "style_encoder" in manifest:
        style = np.random.default_rng(0).integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)
        za, zb = (Engine.load(d, "onnxruntime").encode_style(style) for d in (plain, small))
        np.testing.assert_allclose(za, zb, atol=1e-4)


def test_weights_fp16_does_not_hold_stay_float32(tmp_path):
    model, (h, w) = make("asap-tile16")  # random fp32 weights: no value survives the round trip
    plain = export(model, height=h, width=w, out=tmp_path / "plain", progress=False)
    small = export(model, height=h, width=w, out=tmp_path / "small", progress=False, compact=True)
    assert (small / "model.onnx").stat().st_size > 0.9 * (plain / "model.onnx").stat().st_size
    feeds = sample_feeds(json.loads((small / "manifest.json").read_text()), batch=1)
    a, b = (Engine.load(d, "onnxruntime").run(**feeds) for d in (plain, small))
    assert np.array_equal(a, b)
