"""Image-in generators (pix2pix, CycleGAN, MUNIT) as engines: uint8 RGB in, uint8 RGB out, on every
CPU backend, against the PyTorch reference; the engine's checks of an image input."""

import numpy as np
import pytest

from rtgan import Engine
from rtgan.data import landscapes
from rtgan.errors import InputError
from rtgan.export import export, psnr, quantize, reference_image
from rtgan.models import get_model, get_preset, list_presets

IMAGE_IN = [p for p in list_presets() if get_preset(p).arch in ("pix2pix", "cyclegan", "munit")]
SIZES = {"unet_256": (256, 256), "unet_128": (128, 128)}  # the U-Nets' smallest sides; others: 64x96


def _size(preset):
    return SIZES.get(get_preset(preset).options.get("netG"), (64, 96))


def _photo(h, w, seed=3):
    return landscapes.render(seed, h, w)[1]


# every preset at full width (slow), and each generator variant slim in CI
SLIM = {"cyclegan-style-monet": {"ngf": 8}, "cyclegan-horse2zebra": {"ngf": 8, "netG": "resnet_6blocks"},
        "pix2pix-edges2shoes": {"ngf": 8}, "munit-edges2shoes": {"dim": 8, "mlp_dim": 32}}  # fmt: skip
CASES = [pytest.param(p, {}, marks=pytest.mark.slow, id=p) for p in IMAGE_IN]
CASES += [pytest.param(p, o, id=f"{p}-slim") for p, o in SLIM.items()]


@pytest.mark.parametrize("preset, options", CASES)
def test_image_engine_matches_pytorch(preset, options, tmp_path):
    h, w = _size(preset)
    model = get_model(preset, **options)  # the official init (N(0, 0.02) convs): not flat after the norms
    out = export(model, height=h, width=w, backend="onnxruntime", out=tmp_path / "a", progress=False)
    photo = _photo(h, w)
    name = next(i.name for i in model.signature().inputs if i.kind == "image")
    feeds = {name: photo[None]}
    if "style_code" in [i.name for i in model.signature().inputs]:
        feeds["style_code"] = np.random.default_rng(0).standard_normal((1, model.config.style_dim)).astype(np.float32)
    ref = reference_image(model, feeds)
    assert ref.std() > 2, "a flat reference would make the comparison meaningless"
    for backend in ("onnxruntime", "openvino"):
        got = Engine.load(out, backend=backend).run(**{k: v[0] for k, v in feeds.items()})
        assert got.shape == (h, w, ref.shape[-1]) and got.dtype == np.uint8
        assert psnr(got[None], ref) >= 60, (preset, backend)


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory):
    model = get_model("cyclegan-style-monet", ngf=8)
    out = export(model, height=64, width=96, backend="onnxruntime", out=tmp_path_factory.mktemp("e"), progress=False)
    return model, out


def test_image_input_is_checked(cyclegan):
    engine = Engine.load(cyclegan[1], backend="onnxruntime")
    photo = _photo(64, 96)
    assert engine.run(source=np.stack([photo, photo])).shape == (2, 64, 96, 3)
    with pytest.raises(InputError, match="uint8"):
        engine.run(source=photo.astype(np.float32))
    with pytest.raises(InputError, match="64, 96"):
        engine.run(source=_photo(64, 64))
    with pytest.raises(InputError, match="required"):
        engine.run()


def test_image_models_calibrate_on_pictures_not_noise(cyclegan):
    manifest = Engine.load(cyclegan[1], backend="onnxruntime").manifest
    calib, val, held = quantize.calibration_sets(manifest)
    assert len(calib) == quantize.CALIBRATION_MAPS and len(held) == quantize.HELD_OUT_MAPS
    np.testing.assert_array_equal(calib[0]["source"][0], _photo(64, 96, seed=0))
    noise = np.random.default_rng(0).integers(0, 256, (64, 96, 3))
    # rendered landscapes are smooth: neighbouring pixels differ far less than in uniform noise
    assert np.abs(np.diff(calib[1]["source"][0].astype(int), axis=1)).mean() < np.abs(np.diff(noise, axis=1)).mean() / 4


@pytest.mark.parametrize("precision", ["bf16", pytest.param("int8", marks=pytest.mark.slow)])
def test_image_engine_reduced_precision(cyclegan, precision, tmp_path):
    pytest.importorskip("openvino")
    if precision == "int8":
        pytest.importorskip("nncf")
    from rtgan.utils import cpu

    if precision == "bf16" and not cpu.has_bf16():
        pytest.skip("no bf16 units on this CPU")
    model, _ = cyclegan
    out = export(model, height=64, width=96, backend="openvino", precision=precision, out=tmp_path / "r",
                 progress=False)  # fmt: skip
    engine = Engine.load(out, backend="openvino")
    held = engine.manifest["fidelity"]["psnr_db_held_out_openvino"]
    photo = _photo(64, 96, seed=40)
    got = engine.run(source=photo)
    assert psnr(got[None], reference_image(model, {"source": photo[None]})) >= quantize.FLOORS[precision] - 3
    assert held >= quantize.FLOORS[precision]
