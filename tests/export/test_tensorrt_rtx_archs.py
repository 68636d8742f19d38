"""CI proof that every architecture's exported graph parses and builds with TensorRT-RTX (offline, SM86)."""

import json

import numpy as np
import pytest

from rtgan import Engine
from rtgan.engine import BackendUnavailable
from rtgan.export import export, psnr, reference_image, sample_feeds
from rtgan.models import get_model, get_preset, list_presets

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


# Image-in generators (uint8 `source`, MUNIT's float `style_code` too): slim in CI, every released
# architecture at full width under `slow`. TensorRT takes uint8 only into a Cast: the export casts
# an image before its NHWC -> NCHW permute (rtgan.export.onnx.cast_uint8_inputs_first).
IMAGE_SLIM = [
    ("pix2pix-facades-label2photo", {"ngf": 8, "netG": "unet_128"}, (128, 128), "fp32"),  # batch norm per image
    ("sketch2landscape-pix2pix", {"ngf": 4}, (256, 256), "fp16"),  # the U-Net 256 of the trained sketch model
    ("cyclegan-style-monet", {"ngf": 8}, (64, 96), "fp32"),  # ResNet, instance norm, reflection pads
    ("cyclegan-horse2zebra", {"ngf": 8, "netG": "resnet_6blocks", "input_nc": 1}, (64, 96), "fp16"),  # gray in
    ("munit-edges2shoes", {"dim": 8, "mlp_dim": 32}, (64, 96), "fp32"),  # AdaIN from the style code
    ("munit-edges2shoes", {"dim": 8, "mlp_dim": 32}, (64, 96), "fp16"),
]
IMAGE_FULL: dict[str, str] = {}  # one preset per distinct full-size generator (an arch's releases share options)
for _p in list_presets():
    if get_preset(_p).arch in ("pix2pix", "cyclegan", "munit"):
        IMAGE_FULL.setdefault(json.dumps([get_preset(_p).arch, get_preset(_p).options], sort_keys=True), _p)
IMAGE_CASES = [pytest.param(p, o, size, prec, id=f"{p}-{'-'.join(map(str, o.values()))}-{prec}")
               for p, o, size, prec in IMAGE_SLIM]  # fmt: skip
IMAGE_CASES += [pytest.param(p, {}, (256, 256), "fp16", marks=pytest.mark.slow, id=f"{p}-full-fp16")
                for p in IMAGE_FULL.values()]  # fmt: skip


@pytest.mark.parametrize("preset, options, size, precision", IMAGE_CASES)
def test_offline_image_plan_builds(preset, options, size, precision, tmp_path):
    import onnx
    import onnxruntime as ort

    from rtgan.data import landscapes

    h, w = size
    model = get_model(preset, **options)
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
    specs = {i["name"]: (i["dtype"], i["shape"]) for i in manifest["inputs"]}
    assert specs["source"] == ("uint8", ["batch", h, w, 3])
    if get_preset(preset).arch == "munit":
        assert specs["style_code"] == ("float32", ["batch", model.config.style_dim])
    graph = onnx.load(str(out / "model.onnx")).graph
    users = [n.op_type for n in graph.node if "source" in n.input]
    assert users == ["Cast"], f"the uint8 image must go into a Cast first (TensorRT's rule), got {users}"
    with pytest.raises(BackendUnavailable, match="needs an NVIDIA GPU"):
        Engine.load(out, backend="tensorrt-rtx")
    photo = landscapes.render(3, h, w)[1][None]
    feeds = {"source": photo}
    if "style_code" in specs:
        feeds["style_code"] = np.random.default_rng(0).standard_normal((1, model.config.style_dim), np.float32)
    ref = reference_image(model, feeds)
    assert ref.std() > 2, "a flat reference would make the comparison meaningless"
    if precision == "fp32":  # without a GPU, 'auto' falls back to a CPU runtime on the same ONNX graph
        engine = Engine.load(out)
        assert engine.backend_name in ("openvino", "onnxruntime")
        got = engine.run(**{k: v[0] for k, v in feeds.items()})
        assert psnr(got[None], ref) >= 60
    else:  # the fp16 graph the plan was built from paints the same picture (ONNX Runtime runs it on the CPU)
        session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
        assert psnr(session.run(None, feeds)[0], ref) >= 40
