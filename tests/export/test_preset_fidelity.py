"""Every preset at full width through every CPU backend: PSNR >= 60 dB against the PyTorch reference.

Slow (full-width generators): `python -m pytest tests/export/test_preset_fidelity.py -m slow -s`.
"""

import pytest

from rtgan import Engine
from rtgan.export import export, psnr, reference_image, sample_feeds
from rtgan.models import get_model, get_preset, list_presets
from rtgan.models.init import randomize_like_trained

# small spatial sizes the presets accept (SPADE-VAE's latent grid fixes its size)
SIZES = {
    "spade-coco-vae": (256, 256),
    "landscape-spade": (256, 256),
    "asapnet-facades512": (64, 64),
    "asapnet-facades1024": (128, 128),
}


# the label-map families (the latent ones are covered by test_signature_export.py)
LABEL_MAP = [p for p in list_presets() if get_preset(p).arch in ("spade", "asapnet", "pix2pixhd")]


@pytest.mark.slow
@pytest.mark.parametrize("preset", LABEL_MAP)
def test_preset_fidelity(preset, tmp_path):
    h, w = SIZES.get(preset, (64, 128))
    model = randomize_like_trained(get_model(preset), h, w, iterations=4)
    out = export(model, height=h, width=w, backend="onnxruntime", out=tmp_path / "a", progress=False)
    engine = Engine.load(out, backend="onnxruntime")
    feeds = sample_feeds(engine.manifest, batch=1, seed=5)
    ref = reference_image(model, feeds)
    results = {}
    for backend in ("onnxruntime", "openvino"):  # OpenVINO reads the ONNX of an onnxruntime artifact
        got = Engine.load(out, backend=backend).run(feeds["labels"], feeds.get("instance"), feeds.get("z"))
        results[backend] = psnr(got, ref)
    print(f"\n{preset} {h}x{w}: " + ", ".join(f"{k} {v:.1f} dB" for k, v in results.items()))
    assert min(results.values()) >= 60
