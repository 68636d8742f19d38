"""Triton model repositories from artifacts of every backend kind, checked offline: each config parses with
tritonclient's protobuf and agrees with its model file (read here with onnx / OpenVINO, independently of
rtgan's checker), the checker catches configs that are wrong, and the photo ensemble runs step by step."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from rtgan import Engine, weights
from rtgan.errors import ConfigError
from rtgan.serve import RepositoryError
from rtgan.serve.check import check_repository, run_ensemble
from rtgan.serve.repository import write_repository

pb = pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="tritonclient: pip install 'rtgan[serve]'")
onnx = pytest.importorskip("onnx")
from google.protobuf import text_format  # noqa: E402  (tritonclient brings protobuf)

ASAP = weights.path("landscape-asapnet") / "engine"
SPADE = weights.path("landscape-spade") / "engine"
SKETCH = weights.path("sketch2landscape-pix2pix") / "engine"
TYPES = {"int32": "TYPE_INT32", "uint8": "TYPE_UINT8", "float32": "TYPE_FP32"}


def config(repo, name):
    """The model's config.pbtxt, parsed with the protobuf schema tritonclient ships."""
    return text_format.Parse((repo / name / "config.pbtxt").read_text(), pb.ModelConfig())


def tensors(ts):
    return {t.name: (pb.DataType.Name(t.data_type), list(t.dims)) for t in ts}


def onnx_tensors(path, values):
    graph = onnx.load(str(path), load_external_data=False).graph
    out = {}
    for v in getattr(graph, values):
        if v.name in {i.name for i in graph.initializer}:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
        elem = onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
        out[v.name] = (TYPES[elem], dims)
    return out


def agrees(cfg_tensors, model_tensors):
    """Config dims (no batch) fit the model's (batch dynamic, then equal where the model fixes a size)."""
    assert set(cfg_tensors) == set(model_tensors)
    for name, (dtype, dims) in cfg_tensors.items():
        mtype, mdims = model_tensors[name]
        assert dtype == mtype, name
        assert mdims[0] == -1 and len(mdims) == len(dims) + 1, (name, mdims, dims)
        assert all(m in (-1, d) for m, d in zip(mdims[1:], dims)), (name, mdims, dims)


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo") / "models"
    write_repository([str(ASAP), str(SPADE), f"sketch={SKETCH}"], repo)
    return repo


def test_onnxruntime_configs_agree_with_their_models(bundled):
    assert sorted(p.name for p in bundled.iterdir()) == ["landscape-asapnet", "landscape-spade", "sketch"]
    for name in ("landscape-asapnet", "landscape-spade", "sketch"):
        c = config(bundled, name)
        assert c.name == name and c.platform == "onnxruntime_onnx"
        model = bundled / name / "1" / "model.onnx"
        agrees(tensors(c.input), onnx_tensors(model, "input"))
        agrees(tensors(c.output), onnx_tensors(model, "output"))
        assert c.max_batch_size == 4  # the artifacts' max_batch
        assert list(c.dynamic_batching.preferred_batch_size) == [2, 4]
        assert c.dynamic_batching.max_queue_delay_microseconds > 0
        assert [(g.kind, g.count) for g in c.instance_group] == [(pb.ModelInstanceGroup.KIND_CPU, 1)]
    spade = config(bundled, "landscape-spade")
    assert tensors(spade.input) == {"labels": ("TYPE_INT32", [256, 256]), "z": ("TYPE_FP32", [64])}
    assert tensors(spade.output) == {"image": ("TYPE_UINT8", [256, 256, 3])}
    assert tensors(config(bundled, "sketch").input) == {"source": ("TYPE_UINT8", [256, 256, 3])}
    ids = json.loads((ASAP / "manifest.json").read_text())["label_ids"]
    assert config(bundled, "landscape-asapnet").parameters["rtgan_label_ids"].string_value == ",".join(map(str, ids))
    lines = check_repository(bundled)
    assert len(lines) == 3 and all(line.startswith("ok") for line in lines)


def test_command_line(tmp_path):
    out = tmp_path / "models"
    cmd = [sys.executable, "-m", "rtgan.serve"]
    r = subprocess.run(cmd + ["repository", str(ASAP), "--out", str(out), "--max-batch-size", "2", "--instances",
                              "3", "--threads", "2"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "ok  landscape-asapnet" in r.stdout and "tritonserver --model-repository=/models" in r.stdout
    c = config(out, "landscape-asapnet")
    assert c.max_batch_size == 2 and c.instance_group[0].count == 3
    assert c.parameters["intra_op_thread_count"].string_value == "2"
    r = subprocess.run(cmd + ["check", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("ok  landscape-asapnet"), r.stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("a user's file")
    r = subprocess.run(cmd + ["repository", str(ASAP), "--out", str(tmp_path / "mine")], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "rtgan did not write" in r.stderr
    assert (tmp_path / "mine" / "notes.txt").is_file()


# -- the checker must fail on configs that disagree with their model --------------------------------------------


def _broken(bundled, tmp_path, edit, model="landscape-asapnet"):
    repo = tmp_path / "broken"
    shutil.copytree(bundled, repo)
    path = repo / model / "config.pbtxt"
    text = path.read_text()
    new = edit(text)
    assert new != text, "the edit must change the config"
    path.write_text(new)
    return repo


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("TYPE_INT32", "TYPE_FP32", 1), "input 'labels' is TYPE_FP32, but 1/model.onnx has int32"),
        (lambda t: t.replace("dims: 256\n  dims: 256\n}", "dims: 256\n  dims: 255\n}", 1), "has dims [256, 255]"),
        (lambda t: t.replace('name: "labels"', 'name: "label"'), "input 'label' is not one of 1/model.onnx's inputs"),
        (lambda t: t.replace('name: "image"', 'name: "picture"'), "output 'picture' is not one of"),
        (lambda t: t.replace("dims: 3\n", ""), "output 'image' has dims [256, 256]"),
        (lambda t: t.replace("max_batch_size: 4", "max_batch_size: 0"), "dynamic_batching needs max_batch_size > 0"),
        (lambda t: t.replace('name: "landscape-asapnet"', 'name: "other"'), "its folder is 'landscape-asapnet'"),
        (lambda t: t.replace("max_batch_size: 4", "max_batch_size: 4\nmax_batch_size: x"), "not a valid model config"),
    ],
    ids=["dtype", "dim", "input-name", "output-name", "rank", "batch", "model-name", "syntax"],
)
def test_check_catches_a_wrong_config(bundled, tmp_path, edit, message):
    repo = _broken(bundled, tmp_path, edit)
    with pytest.raises(RepositoryError, match=r"landscape-asapnet.*" + _escape(message)):
        check_repository(repo)
    r = subprocess.run([sys.executable, "-m", "rtgan.serve", "check", str(repo)], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 2 and message in r.stderr


def test_check_reports_every_problem(bundled, tmp_path):
    repo = _broken(bundled, tmp_path, lambda t: t.replace("TYPE_FP32", "TYPE_INT32"), model="landscape-spade")
    (repo / "sketch" / "config.pbtxt").write_text(
        (repo / "sketch" / "config.pbtxt").read_text().replace("TYPE_UINT8", "TYPE_FP16", 1)
    )
    with pytest.raises(RepositoryError, match="2 problem") as e:
        check_repository(repo)
    assert "input 'z' is TYPE_INT32" in str(e.value) and "input 'source' is TYPE_FP16" in str(e.value)


def _escape(text):
    import re

    return re.escape(text)


# -- OpenVINO and TensorRT artifacts ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    pytest.importorskip("torch")
    from helpers import make

    return make("asap-tile16")  # 32 x 64, a few kB of weights: exports in seconds


def test_openvino_repository(tiny, tmp_path):
    ov = pytest.importorskip("openvino")
    from rtgan.export import export

    model, (h, w) = tiny
    art = export(model, height=h, width=w, backend="openvino", out=tmp_path / "ov", progress=False, verify=False)
    repo = tmp_path / "models"
    write_repository([f"tiny-ov={art}"], repo)
    c = config(repo, "tiny-ov")
    assert c.backend == "openvino" and not c.platform
    assert {p.name for p in (repo / "tiny-ov" / "1").iterdir()} == {"model.xml", "model.bin"}
    # Triton's OpenVINO backend pads every batch to max_batch_size: 1 unless asked
    assert c.max_batch_size == 1 and "ENABLE_BATCH_PADDING" not in c.parameters
    assert c.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU
    ir = ov.Core().read_model(str(repo / "tiny-ov" / "1" / "model.xml"))
    for port, (dtype, dims) in zip(ir.inputs, tensors(c.input).values()):
        assert dims == [d.get_length() for d in list(port.get_partial_shape())[1:]] == [h, w]
        assert dtype == TYPES[np.dtype(port.get_element_type().to_dtype()).name]
        assert port.get_partial_shape()[0].is_dynamic
    assert tensors(c.input) == {"labels": ("TYPE_INT32", [h, w]), "instance": ("TYPE_INT32", [h, w])}
    assert tensors(c.output) == {"image": ("TYPE_UINT8", [h, w, 3])}
    check_repository(repo)
    write_repository([f"tiny-ov={art}"], repo, max_batch_size=4)
    c = config(repo, "tiny-ov")
    assert c.max_batch_size == 4 and c.parameters["ENABLE_BATCH_PADDING"].string_value == "YES"
    check_repository(repo)
    _replace(repo / "tiny-ov" / "config.pbtxt", f"dims: {w}\n}}", f"dims: {w + 1}\n}}")
    with pytest.raises(RepositoryError, match=rf"input 'labels' has dims \[{h}, {w + 1}\], but 1/model.xml"):
        check_repository(repo)


def _replace(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_tensorrt_rtx_artifact_is_served_from_its_onnx(tiny, tmp_path):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install 'rtgan[tensorrt-rtx]')")
    from rtgan.export import export

    model, (h, w) = tiny
    art = export(model, height=h, width=w, backend="tensorrt-rtx", compute_capability="SM86", out=tmp_path / "rtx",
                 progress=False, verify=False)  # fmt: skip
    warnings = []
    repo = tmp_path / "models"
    write_repository([f"tiny={art}"], repo, warn=warnings.append)
    assert len(warnings) == 1 and "no Triton backend loads TensorRT-RTX engines" in warnings[0]
    c = config(repo, "tiny")
    # Triton's tensorrt backend links datacenter TensorRT, which cannot open TensorRT-RTX plans
    assert c.platform == "onnxruntime_onnx" and not c.cc_model_filenames
    assert c.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU
    assert "TensorRT-RTX plan not loadable by Triton" in (repo / "tiny" / "config.pbtxt").read_text()
    agrees(tensors(c.input), onnx_tensors(repo / "tiny" / "1" / "model.onnx", "input"))
    assert c.max_batch_size == 4  # the plan's profile
    check_repository(repo)


def _plan_artifact(directory, gpu_arch, plan=b"plan bytes: only a GPU opens them"):
    """A datacenter TensorRT artifact (one needs its GPU to build): the bundled model's manifest, as a plan."""
    import hashlib

    directory.mkdir()
    manifest = json.loads((ASAP / "manifest.json").read_text())
    (directory / "model.plan").write_bytes(plan)
    shutil.copyfile(ASAP / "model.onnx", directory / "model.onnx")
    manifest.update(
        backend="tensorrt",
        target={"device": "cuda", "gpu_arch": gpu_arch},
        plan={"library": "tensorrt", "version": "10.13.3", "plan_bytes": len(plan), "build_seconds": 1.0},
        files={"model.onnx": manifest["files"]["model.onnx"], "model.plan": hashlib.sha256(plan).hexdigest()},
        libraries={**manifest["libraries"], "tensorrt": "10.13.3"},
    )
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_tensorrt_plans_per_gpu_architecture(tmp_path):
    a = _plan_artifact(tmp_path / "sm86", "SM86")
    b = _plan_artifact(tmp_path / "sm89", "SM89", b"another plan")
    repo = tmp_path / "models"
    write_repository([f"asap={a}", f"asap={b}"], repo)
    c = config(repo, "asap")
    assert c.platform == "tensorrt_plan"
    assert dict(c.cc_model_filenames) == {"8.6": "model_sm86.plan", "8.9": "model_sm89.plan"}
    assert (repo / "asap" / "1" / "model_sm89.plan").read_bytes() == b"another plan"
    assert c.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU and c.max_batch_size == 4
    assert tensors(c.input) == {"labels": ("TYPE_INT32", [256, 256])}
    assert "a plan loads only in the TensorRT version that built it" in (repo / "asap" / "config.pbtxt").read_text()
    check_repository(repo)
    with pytest.raises(ConfigError, match="at most 4, not --max-batch-size 8"):
        write_repository([f"asap={a}"], tmp_path / "big", max_batch_size=8)
    with pytest.raises(ConfigError, match="built for SM86"):
        write_repository([f"asap={a}", f"asap={a}"], tmp_path / "twice")
    (repo / "asap" / "1" / "model_sm86.plan").write_bytes(b"swapped")
    _replace(repo / "asap" / "config.pbtxt", "KIND_GPU", "KIND_CPU")
    with pytest.raises(RepositoryError, match="2 problem") as e:
        check_repository(repo)
    assert "model_sm86.plan: SHA-256 differs" in str(e.value) and "plan runs on the GPU" in str(e.value)


# -- the photo ensemble: segmenter -> class mapping -> generator ------------------------------------------------

CLASSES, SEG_H, SEG_W = 5, 32, 48
MAPPING = {"classes": {"0": "sky", "1": 154, "2": "grass", "3": "tree"}, "fallback": "mountain",
           "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3]}  # fmt: skip


def _segmenter(path, batch="batch", pool=True):
    """A tiny segmenter: a 1x1 convolution to 5 class scores, at half the input resolution."""
    from onnx import TensorProto as T
    from onnx import helper as h

    weight = np.random.default_rng(0).standard_normal((CLASSES, 3, 1, 1)).astype(np.float32)
    nodes = [h.make_node("Conv", ["x", "w"], ["c"])]
    nodes += [h.make_node("AveragePool", ["c"], ["scores"], kernel_shape=[2, 2], strides=[2, 2])] if pool else \
        [h.make_node("Identity", ["c"], ["scores"])]  # fmt: skip
    out = [batch, CLASSES, SEG_H // 2, SEG_W // 2] if pool else [batch, CLASSES, SEG_H, SEG_W]
    graph = h.make_graph(nodes, "seg", [h.make_tensor_value_info("x", T.FLOAT, [batch, 3, SEG_H, SEG_W])],
                         [h.make_tensor_value_info("scores", T.FLOAT, out)],
                         [h.make_tensor("w", T.FLOAT, weight.shape, weight.ravel())])  # fmt: skip
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), str(path))
    return path


def _ids_by_name():
    names = json.loads((ASAP / "manifest.json").read_text())["class_names"]
    return {v: int(k) for k, v in names.items()}


def test_photo_ensemble_runs_step_by_step(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from rtgan.data import landscapes

    seg = _segmenter(tmp_path / "tinyseg.onnx")
    (tmp_path / "map.json").write_text(json.dumps(MAPPING))
    repo = tmp_path / "models"
    write_repository([str(ASAP)], repo, segmenter=seg, mapping=tmp_path / "map.json")
    names = sorted(p.name for p in repo.iterdir())
    assert names == ["landscape-asapnet", "landscape-asapnet-photo", "tinyseg", "tinyseg-pre",
                     "tinyseg-to-landscape-asapnet"]  # fmt: skip
    lines = check_repository(repo)
    assert len(lines) == 5
    ens = config(repo, "landscape-asapnet-photo")
    assert ens.platform == "ensemble" and ens.max_batch_size == 4 and not ens.instance_group
    assert tensors(ens.input) == {"photo": ("TYPE_UINT8", [-1, -1, 3])}
    assert tensors(ens.output) == {"image": ("TYPE_UINT8", [256, 256, 3])}
    steps = [(s.model_name, dict(s.input_map), dict(s.output_map)) for s in ens.ensemble_scheduling.step]
    assert steps == [
        ("tinyseg-pre", {"photo": "photo"}, {"pixels": "pixels"}),
        ("tinyseg", {"x": "pixels"}, {"scores": "scores"}),
        ("tinyseg-to-landscape-asapnet", {"scores": "scores"}, {"labels": "labels"}),
        ("landscape-asapnet", {"labels": "labels"}, {"image": "image"}),
    ]

    # the wiring, run offline as Triton's scheduler would, against the chain done by hand
    photo = landscapes.render(3, 60, 90)[1][None]  # not the segmenter's size: the pre step resizes it
    got = run_ensemble(repo, "landscape-asapnet-photo", {"photo": photo})["image"]
    pre = ort.InferenceSession(str(repo / "tinyseg-pre" / "1" / "model.onnx"))
    pixels = pre.run(None, {"photo": photo})[0]
    assert pixels.shape == (1, 3, SEG_H, SEG_W) and pixels.dtype == np.float32
    scores = ort.InferenceSession(str(seg)).run(None, {"x": pixels})[0]
    ids = _ids_by_name()
    lut = [ids["sky"], 154, ids["grass"], ids["tree"], ids["mountain"]]  # class 4 is not listed: the fallback
    small = np.array(lut, np.int32)[scores.argmax(1)]
    assert len(np.unique(small)) > 1, "a one-class map would not show the lookup"
    rows = np.arange(256) * small.shape[1] // 256  # nearest, as cv2.INTER_NEAREST picks
    cols = np.arange(256) * small.shape[2] // 256
    labels = small[:, rows][:, :, cols]
    post = ort.InferenceSession(str(repo / "tinyseg-to-landscape-asapnet" / "1" / "model.onnx"))
    np.testing.assert_array_equal(post.run(None, {"scores": scores})[0], labels)
    want = Engine.load(ASAP, backend="onnxruntime", threads=1).run(labels)
    np.testing.assert_array_equal(got, want)

    # normalization: a flat grey photo is ((v / 255) - mean) / std after any resize
    flat = np.full((1, 40, 40, 3), 200, np.uint8)
    expect = (200 / 255 - np.array(MAPPING["mean"])) / np.array(MAPPING["std"])
    np.testing.assert_allclose(pre.run(None, {"photo": flat})[0][0, :, 5, 5], expect, rtol=1e-5)


def test_photo_ensemble_with_a_latent_passes_z_through(tmp_path):
    seg = _segmenter(tmp_path / "seg.onnx", pool=False)
    (tmp_path / "map.json").write_text(json.dumps(MAPPING))
    repo = tmp_path / "models"
    write_repository([str(SPADE)], repo, segmenter=seg, mapping=tmp_path / "map.json")
    ens = config(repo, "landscape-spade-photo")
    assert tensors(ens.input) == {"photo": ("TYPE_UINT8", [-1, -1, 3]), "z": ("TYPE_FP32", [64])}
    assert dict(ens.ensemble_scheduling.step[-1].input_map) == {"labels": "labels", "z": "z"}
    check_repository(repo)
    ort = pytest.importorskip("onnxruntime")
    from rtgan.data import landscapes

    photo = landscapes.render(4, SEG_H, SEG_W)[1][None]
    z = np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)
    got = run_ensemble(repo, "landscape-spade-photo", {"photo": photo, "z": z})["image"]
    run = lambda name, feeds: ort.InferenceSession(str(repo / name / "1" / "model.onnx")).run(None, feeds)[0]
    labels = run("seg-to-landscape-spade", {"scores": run("seg", {"x": run("seg-pre", {"photo": photo})})})
    np.testing.assert_array_equal(got, Engine.load(SPADE, backend="onnxruntime", threads=1).run(labels, z=z))
    _replace(repo / "landscape-spade-photo" / "config.pbtxt", 'value: "pixels"\n', 'value: "pixel"\n')
    with pytest.raises(RepositoryError, match="steps wait for tensors nothing provides"):
        check_repository(repo)


@pytest.mark.parametrize(
    "mapping, seg_kw, message",
    [
        ({"classes": {"0": "lava"}}, {}, "unknown class name 'lava'"),
        ({"classes": {"0": 3}}, {}, "3 is not one of the generator's label ids"),
        ({"classes": {"0": "sky"}, "std": [1, 0, 1]}, {}, '"std" must be positive'),
        ({"classes": {}}, {}, 'non-empty "classes"'),
        ({"classes": {"0": "sky"}}, {"batch": 1}, "batch dimension is fixed at 1"),
    ],
    ids=["name", "id", "std", "empty", "fixed-batch"],
)
def test_photo_ensemble_refuses_a_bad_mapping_or_segmenter(tmp_path, mapping, seg_kw, message):
    seg = _segmenter(tmp_path / "seg.onnx", **seg_kw)
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    with pytest.raises(ConfigError, match=_escape(message)):
        write_repository([str(ASAP)], tmp_path / "models", segmenter=seg, mapping=tmp_path / "map.json")
    assert not (tmp_path / "models").exists()
