"""Every preset at full width through every CPU backend: PSNR >= 60 dB against the PyTorch reference.

Slow (full-width generators): `python -m pytest tests/export/test_preset_fidelity.py -m slow -s`.
"""

import pytest

from rtgan import Engine
from rtgan.export import export, psnr, reference_image, sample_feeds
from rtgan.export.quantize import FLOORS
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


# the reduced precisions each CPU backend offers; export's default floors apply (`quantize.FLOORS`)
REDUCED = [("openvino", "bf16"), ("openvino", "int8"), ("onnxruntime", "int8")]
BUNDLED_FLOORS = {"bf16": 55.0, "int8": 40.0}  # the shipped landscape models, on their own weights


def reduced_size(preset: str) -> tuple[int, int]:
    """Calibration needs the sizes a preset paints at: at 64x128 a Cityscapes SPADE starts from a 2x4
    map and its int8 painting is 25 dB, against 32 dB at 256x512."""
    return (256, 512) if "cityscapes" in preset or "label2city" in preset else (256, 256)


def _reduced_fidelity(model, h, w, backend, precision, floor, tmp_path, labels=None) -> tuple[float, float]:
    """(export's worst held-out PSNR, the engine's PSNR on a map export never saw: `labels` or a blocky
    random one); export refuses below `floor`."""
    out = export(model, height=h, width=w, backend=backend, precision=precision, min_psnr=floor,
                 out=tmp_path / "a", progress=False)  # fmt: skip
    engine = Engine.load(out, backend=backend, precision=precision)
    held_out = engine.manifest["fidelity"][f"psnr_db_held_out_{backend}"]
    feeds = sample_feeds(engine.manifest, batch=1, seed=99)
    if labels is not None:
        feeds["labels"] = labels
    got = engine.run(feeds["labels"], feeds.get("instance"), feeds.get("z"))
    return held_out, psnr(got, reference_image(model, feeds))


@pytest.mark.slow
@pytest.mark.parametrize("backend, precision", REDUCED)
@pytest.mark.parametrize("preset", LABEL_MAP)
def test_preset_fidelity_reduced(preset, backend, precision, tmp_path):
    from rtgan.utils import cpu

    if cpu.precision_problem(precision):
        pytest.skip(cpu.precision_problem(precision))
    h, w = reduced_size(preset)
    model = randomize_like_trained(get_model(preset), h, w, iterations=4)
    held_out, fresh = _reduced_fidelity(model, h, w, backend, precision, FLOORS[precision], tmp_path)
    print(f"\n{preset} {h}x{w} {backend} {precision}: held-out {held_out:.1f} dB, fresh map {fresh:.1f} dB")
    assert min(held_out, fresh) >= FLOORS[precision]


# ONNX Runtime's QDQ int8 of the convolutions paints landscape-pix2pixhd at 36.6-39.6 dB on every
# held-out map: the error is spread over its 19 convolutions (leaving the first or last in float
# gains 0.1-0.2 dB), and its quantizer has no bias correction, which NNCF's has (OpenVINO: 42.4 dB)
ORT_PIX2PIXHD = pytest.mark.xfail(strict=True, reason="ONNX Runtime int8 of landscape-pix2pixhd: 36.6 dB < 40")


BUNDLED_CASES = [
    pytest.param(n, b, p, marks=ORT_PIX2PIXHD if (n, b) == ("landscape-pix2pixhd", "onnxruntime") else ())
    for n in ("landscape-asapnet", "landscape-spade", "landscape-pix2pixhd")
    for b, p in REDUCED
]


@pytest.mark.slow
@pytest.mark.parametrize("name, backend, precision", BUNDLED_CASES)
def test_bundled_fidelity_reduced(name, backend, precision, tmp_path):
    from rtgan import weights
    from rtgan.data import landscapes
    from rtgan.models import load
    from rtgan.utils import cpu

    if cpu.precision_problem(precision):
        pytest.skip(cpu.precision_problem(precision))
    model = load(weights.path(name))
    floor = BUNDLED_FLOORS[precision]
    labels = landscapes.layout(4242, 256, 256)[None].astype("int32")  # a layout none of export's maps is
    held_out, fresh = _reduced_fidelity(model, 256, 256, backend, precision, floor, tmp_path, labels)
    print(f"\n{name} 256x256 {backend} {precision}: held-out {held_out:.1f} dB, fresh map {fresh:.1f} dB")
    assert min(held_out, fresh) >= floor
