"""ASAPNet's pixelwise MLP as an OpenVINO CPU op (rtgan/kernels/asap_mlp_openvino.cpp) vs the model's
own functions (`asap_mlp_reference`), and the engine running it in place of the standard graph."""

import numpy as np
import pytest
import torch

from rtgan.engine import openvino_ext
from rtgan.engine.tensorrt import BackendUnavailable
from rtgan.kernels.asap_mlp import asap_mlp_reference

ov = pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def core():
    core = ov.Core()
    try:
        openvino_ext.add_to(core)
    except openvino_ext.ExtensionUnavailable as e:  # no C++ compiler: engines fall back (tested below)
        pytest.skip(str(e))
    return core


def _op_model(path, classes, channels, tile, n_extra):
    """An ONNX graph of one rtgan::AsapPixelMlp[Extra] node, as the plugin export writes it."""
    import onnx
    from onnx import TensorProto, helper

    names = ["labels", "params"] + (["extra"] if n_extra else [])
    types = [TensorProto.INT32, TensorProto.FLOAT, TensorProto.FLOAT]
    ranks = [3, 4, 4]
    inputs = [helper.make_tensor_value_info(n, t, [None] * r) for n, t, r in zip(names, types, ranks)]
    node = helper.make_node("AsapPixelMlpExtra" if n_extra else "AsapPixelMlp", names, ["image"], domain="rtgan",
                            num_classes=classes, channels=channels, tile=tile, plugin_version="1")  # fmt: skip
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, [None] * 4)
    graph = helper.make_graph([node], "op", inputs, [image])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("rtgan", 1)])
    onnx.save(model, str(path))
    return path


def _case(classes, tile, hid, depth, n_extra, b=2, cells=(2, 3), blocky=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = cells[0] * tile, cells[1] * tile
    nfreq = tile.bit_length() - 1
    channels = [classes + n_extra + 4 * nfreq] + [hid] * (depth - 1) + [3]
    p = sum((ci + 1) * co for ci, co in zip(channels, channels[1:]))
    if blocky:  # label regions wider than a 16-pixel group: the one-label fast path
        labels = torch.randint(0, classes, (b, h // 4 + 1, w // 32 + 1), generator=g)
        labels = labels.repeat_interleave(4, 1).repeat_interleave(32, 2)[:, :h, :w].contiguous()
    else:
        labels = torch.randint(0, classes, (b, h, w), generator=g)
    params = torch.randn(b, p, *cells, generator=g) * 0.3
    extra = None
    if n_extra:  # an instance-edge channel (0/1), then noise channels
        edge = (torch.rand(b, 1, h, w, generator=g) < 0.2).float()
        extra = torch.cat([edge, torch.randn(b, n_extra - 1, h, w, generator=g)], 1)
    return labels, params, channels, extra


@pytest.mark.parametrize("blocky", [False, True])
@pytest.mark.parametrize(
    "classes, tile, hid, depth, n_extra",
    # the bundled model's shape; wide hidden layers with an edge; a width off the 8-output blocks;
    # tiles narrower than a pixel group (4, 8); a single layer (no hidden activation)
    [(15, 16, 32, 4, 4), (35, 16, 64, 5, 1), (13, 32, 24, 2, 0), (7, 4, 16, 3, 1), (9, 8, 20, 3, 2), (5, 16, 3, 1, 0)],
)
def test_op_matches_reference(core, tmp_path, classes, tile, hid, depth, n_extra, blocky):
    labels, params, channels, extra = _case(classes, tile, hid, depth, n_extra, blocky=blocky)
    if depth == 1:
        channels = [channels[0], 3]
        params = params[:, : (channels[0] + 1) * 3]
    want = asap_mlp_reference(labels, params, classes, channels, tile, extra, uint8=True).numpy()
    compiled = core.compile_model(str(_op_model(tmp_path / "op.onnx", classes, channels, tile, n_extra)), "CPU")
    feeds = {"labels": labels.int().numpy(), "params": params.permute(0, 2, 3, 1).contiguous().numpy()}
    if extra is not None:
        feeds["extra"] = extra.numpy()
    got = compiled(feeds)[0]
    assert got.dtype == np.uint8 and got.shape == want.shape
    diff = np.abs(got.astype(int) - want)
    # fp32 throughout; its own tanh and summation order move a value across a rounding boundary rarely
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_op_refuses_params_that_do_not_fit(core, tmp_path):
    labels, params, channels, _ = _case(15, 16, 32, 4, 0)
    compiled = core.compile_model(str(_op_model(tmp_path / "op.onnx", 15, channels, 16, 0)), "CPU")
    nhwc = params.permute(0, 2, 3, 1).contiguous().numpy()
    with pytest.raises(RuntimeError, match="do not fit"):
        compiled({"labels": labels.int().numpy(), "params": nhwc[..., :-1].copy()})
    with pytest.raises(RuntimeError, match="do not fit"):  # one tile row short
        compiled({"labels": labels.int().numpy()[:, :-1].copy(), "params": nhwc})


@pytest.fixture(scope="module")
def fused_artifact(tmp_path_factory):
    """A small landscape ASAPNet (random weights, its 4 noise channels) exported with the plugin graph."""
    from rtgan.export import export
    from rtgan.models import get_model
    from rtgan.models.init import init_weights

    model = init_weights(get_model("landscape-asapnet")).eval()
    out = tmp_path_factory.mktemp("fused") / "engine"
    export(model, height=64, width=96, backend="onnxruntime", out=out, plugins=True, progress=False)
    return model, out


def test_engine_runs_the_fused_graph_and_paints_the_reference(core, fused_artifact):
    from rtgan.engine import Engine
    from rtgan.export.exporter import reference_image, sample_feeds

    model, out = fused_artifact
    fused = Engine.load(out, "openvino", precision="fp32")
    standard = Engine.load(out, "openvino", precision="fp32", kernels=False)
    assert fused.kernels and "fused" in fused.kernels_reason and not standard.kernels
    feeds = sample_feeds(fused.manifest, batch=2)
    ref = reference_image(model, feeds)
    for engine in (fused, standard):
        got = engine.run(feeds["labels"])
        assert np.abs(got.astype(int) - ref).max() <= 1
    measured = fused.manifest["plugins"]["openvino"]["fp32"]
    assert measured["psnr_db"] >= 60 and measured["ms"] > 0 and measured["ms_standard"] > 0


def test_engine_falls_back_when_the_extension_cannot_build(fused_artifact, tmp_path, monkeypatch):
    from rtgan.engine import Engine

    _, out = fused_artifact
    monkeypatch.setattr(openvino_ext, "CACHE_ROOT", tmp_path)  # nothing built yet
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setenv("PATH", str(tmp_path))  # and no compiler on PATH
    engine = Engine.load(out, "openvino", precision="fp32")
    assert not engine.kernels and "no C++ compiler" in engine.kernels_reason
    assert engine.run(np.full((64, 96), engine.label_ids[0], np.int32)).shape == (64, 96, 3)
    with pytest.raises(BackendUnavailable, match=r"no C\+\+ compiler"):
        Engine.load(out, "openvino", precision="fp32", kernels=True)
    with pytest.raises(BackendUnavailable, match="run on OpenVINO"):
        Engine.load(out, "onnxruntime", kernels=True)


@pytest.mark.parametrize("march", ["x86-64-v3", "x86-64"])  # AVX2 (8-pixel groups) and SSE2 (4)
def test_op_built_for_older_cpus_matches_reference(core, tmp_path, march):
    """The library as an AVX2-only or baseline x86-64 machine builds it (`RTGAN_MARCH`), in a process
    of its own (two builds of the same ops cannot share one)."""
    import os
    import subprocess
    import sys

    labels, params, channels, extra = _case(15, 16, 32, 4, 4, blocky=True)
    want = asap_mlp_reference(labels, params, 15, channels, 16, extra, uint8=True).numpy()
    path = _op_model(tmp_path / "op.onnx", 15, channels, 16, 4)
    np.savez(tmp_path / "feeds.npz", labels=labels.int().numpy(), params=params.permute(0, 2, 3, 1).numpy(),
             extra=extra.numpy())  # fmt: skip
    script = f"""
import numpy as np, openvino as ov
from rtgan.engine import openvino_ext
core = ov.Core(); openvino_ext.add_to(core)
feeds = dict(np.load({str(tmp_path / "feeds.npz")!r}))
feeds = {{k: np.ascontiguousarray(v) for k, v in feeds.items()}}
np.save({str(tmp_path / "got.npy")!r}, core.compile_model({str(path)!r}, "CPU")(feeds)[0])
"""
    env = dict(os.environ, RTGAN_MARCH=march)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    diff = np.abs(np.load(tmp_path / "got.npy").astype(int) - want)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def _label_conv_model(path, bias: bool, dtype):
    import onnx
    from onnx import TensorProto, helper

    names = ["ids", "weight"] + (["bias"] if bias else [])
    types = [dtype, TensorProto.FLOAT, TensorProto.FLOAT]
    ranks = [4, 4, 1]
    inputs = [helper.make_tensor_value_info(n, t, [None] * r) for n, t, r in zip(names, types, ranks)]
    node = helper.make_node("LabelConv3x3", names, ["out"], domain="rtgan")
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [None] * 4)
    graph = helper.make_graph([node], "op", inputs, [out])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("rtgan", 1)]),
              str(path))  # fmt: skip
    return path


@pytest.mark.parametrize(
    "classes, outputs, bias, int64", [(15, 16, False, True), (9, 5, True, False), (3, 33, True, True)]
)
def test_label_conv_is_the_convolution_of_the_one_hot_map(core, tmp_path, classes, outputs, bias, int64):
    from onnx import TensorProto

    g = torch.Generator().manual_seed(1)
    b, h, w = 2, 37, 70  # rows and columns off the 16-pixel groups, image borders on every side
    # wide regions (the one-label fast path) with a band of single pixels, and ids no class has
    ids = torch.randint(0, classes, (b, 1, h // 6 + 1, w // 20 + 1), generator=g)
    ids = ids.repeat_interleave(6, 2).repeat_interleave(20, 3)[:, :, :h, :w].contiguous()
    ids[:, :, 10:13] = torch.randint(-2, classes + 2, (b, 1, 3, w), generator=g)
    weight = torch.randn(outputs, classes, 3, 3, generator=g)
    bias_v = torch.randn(outputs, generator=g) if bias else None
    one_hot = (ids == torch.arange(classes).view(1, -1, 1, 1)).float()  # out-of-range ids: all zero
    want = torch.nn.functional.conv2d(one_hot, weight, bias_v, padding=1).numpy()
    dtype = TensorProto.INT64 if int64 else TensorProto.INT32
    compiled = core.compile_model(str(_label_conv_model(tmp_path / "op.onnx", bias, dtype)), "CPU")
    feeds = {"ids": ids.numpy().astype(np.int64 if int64 else np.int32), "weight": weight.numpy()}
    if bias:
        feeds["bias"] = bias_v.numpy()
    got = compiled(feeds)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_the_cpu_plugin_graph_has_no_one_hot_convolution_or_argmax(fused_artifact):
    import onnx

    _, out = fused_artifact
    graph = onnx.load(str(out / "model.plugins.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert "LabelConv3x3" in ops and "AsapPixelMlpExtra" in ops and "ArgMax" not in ops
    # the one-hot map no longer feeds anything that runs: its convolution and argmax read the ids
    producer = {o: n for n in graph.node for o in n.output}
    assert not any(producer.get(i) is not None and producer[i].op_type == "Cast" and n.op_type == "Conv"
                   for n in graph.node for i in n.input[:1])  # fmt: skip


def test_a_plugin_graph_with_nodes_the_extension_lacks_runs_the_standard_graph(tmp_path):
    from rtgan.engine.backends import fused_graph

    manifest = {"plugins": {"file": "model.plugins.onnx", "nodes": {"SpadeNormDenorm": 12, "LabelConv3x3": 1}}}
    path, why = fused_graph(ov.Core(), tmp_path, manifest, "fp32", None)
    assert path is None and "does not implement (SpadeNormDenorm)" in why
    with pytest.raises(BackendUnavailable, match="SpadeNormDenorm"):
        fused_graph(ov.Core(), tmp_path, manifest, "fp32", True)
    slower = {"plugins": {"file": "f", "nodes": {"AsapPixelMlp": 1}, "openvino": {"bf16": {"speedup": 0.8}}}}
    assert fused_graph(ov.Core(), tmp_path, slower, "bf16", None) == (
        None, "the fused graph measured 0.8x the standard one at bf16 when exported")  # fmt: skip
    assert fused_graph(ov.Core(), tmp_path, manifest, "fp32", False) == (None, "fused kernels off (kernels=False)")
