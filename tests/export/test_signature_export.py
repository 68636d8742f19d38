"""A user's own generator with a declared signature exports to every CPU backend and runs through
`Engine.run` by input name, matching its PyTorch forward; the signature's checks are typed errors."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from rtgan import ConfigError, Engine, InputError
from rtgan.export import export, psnr, reference_image
from rtgan.signature import Input, Signature

pytest.importorskip("onnxruntime")


class TinyConditional(nn.Module):
    """A user's class-conditional generator: z (B, 16) and a class id -> a 3-channel 16x16 image."""

    def __init__(self, classes: int = 5, channels: int = 3):
        super().__init__()
        self.classes, self.channels = classes, channels
        self.embed = nn.Embedding(classes, 16)
        self.fc = nn.Linear(32 + 2, 8 * 4 * 4)
        self.up = nn.Sequential(nn.Upsample(scale_factor=4), nn.Conv2d(8, channels, 3, padding=1), nn.Tanh())

    def signature(self) -> Signature:
        inputs = (Input("z", "latent", size=16), Input("label", "class", classes=self.classes),
                  Input("code", "codes", size=2))  # fmt: skip
        return Signature(inputs, channels=self.channels, spatial="fixed", size=(16, 16))

    def prepare_inputs(self, z, label, code):
        return z, label.long(), code

    def forward(self, z, label, code):
        x = self.fc(torch.cat([z, self.embed(label), code], 1)).view(-1, 8, 4, 4)
        return self.up(x)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TinyConditional().eval()


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_own_generator_exports_and_matches_its_forward(model, backend, tmp_path):
    out = export(model, height=16, width=16, backend=backend, out=tmp_path / backend, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(i["name"], i["kind"], i["shape"]) for i in manifest["inputs"]] == [
        ("z", "latent", ["batch", 16]), ("label", "class", ["batch"]), ("code", "codes", ["batch", 2])
    ]  # fmt: skip
    assert manifest["arch"] == "TinyConditional" and manifest["fidelity"]["psnr_db_onnxruntime"] >= 60
    engine = Engine.load(out)
    rng = np.random.default_rng(1)
    z, label, code = rng.standard_normal((3, 16)), np.array([0, 4, 2]), rng.uniform(-1, 1, (3, 2))
    got = engine.run(z=z, label=label, code=code)
    feeds = {"z": z.astype(np.float32), "label": label.astype(np.int32), "code": code.astype(np.float32)}
    ref = reference_image(model, feeds)
    assert got.shape == (3, 16, 16, 3) and got.dtype == np.uint8 and psnr(got, ref) >= 60
    one = engine.run(z=z[1], label=4, code=code[1])  # single samples: one image
    assert one.shape == (16, 16, 3) and np.abs(one.astype(int) - got[1]).max() <= 1
    assert engine.run().shape == (16, 16, 3)  # everything sampled
    assert engine.run(label=np.array([1, 1])).shape == (2, 16, 16, 3)  # z and code sampled for the batch


def test_signature_checks_are_typed_errors(model, tmp_path):
    engine = Engine.load(export(model, height=16, width=16, out=tmp_path / "e", progress=False))
    bad = [
        (dict(label=5), "ids must be in 0..4"),
        (dict(label=1.5), "integer class id"),
        (dict(z=np.zeros(15)), r"must be \(16,\) or \(B, 16\)"),
        (dict(z=np.full(16, np.nan)), "NaN"),
        (dict(z=np.zeros((2, 16)), label=np.array([1, 2, 3])), "disagree on the batch"),
        (dict(z=[[0.0] * 16, [0.0] * 3]), "not a rectangular array"),
        (dict(z=np.zeros((0, 16))), "empty batch"),
        (dict(colour=1), "unknown input"),
        (dict(labels=np.zeros((16, 16), int)), "takes no label map"),
    ]
    for kwargs, message in bad:
        with pytest.raises(InputError, match=message):
            engine.run(**kwargs)


def test_grayscale_output_and_a_module_without_signature(tmp_path):
    torch.manual_seed(1)
    gray = TinyConditional(channels=1).eval()
    engine = Engine.load(export(gray, height=16, width=16, out=tmp_path / "g", progress=False))
    assert engine.run(label=3).shape == (16, 16, 1)
    with pytest.raises(ConfigError, match="declares no signature"):
        export(nn.Conv2d(3, 3, 1), height=16, width=16, out=tmp_path / "x", progress=False)
    with pytest.raises(InputError, match="paints 16x16 only"):
        export(gray, height=32, width=32, out=tmp_path / "y", progress=False)


def test_label_map_models_declare_what_their_graphs_take(tmp_path):
    """The signature of the label-map families names the inputs their exported graphs take."""
    from rtgan.models import get_model, init_weights
    from rtgan.models.init import randomize_like_trained

    for preset, size in [("landscape-spade", (256, 256)), ("asapnet-cityscapes", (64, 128))]:
        model = init_weights(get_model(preset, **({"lr_max_width": 16, "lr_depth": 1} if "asap" in preset else {})))
        sig = model.signature()
        out = export(randomize_like_trained(model, *size, iterations=1), height=size[0], width=size[1],
                     out=tmp_path / preset, progress=False, verify=False)  # fmt: skip
        manifest = json.loads((out / "manifest.json").read_text())
        assert [i["name"] for i in manifest["inputs"]] == [i.name for i in sig.inputs]
        assert Signature.from_dict(manifest["signature"]) == sig


@pytest.mark.parametrize(
    "preset", ["dcgan-pytorch-examples", "dcgan-pytorch-gan", "cgan-pytorch-gan", "infogan-pytorch-gan"]
)
def test_classic_families_export_through_their_signature(preset, tmp_path):
    """DCGAN, CGAN and InfoGAN: one model file each, no export code of their own; engines >= 60 dB."""
    from rtgan.export import model_feeds
    from rtgan.models import get_model, init_weights

    torch.manual_seed(0)
    model = init_weights(get_model(preset), "normal")
    size = model.signature().size
    feeds = model_feeds(model, *size, batch=3, seed=2)
    ref = reference_image(model, feeds)
    for backend in ("onnxruntime", "openvino"):
        engine = Engine.load(export(model, height=size[0], width=size[1], backend=backend,
                                    out=tmp_path / backend, progress=False), backend)  # fmt: skip
        got = engine.run(**feeds)
        assert got.shape == ref.shape == (3, *size, model.signature().channels)
        assert psnr(got, ref) >= 60, f"{backend}: {psnr(got, ref):.1f} dB"


def test_generate_samples_a_latent_generator_and_the_demo_opens_it(tmp_path, capsys):
    import cv2

    from rtgan import models
    from rtgan.demo.engines import open_engine
    from rtgan.generate import main

    torch.manual_seed(0)
    saved = models.save(models.init_weights(models.get_model("cgan-pytorch-gan"), "normal"), tmp_path / "cgan")
    assert main(["--model", str(saved), "--count", "3", "--out", str(tmp_path / "s.png")]) == 0
    assert cv2.imread(str(tmp_path / "s.png")).shape == (32, 96, 3)  # three 32x32 samples in a row
    engine = export(models.load(saved), height=32, width=32, out=tmp_path / "e", progress=False)
    assert main(["--model", str(engine), "--count", "2", "--out", str(tmp_path / "e.png")]) == 0
    assert cv2.imread(str(tmp_path / "e.png")).shape == (32, 64, 3)
    assert main(["--model", str(engine), "--labels", str(tmp_path / "s.png"), "--out", str(tmp_path / "x.png")]) == 2
    assert "not label maps" in capsys.readouterr().err
    opened = open_engine(str(engine))  # the demo paints generators without a label map from their latents
    assert set(opened.input_names) == {"z", "label"} and opened.signature is not None


class TinyRegions(nn.Module):
    """A generator without labels taking the scalar, regions and latents kinds: each pixel's latent (z in region 0,
    lat[:, r - 1] in region r) times psi, through a 1x1 conv."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 1)

    def signature(self) -> Signature:
        inputs = (Input("z", "latent", size=4), Input("psi", "scalar", default=1.0, low=0.0, high=2.0),
                  Input("mask", "regions", classes=3), Input("lat", "latents", classes=2, size=4))  # fmt: skip
        return Signature(inputs, spatial="fixed", size=(8, 8))

    def prepare_inputs(self, z, psi, mask, lat):
        table = torch.cat([z[:, None], lat], 1) * psi[:, None, None]  # (B, 3, 4)
        index = mask.long().flatten(1)[:, :, None].expand(-1, -1, 4)
        return (torch.gather(table, 1, index).transpose(1, 2).reshape(-1, 4, 8, 8),)

    def forward(self, x):
        return torch.tanh(self.conv(x))


def test_scalar_regions_and_latents_kinds(tmp_path):
    torch.manual_seed(0)
    model = TinyRegions().eval()
    sig = model.signature()
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig
    assert sig.describe() == "z (4) + psi (0..2, default 1) + mask (3 regions) + lat (2×4) → RGB 8×8"
    for bad, message in [
        (dict(kind="scalar"), "needs a finite number as its default"),
        (dict(kind="scalar", default=3.0, high=2.0), r"default 3.0 is outside \[-inf, 2.0\]"),
        (dict(kind="scalar", default=float("nan")), "finite number"),
        (dict(kind="latent", size=4, default=1.0), "apply to scalar inputs only"),
        (dict(kind="regions"), "needs classes > 0"),
        (dict(kind="latents", classes=2), "needs a positive size"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Input("x", **bad)
    out = export(model, height=8, width=8, out=tmp_path / "e", progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(i["name"], i["kind"], i["dtype"], i["shape"]) for i in manifest["inputs"]] == [
        ("z", "latent", "float32", ["batch", 4]), ("psi", "scalar", "float32", ["batch"]),
        ("mask", "regions", "int32", ["batch", 8, 8]), ("lat", "latents", "float32", ["batch", 2, 4]),
    ]  # fmt: skip
    engine = Engine.load(out, "onnxruntime")
    rng = np.random.default_rng(2)
    z, lat = rng.standard_normal((3, 4)), rng.standard_normal((3, 2, 4))
    mask, psi = rng.integers(0, 3, (3, 8, 8)), np.array([0.5, 1.0, 2.0])
    got = engine.run(z=z, psi=psi, mask=mask, lat=lat)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    ref = reference_image(model, {"z": f32(z), "psi": f32(psi), "mask": mask.astype(np.int32), "lat": f32(lat)})
    assert got.shape == (3, 8, 8, 3) and psnr(got, ref) >= 60
    shared = engine.run(z=z, psi=0.5, mask=mask, lat=lat)  # one psi for the batch
    assert np.array_equal(shared, engine.run(z=z, psi=np.full(3, 0.5), mask=mask, lat=lat))
    assert engine.run(z=z[0], psi=0.5, mask=mask[0], lat=lat[0]).shape == (8, 8, 3)
    a, b = (Engine.load(out, "onnxruntime", seed=3) for _ in range(2))  # absent: psi 1, all region 0, lat sampled
    assert np.array_equal(a.run(psi=0.7), b.run(psi=0.7, mask=np.zeros((8, 8), int)))
    assert a.run().shape == (8, 8, 3)
    bad = [
        (dict(psi=2.5), r"psi must be in \[0, 2\], got 2.5"),
        (dict(psi=np.array([0.5, -1.0])), r"psi must be in \[0, 2\], got -1"),
        (dict(psi="x"), "psi must be a number"),
        (dict(psi=np.nan), "psi holds NaN"),
        (dict(psi=np.zeros((2, 2))), r"psi must be a number or a \(B,\) array"),
        (dict(mask=np.full((8, 8), 3)), "mask: region id 3 is out of range; ids are 0..2"),
        (dict(mask=np.zeros((8, 8), np.float32)), "mask must hold integer region ids"),
        (dict(mask=np.zeros((4, 8), int)), r"mask must be \(H, W\) or \(B, H, W\)"),
        (dict(lat=np.zeros((3, 4))), r"lat must be \(2, 4\) or \(B, 2, 4\)"),
        (dict(z=np.zeros((2, 4)), mask=np.zeros((3, 8, 8), int)), "disagree on the batch"),
    ]
    for kwargs, message in bad:
        with pytest.raises(InputError, match=message):
            engine.run(**kwargs)
