"""MUNIT (rtgan/models/munit.py): official key layout, normalizations, directions, errors, strict loading.

Parity with NVlabs/MUNIT's networks.py is tests/official/test_munit_parity.py.
"""

import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rtgan.errors import CheckpointError, ConfigError, InputError
from rtgan.models.munit import STALE_KEYS, AdaIN, LayerNorm, MUNITConfig, MUNITGenerator, munit_state_dict

MANIFEST = "munit_edges2shoes.json"
# tests/data/official-keys (the copy CI reads), else ../shared/reference/official-keys
_COPIES = (
    Path(__file__).parents[1] / "data" / "official-keys",
    Path(__file__).parents[3] / "shared" / "reference" / "official-keys",
)
TINY = dict(dim=4, mlp_dim=8, style_dim=3, n_res=2)


def tiny(**options) -> MUNITGenerator:
    torch.manual_seed(0)
    model = MUNITGenerator(MUNITConfig(**{**TINY, **options})).eval()
    with torch.no_grad():  # random shifts: a zero bias hides a swapped tensor
        for name, p in model.named_parameters():
            if name.endswith(("bias", "beta")):
                p.normal_(0, 0.1)
    return model


def checkpoint(model: MUNITGenerator) -> dict:
    """What the official trainer saves: {'a': gen_a.state_dict(), 'b': gen_b.state_dict()}."""
    return {"a": model.gen_a.state_dict(), "b": model.gen_b.state_dict()}


def image(b, c, h, w, seed=1):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_key_layout_matches_official_manifest():
    path = next((d / MANIFEST for d in _COPIES if (d / MANIFEST).is_file()), None)
    if path is None:
        pytest.skip(f"{MANIFEST} not found in {', '.join(map(str, _COPIES))}")
    ref = json.loads(path.read_text())
    options = {k: v for k, v in ref["options"].items() if k != "gen"} | ref["options"]["gen"]
    assert MUNITConfig.from_options(**options) == MUNITConfig()  # the defaults are edges2shoes'
    with torch.device("meta"):
        model = MUNITGenerator(MUNITConfig.from_options(**options))
    assert sorted(k.split(".")[0] for k in dict(model.named_children())) == ["gen_a", "gen_b"]
    for gen in (model.gen_a, model.gen_b):
        # the same order too: a state dict saved from rtgan reads like an official one
        assert [(k, list(v.shape)) for k, v in gen.state_dict().items()] == list(ref["netG"].items())
        assert sum(p.numel() for p in gen.parameters()) == ref["netG_params"]


def test_config_checks_and_official_names():
    c = MUNITConfig.from_options(dim=8, activ="lrelu", pad_type="zero", input_dim_a=1, a2b=False)
    assert (c.source_dim, c.output_dim, c.size_factor) == (3, 1, 4)
    for bad, match in [
        (dict(activ="gelu"), "activ must be one of"),
        (dict(pad_type="circular"), "pad_type must be one of"),
        (dict(input_dim_b=4), "input_dim_b must be 1 or 3"),
        (dict(new_size=250), "new_size must be a multiple of 2\\*\\*n_downsample = 4"),
        (dict(n_res=0), "n_res must be positive"),
    ]:
        with pytest.raises(ConfigError, match=match):
            MUNITConfig(**bad)
    with pytest.raises(ConfigError, match="did you mean 'style_dim'"):
        MUNITConfig.from_options(style_dims=8)
    with pytest.raises(ConfigError, match="must be int"):
        MUNITConfig.from_options(dim="64")


def test_layernorm_is_munits_not_torchs():
    """The official LayerNorm, re-derived with torch.std (unbiased) and eps outside the sqrt."""
    torch.manual_seed(0)
    ln = LayerNorm(5)
    with torch.no_grad():
        ln.beta.normal_()
    for shape in [(3, 5, 7, 2), (1, 5, 3, 3)]:  # the official code takes another path for batch 1
        x = torch.randn(shape) * 3 + 1
        flat = x.reshape(shape[0], -1)
        mean = flat.mean(1).view(-1, 1, 1, 1)
        std = torch.std(flat, dim=1, unbiased=True).view(-1, 1, 1, 1)
        ref = (x - mean) / (std + 1e-5) * ln.gamma.view(1, -1, 1, 1) + ln.beta.view(1, -1, 1, 1)
        torch.testing.assert_close(ln(x), ref, atol=1e-6, rtol=1e-5)
        # a biased std (F.layer_norm) is a different function at these sizes
        torch_ln = F.layer_norm(x, shape[1:], eps=1e-5) * ln.gamma.view(1, -1, 1, 1) + ln.beta.view(1, -1, 1, 1)
        assert (ln(x) - torch_ln).abs().max() > 1e-3
    assert 0 <= ln.gamma.min() and ln.gamma.max() <= 1  # official init: uniform [0, 1)


def test_adain_uses_instance_statistics_and_ignores_buffers():
    x = torch.randn(2, 3, 5, 4) * 2 + 1
    mean, std = torch.randn(2, 3), torch.rand(2, 3) + 0.5
    adain = AdaIN(3)
    mu = x.mean((2, 3), keepdim=True)
    var = x.var((2, 3), unbiased=False, keepdim=True)
    ref = (x - mu) / torch.sqrt(var + 1e-5) * std[:, :, None, None] + mean[:, :, None, None]
    torch.testing.assert_close(adain(x, mean, std), ref, atol=1e-5, rtol=1e-5)
    adain.running_mean.fill_(5)
    adain.running_var.fill_(9)
    torch.testing.assert_close(adain(x, mean, std), ref, atol=1e-5, rtol=1e-5)


def test_decoder_reads_mean_first_then_std_per_layer():
    model = tiny()
    dec = model.gen_b.dec
    layers = [m for m in dec.modules() if isinstance(m, AdaIN)]
    seen = []
    hooks = [m.register_forward_hook(lambda m, args, out: seen.append(args[1:])) for m in layers]
    c = dec.adain_features[0]
    params = torch.arange(2 * sum(dec.adain_features), dtype=torch.float32)[None]
    dec(torch.randn(1, 16, 4, 4), params)
    for h in hooks:
        h.remove()
    assert len(seen) == len(layers) == 2 * TINY["n_res"]
    for i, (mean, std) in enumerate(seen):
        assert torch.equal(mean[0], params[0, 2 * c * i : 2 * c * i + c])
        assert torch.equal(std[0], params[0, 2 * c * i + c : 2 * c * (i + 1)])


@pytest.mark.parametrize("a2b", [True, False])
def test_direction_uses_source_content_and_target_decoder(a2b):
    """a -> b: gen_a's content encoder, gen_b's MLP and decoder (test.py); the other parts are unused."""
    model = tiny(input_dim_a=1, input_dim_b=3, a2b=a2b)
    src, tgt = (model.gen_a, model.gen_b) if a2b else (model.gen_b, model.gen_a)
    x = image(2, 1 if a2b else 3, 16, 24)
    s = torch.randn(2, 3, 1, 1)
    with torch.no_grad():
        out = model(x, s)
        assert out.shape == (2, 3 if a2b else 1, 16, 24)
        torch.testing.assert_close(out, tgt.dec(src.enc_content(x), tgt.mlp(s)), atol=0, rtol=0)
        for unused in (src.dec, src.mlp, src.enc_style, tgt.enc_content, tgt.enc_style):
            for p in unused.parameters():
                p.normal_()
        assert torch.equal(model(x, s), out)
        for p in src.enc_content.parameters():
            p.normal_()
        assert not torch.allclose(model(x, s), out)


@pytest.mark.parametrize("a2b", [True, False])
def test_style_from_a_target_image_then_translate(a2b):
    model = tiny(input_dim_a=1, input_dim_b=3, a2b=a2b)
    tgt_dim, src_dim = (3, 1) if a2b else (1, 3)
    x = image(2, src_dim, 16, 16)
    style_images = image(2, tgt_dim, 24, 20, seed=5)  # a style image need not be a multiple of 4
    with torch.no_grad():
        s = model.encode_style(style_images)
        assert s.shape == (2, 3, 1, 1)
        assert torch.equal(s, (model.gen_b if a2b else model.gen_a).enc_style(style_images))
        out = model(x, s)
        assert torch.equal(model(x, s[:, :, 0, 0]), out)  # (B, style_dim) is accepted too
        assert out.shape == (2, tgt_dim, 16, 16) and out.abs().max() <= 1
        assert not torch.allclose(out[0], model(x, s.flip(0))[0])  # the style changes the image
    with pytest.raises(InputError, match=f"must have {tgt_dim} channel"):
        model.encode_style(image(1, src_dim, 16, 16))
    with pytest.raises(InputError, match="too small"):
        model.encode_style(image(1, tgt_dim, 15, 32))


def test_input_errors_name_the_problem():
    model = tiny()
    s = torch.randn(1, 3)
    cases = [
        (image(1, 3, 18, 16), s, "multiples of 2\\*\\*n_downsample = 4, got 18x16 .*return 16x16"),
        (image(1, 3, 4, 16), s, "4x16 is too small: sides must be at least 8"),
        (image(1, 1, 16, 16), s, "image must have 3 channel"),
        (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), s, "float tensor \\(B, 3, H, W\\)"),
        (image(1, 3, 16, 16)[0], s, "float tensor \\(B, 3, H, W\\)"),
        (image(1, 3, 16, 16), torch.randn(1, 4), "style must be a float tensor of shape \\(1, 3, 1, 1\\)"),
        (image(1, 3, 16, 16), torch.randn(2, 3), "style .*\\(1, 3\\), got \\(2, 3, 1, 1\\)"),
        (image(1, 3, 16, 16), torch.randn(1, 3, 2, 2), "style must be"),
        (image(1, 3, 16, 16), torch.zeros(1, 3, dtype=torch.int64), "style must be a float"),
        (image(1, 3, 16, 16), None, "style must be .* got NoneType"),
    ]
    for x, style, match in cases:
        with pytest.raises(InputError, match=match):
            model(x, style)
    with pytest.raises(InputError, match="source must be a uint8 RGB tensor \\(B, H, W, 3\\)"):
        model.prepare_inputs(image(1, 3, 16, 16).permute(0, 2, 3, 1), s)
    with pytest.raises(InputError, match="uint8 RGB"):
        model.prepare_inputs(torch.zeros(1, 16, 16, 4, dtype=torch.uint8), s)


@pytest.mark.parametrize("dims", [(3, 3), (1, 3), (3, 1)])
def test_signature_and_engine_inputs(dims):
    model = tiny(input_dim_a=dims[0], input_dim_b=dims[1], new_size=32)
    sig = model.signature()
    assert [(i.name, i.kind, i.size) for i in sig.inputs] == [("source", "image", None), ("style_code", "latent", 3)]
    assert (sig.channels, sig.spatial, sig.multiple, tuple(sig.size)) == (dims[1], "multiple", 4, (32, 32))
    rgb = torch.randint(0, 256, (2, 16, 20, 3), dtype=torch.uint8)
    style = torch.randn(2, 3)
    x, s = model.prepare_inputs(source=rgb, style_code=style)
    # test.py: ToTensor() then Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    rgb_f = rgb.permute(0, 3, 1, 2).float() / 255
    if dims[0] == 1:  # PIL convert('L'), then the same normalization
        rgb_f = 0.299 * rgb_f[:, :1] + 0.587 * rgb_f[:, 1:2] + 0.114 * rgb_f[:, 2:]
    torch.testing.assert_close(x, rgb_f * 2 - 1, atol=1e-6, rtol=0)
    assert s.shape == (2, 3, 1, 1)
    with torch.no_grad():
        assert model(x, s).shape == (2, dims[1], 16, 20)


def test_checkpoint_round_trip_and_strictness():
    model = tiny()
    raw = checkpoint(model)
    fresh = MUNITGenerator(model.config)
    fresh.load_state_dict(munit_state_dict(raw, model.config), strict=True)
    x, s = image(1, 3, 16, 16), torch.randn(1, 3)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x, s), model(x, s))

    def broken(domain, edit):
        part = dict(raw[domain])
        edit(part)
        return {**raw, domain: part}

    cases = [
        (broken("a", lambda p: p.pop("dec.model.2.norm.gamma")), "generator 'a'.*missing.*dec.model.2.norm.gamma"),
        (broken("b", lambda p: p.update(extra=torch.zeros(1))), "generator 'b'.*unexpected.*extra"),
        (
            broken("b", lambda p: p.update({"enc_style.model.6.weight": torch.zeros(8, 16, 1, 1)})),
            "shape mismatch.*enc_style.model.6.weight.*style_dim: the checkpoint's style codes have 8",
        ),
        (
            broken("a", lambda p: p.update({"enc_content.model.0.conv.weight": torch.zeros(4, 1, 7, 7)})),
            "input_dim_a: the checkpoint's generator a takes 1 channel",
        ),
        (broken("a", lambda p: p.update(extra=[1])), "entry 'extra' holds a list, not a tensor"),
        (broken("a", lambda p: p.update({"mlp.model.0.fc.bias": torch.zeros(8, dtype=torch.int64)})), "wrong dtype"),
        (raw["a"], "expected a MUNIT generator file"),
        ({"gen": {}, "dis": {}}, "under 'a' and 'b', got \\['dis', 'gen'\\]"),  # optimizer.pt
        ({"a": {"cnns.0.0.conv.weight": torch.zeros(1)}, "b": {}}, "discriminator file"),
        ({"a": raw["a"], "b": raw["b"], "c": {}}, "expected a MUNIT generator file"),
    ]
    for bad, match in cases:
        with pytest.raises(CheckpointError, match=f"(?s){match}"):
            munit_state_dict(bad, model.config)


def test_stale_buffers_are_dropped_with_a_warning_and_never_used():
    model = tiny(n_res=4)  # the fixed list in the official test script is for n_downsample 2, n_res 4
    raw = checkpoint(model)
    x, s = image(2, 3, 16, 16), torch.randn(2, 3)
    with torch.no_grad():
        ref = model(x, s)
    assert len(STALE_KEYS) == 22 and all(k.startswith("enc_content.") for k in STALE_KEYS)
    old = {}
    for d in "ab":  # a PyTorch 0.3 file: content-encoder InstanceNorm statistics; AdaIN buffers it always has
        part = {**raw[d], **{k: torch.randn(16) for k in STALE_KEYS}}  # dropped unread: shapes do not matter
        part.update({k: torch.randn(v.shape) * 3 for k, v in part.items() if k.endswith("running_mean")})
        old[d] = part
    with pytest.warns(UserWarning, match="dropping 22 PyTorch 0.3 InstanceNorm statistics"):
        state = munit_state_dict(old, model.config)
    assert not any(k.split(".", 1)[1] in STALE_KEYS for k in state)
    loaded = MUNITGenerator(model.config).eval()
    loaded.load_state_dict(state, strict=True)
    key = "dec.model.0.model.0.model.0.norm.running_mean"
    assert torch.equal(loaded.gen_a.state_dict()[key], old["a"][key]) and old["a"][key].abs().sum() > 0
    with torch.no_grad():
        assert torch.equal(loaded(x, s), ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        munit_state_dict(raw, model.config)  # a current file: no warning
    # only the official list: a similar-looking buffer elsewhere is still an error
    other = {**raw, "a": {**raw["a"], "enc_content.model.3.model.0.model.0.norm.num_batches_tracked": torch.zeros(())}}
    with pytest.raises(CheckpointError, match="unexpected.*num_batches_tracked"):
        munit_state_dict(other, model.config)


def test_prelu_and_other_options_keep_official_names():
    model = tiny(activ="prelu", n_downsample=1, pad_type="zero")
    keys = list(model.gen_a.state_dict())
    assert "enc_content.model.0.activation.weight" in keys and "mlp.model.0.activation.weight" in keys
    # one upsampling stage: upsample (1), conv + LayerNorm (2), the output conv (3)
    assert (
        "dec.model.2.norm.gamma" in keys and "dec.model.3.conv.weight" in keys and "dec.model.4.conv.bias" not in keys
    )
    assert isinstance(model.gen_a.dec.model[1], nn.Upsample) and model.gen_a.dec.model[1].mode == "nearest"
    with pytest.raises(CheckpointError, match="activ: PReLU"):
        munit_state_dict(checkpoint(model), model.config.replace(activ="relu"))
    with pytest.raises(CheckpointError, match="n_downsample: the checkpoint's content encoder has 1"):
        munit_state_dict(checkpoint(model), model.config.replace(n_downsample=2))


def test_onnx_export_matches_torch(tmp_path):
    """The exported graph takes uint8 `source` + float `style_code` and paints what PyTorch paints."""
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    from rtgan.engine.contract import MANIFEST, ONNX_FILE
    from rtgan.export import export

    model = tiny(input_dim_a=3, input_dim_b=1)
    out = export(model, height=16, width=24, backend="onnxruntime", out=tmp_path / "munit", progress=False)
    manifest = json.loads((out / MANIFEST).read_text())
    assert [i["name"] for i in manifest["inputs"]] == ["source", "style_code"]
    assert manifest["fidelity"]["max_abs_uint8"] <= 1  # the exporter's own check against PyTorch
    rng = np.random.default_rng(0)
    feeds = {
        "source": rng.integers(0, 256, (2, 16, 24, 3), dtype=np.uint8),
        "style_code": rng.standard_normal((2, 3)).astype(np.float32),
    }
    got = ort.InferenceSession(str(out / ONNX_FILE), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert got.shape == (2, 16, 24, 1) and got.dtype == np.uint8
    with torch.no_grad():
        ref = model(*model.prepare_inputs(**{k: torch.from_numpy(v) for k, v in feeds.items()}))
    ref = ((ref.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).numpy()
    assert np.abs(got.astype(np.float64) - ref).max() <= 1
