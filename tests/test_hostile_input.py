"""Bad input tried as a new user (or a hostile file) would: every failure is a typed rtgan error.

The property throughout: a call either gives a correct result (a uint8 image of the right shape, a
model in eval mode) or raises an `RtganError` (InputError, ConfigError, CheckpointError,
ArtifactError, ...) that names the problem; any other exception, a wrong-shaped image, or code run
from a file fails. The hypothesis tests are derandomized and sized to run in seconds.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rtgan.weights
from rtgan import Engine
from rtgan.engine.manifest import ArtifactError, check_fields
from rtgan.errors import CheckpointError, ConfigError, InputError, RtganError
from rtgan.models import load, load_official, save

from helpers import VARIANTS, make

FAST = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
H = W = 64  # the size the bundled landscape-asapnet is exported at here


def typed_or(fn, *args, **kwargs):
    """fn's result, or the RtganError it raised (any other exception propagates and fails the test)."""
    try:
        return fn(*args, **kwargs)
    except RtganError as e:
        assert str(e), f"{type(e).__name__} without a message"
        return e


# --------------------------------------------------------------------------------------------
# a small real engine: the bundled landscape-asapnet exported at 64x64 for ONNX Runtime


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    from rtgan.export import export

    model = load(rtgan.weights.path())
    return export(model, height=H, width=W, out=tmp_path_factory.mktemp("art") / "engine", progress=False)


@pytest.fixture(scope="module")
def engine(artifact) -> Engine:
    return Engine.load(artifact, backend="onnxruntime", threads=1)


@pytest.fixture(scope="module")
def base_manifest(artifact) -> dict:
    return json.loads((artifact / "manifest.json").read_text())


@pytest.fixture(scope="module")
def scratch(artifact, tmp_path_factory) -> Path:
    """An artifact directory whose manifest.json the tests rewrite (the ONNX file hard-linked)."""
    d = tmp_path_factory.mktemp("scratch") / "engine"
    d.mkdir()
    for f in artifact.iterdir():
        try:
            os.link(f, d / f.name)
        except OSError:
            shutil.copy(f, d / f.name)
    (d / "manifest.json").unlink()
    return d


def _write_manifest(directory: Path, manifest) -> None:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (directory / "manifest.json").write_text(text)


def _check_image(image, batch: int | None):
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8, type(image)
    assert image.shape == ((H, W, 3) if batch is None else (batch, H, W, 3)), image.shape


# --------------------------------------------------------------------------------------------
# 1. manifests whose fields hold the wrong JSON types or ranges: ArtifactError naming the field

_DIGEST = "0" * 64
MANIFEST_CASES = [
    # (field, value or DELETE, text the error names)
    ("label_ids", "x", "label_ids"),
    ("label_ids", [], "label_ids"),
    ("label_ids", [1.5] * 15, "label_ids"),
    ("label_ids", [156] * 15, "label_ids"),  # not distinct
    ("label_ids", [156, 105], "label_ids"),  # not num_classes of them
    ("label_ids", [-1] + list(range(14)), "label_ids"),
    ("label_ids", [2**40] + list(range(14)), "label_ids"),
    ("height", "256", "height"),
    ("height", 0, "height"),
    ("height", -64, "height"),
    ("height", 64.0, "height"),
    ("height", True, "height"),
    ("height", None, "height"),
    ("height", 32, "inputs"),  # disagrees with the inputs' (batch, 64, 64)
    ("width", [64], "width"),
    ("width", 10**30, "width"),
    ("inputs", 5, "inputs"),
    ("inputs", [], "inputs"),
    ("inputs", [5], "inputs"),
    ("inputs", "labels", "inputs"),
    ("inputs", [{"name": 5}], "inputs"),
    ("inputs", [{"dtype": "int32"}], "inputs"),
    ("inputs", [{"name": "labels"}, {"name": "labels"}], "inputs"),
    ("inputs", [{"name": "labels", "dtype": "float32"}], "inputs"),
    ("inputs", [{"name": "labels", "dtype": ["int32"]}], "inputs"),
    ("inputs", [{"name": "labels", "kind": ["labels"]}], "inputs"),
    ("inputs", [{"name": "labels", "kind": "nonsense"}], "inputs"),
    ("inputs", [{"name": "z"}], "inputs"),  # no labels and no signature
    ("inputs", [{"name": "labels"}, {"name": "z"}], "z_dim"),  # a z without z_dim
    ("inputs", [{"name": "labels", "shape": ["batch", 32, 64]}], "inputs"),
    ("inputs", [{"name": "labels", "shape": "batch"}], "inputs"),
    ("num_classes", -1, "num_classes"),
    ("num_classes", 0, "num_classes"),
    ("num_classes", "15", "num_classes"),
    ("num_classes", 16, "label_ids"),
    ("max_batch", 0, "max_batch"),
    ("max_batch", "4", "max_batch"),
    ("max_batch", 4.5, "max_batch"),
    ("backend", 5, "backend"),
    ("backend", "nope", "backend"),
    ("backend", ["onnxruntime"], "backend"),
    ("backend", "openvino", "files"),  # its model.xml is not listed
    ("precision", 32, "precision"),
    ("files", [], "files"),
    ("files", {}, "files"),
    ("files", {"model.onnx": 5}, "files"),
    ("files", {"model.onnx": "abc"}, "files"),
    ("files", {"model.onnx": _DIGEST, "../../etc/passwd": _DIGEST}, "files"),
    ("files", {"model.onnx": _DIGEST, "/etc/passwd": _DIGEST}, "files"),
    ("class_names", [1], "class_names"),
    ("class_names", {"156": 5}, "class_names"),
    ("class_names", {"999": "nothing"}, "class_names"),
    ("class_names", "sky", "class_names"),
    ("libraries", 5, "libraries"),
    ("libraries", {"onnxruntime": 1.2}, "libraries"),
    ("libraries", {"onnxruntime": "latest"}, "libraries"),
    ("style_encoder", 5, "style_encoder"),
    ("style_encoder", {"file": "nope.onnx", "input": "style", "output": "mu"}, "style_encoder"),
    ("style_encoder", {"file": ["model.onnx"], "input": "style", "output": "mu"}, "style_encoder"),
    ("style_encoder", {"file": "model.onnx", "inputs": [], "output": "codes"}, "style_encoder"),
    ("style_encoder", {"file": "model.onnx", "inputs": ["style", "mask"], "output": "codes"}, "style_encoder"),
    ("style_encoder", {"file": "model.onnx", "inputs": ["style", "style"], "output": "codes"}, "style_encoder"),
    (
        "style_encoder",
        {"file": "model.onnx", "input": "style", "inputs": ["style", "labels"], "output": "codes"},
        "style_encoder",
    ),  # fmt: skip
    ("style_encoder", {"file": "model.onnx", "inputs": ["style", "labels"]}, "style_encoder"),
    ("target", 5, "target"),
    ("target", {"gpu_arch": 8.9}, "target"),
    ("output", [], "output"),
    ("config", "asapnet", "config"),
    ("signature", 5, "signature"),
    ("signature", {"inputs": 5}, "signature"),
    ("signature", {"inputs": [{"name": "labels", "kind": "nope"}]}, "signature"),
    ("signature", {"inputs": [{"name": "t", "kind": "scalar"}]}, "signature"),  # no default
    ("signature", {"inputs": [{"name": "t", "kind": "scalar", "default": "1"}]}, "signature"),
    ("signature", {"inputs": [{"name": "t", "kind": "scalar", "default": 2.0, "high": 1.0}]}, "signature"),
    ("signature", {"inputs": [{"name": "r", "kind": "regions"}]}, "signature"),
    ("signature", {"inputs": [{"name": "r", "kind": "latents", "classes": 2}]}, "signature"),
    ("signature", {"inputs": [{"name": "z", "kind": "latent", "size": 4, "low": 0.0}]}, "signature"),
    ("format_version", True, "format"),
    ("format_version", "1", "format"),
    ("format", None, "format"),
] + [
    (field, "DELETE", "format" if field == "format_version" else field)
    for field in "format format_version height width num_classes max_batch inputs backend files".split()
]


@pytest.mark.parametrize("field,value,names", MANIFEST_CASES, ids=[f"{f}={v!r:.30}" for f, v, _ in MANIFEST_CASES])
def test_wrong_manifest_field_is_refused_naming_it(scratch, base_manifest, field, value, names):
    m = copy.deepcopy(base_manifest)
    if value == "DELETE":
        del m[field]
    else:
        m[field] = value
    _write_manifest(scratch, m)
    with pytest.raises(ArtifactError, match=rf"'?{names}'?") as e:
        Engine.load(scratch)
    assert "manifest.json" in str(e.value)


@pytest.mark.parametrize("text", ["[]", "5", '"rtgan-engine"', "null", "{", "\xff\xfe", "[" * 100_000 + "]" * 100_000])
def test_manifest_that_is_not_a_json_object_is_refused(scratch, text):
    _write_manifest(scratch, text)
    with pytest.raises(ArtifactError, match="manifest.json"):
        Engine.load(scratch)


def test_optional_fields_may_be_absent(scratch, base_manifest):
    m = copy.deepcopy(base_manifest)
    optional = "class_names signature label_ids output libraries target precision rewrites fidelity created"
    for field in (optional + " cache_key config z_dim style_encoder arch model_sha256").split():
        m.pop(field, None)
    m["num_classes"] = 200  # without label_ids the ids are 0..num_classes-1 (the graph's own check is the LUT)
    _write_manifest(scratch, m)
    engine = Engine.load(scratch)
    _check_image(engine.run(np.zeros((H, W), np.int64)), None)
    m["class_names"] = {"0": "sky"}
    _write_manifest(scratch, m)
    _check_image(Engine.load(scratch).run(np.zeros((H, W), np.int64)), None)


def test_exported_manifest_passes_the_field_check(base_manifest):
    check_fields(base_manifest)  # what export writes is what the check accepts


# JSON values hypothesis substitutes for one field at a time
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)


@FAST
@given(data=st.data())
def test_manifest_mutated_field_by_field(scratch, base_manifest, data):
    m = copy.deepcopy(base_manifest)
    field = data.draw(st.sampled_from(sorted(m) + ["signature", "style_encoder", "z_dim"]), label="field")
    action = data.draw(st.sampled_from(["delete", "replace", "label_ids", "inputs"]), label="action")
    if action == "delete":
        m.pop(field, None)
    elif action == "label_ids":  # lists of ids, small enough for the engine's lookup table
        m["label_ids"] = data.draw(st.lists(st.integers(-2, 1000), max_size=17) | _json, label="label_ids")
    elif action == "inputs":
        m["inputs"] = data.draw(st.lists(st.fixed_dictionaries({"name": _json}, optional={"dtype": _json,
                                "shape": _json, "kind": _json}), max_size=3) | _json, label="inputs")  # fmt: skip
    else:
        m[field] = data.draw(_json, label="value")
    _write_manifest(scratch, m)
    engine = typed_or(Engine.load, scratch, backend="onnxruntime", threads=1)
    if isinstance(engine, RtganError):
        return
    labels = np.asarray(base_manifest["label_ids"])[np.arange(H * W).reshape(H, W) % 15]
    image = typed_or(engine.run, labels)
    if not isinstance(image, RtganError):
        _check_image(image, None)


@pytest.mark.parametrize("backend", ["auto", "onnxruntime", "openvino"])
def test_model_file_that_is_not_a_model_is_refused(artifact, base_manifest, tmp_path, backend):
    # the manifest is consistent and its digest matches, but model.onnx is junk: the runtime's own
    # exception (onnxruntime's InvalidProtobuf, OpenVINO's RuntimeError) must not reach the user
    import hashlib

    d = tmp_path / "junk"
    shutil.copytree(artifact, d)
    (d / "model.onnx").write_bytes(b"junk")
    m = copy.deepcopy(base_manifest)
    m["files"]["model.onnx"] = hashlib.sha256(b"junk").hexdigest()
    _write_manifest(d, m)
    with pytest.raises(RtganError):
        Engine.load(d, backend=backend)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_manifest_size_the_graph_does_not_have_is_refused(scratch, base_manifest, backend):
    # height and the inputs' shapes edited together: consistent, but not the 64x64 graph's size
    m = copy.deepcopy(base_manifest)
    m["height"] = 32
    for i in m["inputs"]:
        i["shape"] = ["batch", 32, W]
    m.pop("signature", None)
    _write_manifest(scratch, m)
    with pytest.raises(RtganError):
        Engine.load(scratch, backend=backend).run(np.full((32, W), 156))


# --------------------------------------------------------------------------------------------
# 3a. Engine.run on arbitrary arrays and nested lists (the real engine)

_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.bool_,
           np.float16, np.float32, np.float64, np.complex64, object, "U3", "M8[s]", ">i4"]  # fmt: skip
_dims = st.sampled_from([0, 1, 2, 3, 63, 64, 65])


def _ids_strategy(label_ids):
    ok = st.sampled_from(label_ids)
    return st.one_of(ok, ok, st.integers(-(2**63), 2**64 - 1), st.integers(-2, 200))


@st.composite
def label_inputs(draw, label_ids):
    """(input, expected batch or None): arrays of many shapes and dtypes, or nested lists of them."""
    shape = draw(
        st.one_of(
            st.just((H, W)),
            st.tuples(st.integers(1, 3), st.just(H), st.just(W)),
            st.lists(_dims, max_size=4).map(tuple),
        )
    )
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    n = int(np.prod(shape))
    fill = draw(st.sampled_from(["valid", "one", "random"]))
    if fill == "valid":
        values = np.asarray(label_ids)[np.arange(n) % len(label_ids)]
    elif fill == "one":
        values = np.full(n, draw(_ids_strategy(label_ids)), dtype=object)
    else:
        values = np.asarray(draw(st.lists(_ids_strategy(label_ids), min_size=1, max_size=4)), dtype=object)
        values = np.resize(values, n)
    try:
        with np.errstate(all="ignore"):
            a = values.astype(dtype).reshape(shape) if dtype.kind != "O" else values.reshape(shape)
    except (OverflowError, ValueError, TypeError):
        a = np.zeros(shape, dtype)
    if draw(st.booleans()):
        a = a.tolist()
    batch = None if len(shape) == 2 else shape[0] if shape else None
    return a, batch


@FAST
@given(data=st.data())
def test_engine_run_any_array_or_list(engine, data):
    labels, batch = data.draw(label_inputs(engine.label_ids), label="labels")
    if batch == 0:
        return  # an empty batch: test_empty_batch_is_refused
    image = typed_or(engine.run, labels)
    if not isinstance(image, RtganError):
        _check_image(image, batch)


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(batch=st.integers(1, 3), as_list=st.booleans(), dtype=st.sampled_from([np.int32, np.int64, np.uint8, np.int16]))
def test_engine_run_valid_labels_paint(engine, batch, as_list, dtype):
    """The other half of the property: valid ids in any integer dtype or as lists give an image."""
    ids = np.asarray(engine.label_ids)[np.random.default_rng(batch).integers(0, 15, (batch, H, W))].astype(dtype)
    labels = ids.tolist() if as_list else ids
    _check_image(engine.run(labels), batch)
    _check_image(engine.run(labels[0]), None)


@pytest.mark.parametrize(
    "labels,match",
    [
        (np.zeros((H, W, 3), np.uint8), "RGB image"),
        (np.zeros((H, W), np.float32), "integer ids"),
        (np.full((H, W), 2**64 - 1, np.uint64), "not one of this model's classes"),
        (np.full((H, W), -(2**63), np.int64), "not one of this model's classes"),
        (np.zeros((H, W + 1), np.int32), "fixed size"),
        (np.zeros((1, 1, H, W), np.int32), "fixed size"),
        (np.int64(156), "fixed size"),
        ("sky", "integer ids"),
        (None, "labels are required"),
        ({"labels": 1}, "integer ids"),
    ],
    ids=["rgb", "float", "uint64-max", "int64-min", "wrong-size", "4d", "scalar", "str", "None", "dict"],
)
def test_engine_run_refusals_name_the_problem(engine, labels, match):
    with pytest.raises(InputError, match=match):
        engine.run(labels)


def test_engine_run_takes_no_instance_z_or_style(engine):
    labels = np.full((H, W), 156)
    with pytest.raises(InputError, match="instance"):
        engine.run(labels, instance=labels)
    with pytest.raises(InputError, match="z was given"):
        engine.run(labels, z=np.zeros(4))
    with pytest.raises(InputError, match="no style encoder"):
        engine.run(labels, style=np.zeros((H, W, 3), np.uint8))


def test_empty_batch_is_refused(engine):
    # ONNX Runtime paints an empty batch for some graphs and fails in Reshape for others (the SPADE
    # style encoder), TensorRT refuses it: the engine should refuse it the same way everywhere
    with pytest.raises(InputError, match="empty batch"):
        engine.run(np.zeros((0, H, W), np.int32))


RAGGED = [
    [[156] * W] * (H - 1) + [[156] * (W - 1)],  # one short row
    [[[156] * W] * H, [[156] * W] * (H - 1)],  # a batch of two different heights
    [[156, 105], [134]],
    [[156], 105],
]


@pytest.mark.parametrize("labels", RAGGED, ids=["short-row", "two-heights", "tiny", "mixed-depth"])
def test_ragged_nested_lists_are_refused(engine, labels):
    with pytest.raises(InputError, match="rectangular"):
        engine.run(labels)


# --------------------------------------------------------------------------------------------
# 3b. the z / instance / style paths, on an engine whose backend checks the contract it is fed

ZD, SH, SW = 8, 8, 16
FAKE_MANIFEST = {
    "format": "rtgan-engine",
    "format_version": 1,
    "height": SH,
    "width": SW,
    "num_classes": 5,
    "label_ids": None,
    "z_dim": ZD,
    "max_batch": 4,
    "inputs": [
        {"name": "labels", "dtype": "int32", "shape": ["batch", SH, SW]},
        {"name": "instance", "dtype": "int32", "shape": ["batch", SH, SW]},
        {"name": "z", "dtype": "float32", "shape": ["batch", ZD]},
    ],
    "output": {"name": "image", "dtype": "uint8", "shape": ["batch", SH, SW, 3]},
    "backend": "onnxruntime",
    "precision": "fp32",
    "files": {"model.onnx": _DIGEST, "encoder.onnx": _DIGEST},
    "style_encoder": {"file": "encoder.onnx", "input": "style", "output": "mu"},
}


class ContractBackend:
    """Stands in for a runtime: asserts that what it is fed follows the artifact contract."""

    name = "onnxruntime"

    def infer(self, feeds):
        labels = feeds["labels"]
        b = labels.shape[0]
        assert b >= 1, "the engine fed an empty batch"
        for k in ("labels", "instance"):
            a = feeds[k]
            assert a.dtype == np.int32 and a.flags.c_contiguous and a.shape == (b, SH, SW), (k, a.dtype, a.shape)
        z = feeds["z"]
        assert z.dtype == np.float32 and z.shape == (b, ZD) and np.isfinite(z).all(), (z.dtype, z.shape)
        assert set(feeds) == {"labels", "instance", "z"}
        return np.zeros((b, SH, SW, 3), np.uint8)


class ContractEncoder:
    def run(self, _, feeds):
        (style,) = feeds.values()
        assert style.dtype == np.uint8 and style.ndim == 4 and style.shape[-1] == 3, (style.dtype, style.shape)
        assert min(style.shape) >= 1, f"the engine fed the style encoder an empty image {style.shape}"
        return [np.zeros((style.shape[0], ZD), np.float32)]


@pytest.fixture
def vae_engine(tmp_path):
    check_fields(FAKE_MANIFEST)
    engine = Engine(tmp_path, copy.deepcopy(FAKE_MANIFEST), ContractBackend(), seed=0)
    engine._style = ContractEncoder()
    return engine


_any = st.one_of(
    st.none(),
    st.integers(-5, 10),
    st.floats(),
    st.text(max_size=3),
    st.builds(
        lambda shape, dtype, v: np.full(shape, v).astype(dtype) if dtype is not object else np.full(shape, v, object),
        st.lists(st.sampled_from([1, 2, 3, ZD, SH, SW]), max_size=4).map(tuple),
        st.sampled_from([np.int32, np.int64, np.uint8, np.float32, np.float64, np.bool_, object]),
        st.sampled_from([0, 1, 4, 7]),
    ),
)


@FAST
@given(data=st.data())
def test_vae_engine_any_z_instance_style(vae_engine, data):
    labels = data.draw(st.sampled_from([np.zeros((SH, SW), np.int64), np.ones((2, SH, SW), np.int32)]), label="labels")
    batch = None if labels.ndim == 2 else labels.shape[0]
    kwargs = {k: data.draw(_any, label=k) for k in data.draw(st.sets(st.sampled_from(["instance", "z", "style"])))}
    if "style" in kwargs and data.draw(st.booleans(), label="real style"):  # a proper style image, any size
        kwargs["style"] = np.zeros((*data.draw(st.tuples(st.integers(1, 40), st.integers(1, 40))), 3), np.uint8)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    image = typed_or(vae_engine.run, labels, **kwargs)
    if not isinstance(image, RtganError):
        assert image.dtype == np.uint8 and image.shape == ((SH, SW, 3) if batch is None else (batch, SH, SW, 3))


def test_vae_engine_refusals(vae_engine):
    labels = np.zeros((SH, SW), np.int32)
    assert vae_engine.run(labels).shape == (SH, SW, 3)
    assert vae_engine.run(labels, z=np.zeros(ZD)).shape == (SH, SW, 3)
    assert vae_engine.run(labels, style=np.zeros((3, 5, 3), np.uint8)).shape == (SH, SW, 3)
    for z in (np.zeros(ZD + 1), np.full(ZD, np.nan), np.zeros(ZD, np.int32), np.zeros((2, ZD)), "zzz"):
        with pytest.raises(InputError, match="z must be"):
            vae_engine.run(labels, z=z)
    with pytest.raises(InputError, match="not both"):
        vae_engine.run(labels, z=np.zeros(ZD), style=np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="instance shape"):
        vae_engine.run(labels, instance=np.zeros((2, SH, SW), np.int32))
    with pytest.raises(InputError, match="int32"):
        vae_engine.run(labels, instance=np.full((SH, SW), 2**40))
    for style in (np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8)):
        with pytest.raises(InputError, match="style must be uint8"):
            vae_engine.run(labels, style=style)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"z": [[0.0] * ZD, [0.0]]}, id="z"),
        pytest.param({"instance": [[1] * SW] * (SH - 1) + [[1]]}, id="instance"),
        pytest.param({"style": [[[0, 0, 0]], [[0, 0]]]}, id="style"),
    ],
)
def test_vae_engine_ragged_inputs_are_refused(vae_engine, kwargs):
    with pytest.raises(InputError, match="rectangular"):
        vae_engine.run(np.zeros((SH, SW), np.int32), **kwargs)


@pytest.mark.parametrize(
    "style", [np.zeros((0, 8, 8, 3), np.uint8), np.zeros((0, 0, 3), np.uint8), np.zeros((1, 8, 0, 3), np.uint8)]
)
def test_empty_style_images_are_refused(vae_engine, style):
    # ONNX Runtime fails in the encoder's Reshape / Resize on these: the engine must refuse them first
    with pytest.raises(InputError, match="style"):
        vae_engine.encode_style(style)


# --------------------------------------------------------------------------------------------
# 2. rtgan.models.load on damaged model directories


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    model, _ = make("p2phd-global")
    return save(model, tmp_path_factory.mktemp("model") / "m")


def _copy_model(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def _edit_config(d: Path, edit) -> None:
    meta = json.loads((d / "config.json").read_text())
    edit(meta)
    (d / "config.json").write_text(json.dumps(meta))


def _unhashed(meta):
    meta["sha256"] = {}


def _safetensors(state: dict, d: Path) -> None:
    from safetensors.torch import save_file

    save_file(state, str(d / "model.safetensors"))


CONFIG_CASES = {
    "not-an-object": ("[]", None, "JSON object"),
    "number": ("5", None, "JSON object"),
    "truncated": (lambda t: t[: len(t) // 2], None, "corrupted JSON"),
    "empty": ("", None, "corrupted JSON"),
    "binary": (b"\xff\xfe\x00", None, "corrupted JSON"),
    "arch-number": (None, lambda m: m.update(arch=5), "'arch'"),
    "arch-list": (None, lambda m: m.update(arch=["pix2pixhd"]), "'arch'"),
    "arch-unknown": (None, lambda m: m.update(arch="pix3pix"), "unknown architecture"),
    "config-number": (None, lambda m: m.update(config=5), "'config'"),
    "config-unknown-option": (None, lambda m: m["config"].update(lable_nc=3), "did you mean 'label_nc'"),
    "option-wrong-type": (None, lambda m: m["config"].update(ngf="64"), "ngf"),
    "option-huge": (None, lambda m: m["config"].update(ngf=10**9), "config"),
    "option-zero": (None, lambda m: m["config"].update(ngf=0), "does not match"),
    "option-negative": (None, lambda m: m["config"].update(ngf=-4), "config"),
    "label-ids-strings": (None, lambda m: m["config"].update(label_ids=["a"] * 5), "label_ids"),
    "sha256-string": (None, lambda m: m.update(sha256="abc"), "'sha256'"),
    "sha256-wrong": (None, lambda m: m.update(sha256={"model.safetensors": _DIGEST}), "SHA-256"),
    "encoder-string": (None, lambda m: m.update(encoder="no"), "'encoder'"),
    "format-version": (None, lambda m: m.update(format_version=2), "format"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_damaged_config_json_is_refused(model_dir, tmp_path, case):
    text, edit, match = CONFIG_CASES[case]
    d = _copy_model(model_dir, tmp_path / "m")
    path = d / "config.json"
    if callable(text):
        path.write_text(text(path.read_text()))
    elif isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    if edit is not None:
        _edit_config(d, edit)
    with pytest.raises(RtganError, match=match) as e:
        load(d)
    assert isinstance(e.value, (CheckpointError, ConfigError))
    assert "config.json" in str(e.value) or "model.safetensors does not match" in str(e.value)


def _weights_cases(model_dir):
    good = (model_dir / "model.safetensors").read_bytes()
    state = load(model_dir).state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    return {
        "truncated": (good[: len(good) // 2], "unreadable safetensors"),
        "header-only": (good[:8], "unreadable safetensors"),
        "empty": (b"", "unreadable safetensors"),
        "torch-pickle": (_torch_bytes(state), "unreadable safetensors"),
        "zip": (_zip_bytes(), "unreadable safetensors"),
        "json": (b'{"a": 1}', "unreadable safetensors"),
        "huge-header": ((2**62).to_bytes(8, "little") + b"{}", "unreadable safetensors"),
        "int-weights": ({**state, first: state[first].to(torch.int32)}, "wrong dtype"),
        "complex-weights": ({**state, first: state[first].to(torch.complex64)}, "wrong dtype"),
        "nan-weights": ({**state, first: torch.full_like(state[first], float("nan"))}, "NaN"),
        "missing-key": ({k: v for k, v in state.items() if k != first}, "missing"),
        "extra-key": ({**state, "extra.weight": torch.zeros(1)}, "unexpected"),
        "wrong-shape": ({**state, first: torch.zeros(3)}, "shape mismatch"),
    }


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not a checkpoint")
        z.writestr("data.pkl", b"\x80\x02}q\x00.")
    return buf.getvalue()


@pytest.mark.parametrize(
    "case",
    "truncated header-only empty torch-pickle zip json huge-header int-weights complex-weights nan-weights "
    "missing-key extra-key wrong-shape".split(),
)
def test_damaged_safetensors_is_refused(model_dir, tmp_path, case):
    content, match = _weights_cases(model_dir)[case]
    d = _copy_model(model_dir, tmp_path / "m")
    if isinstance(content, bytes):
        (d / "model.safetensors").write_bytes(content)
    else:
        _safetensors({k: v.contiguous() for k, v in content.items()}, d)
    with pytest.raises(CheckpointError, match="SHA-256"):  # the recorded digest catches every change
        load(d)
    _edit_config(d, _unhashed)  # and without it, the file itself is checked
    with pytest.raises(CheckpointError, match=match):
        load(d)


@st.composite
def byte_damage(draw, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert"]))
    i = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        return data[:i]
    if kind == "flip":
        out = bytearray(data)
        out[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    if kind == "overwrite":
        chunk = draw(st.binary(min_size=1, max_size=16))
        return data[:i] + chunk + data[i + len(chunk) :]
    return data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]


def _near_header(n: int):
    # most damage in the first bytes, where the formats keep their headers and structure
    return st.integers(0, min(n - 1, 2048))


def _check_model(model):
    assert isinstance(model, torch.nn.Module) and not model.training


@FAST
@given(data=st.data())
def test_load_on_damaged_files(model_dir, tmp_path_factory, data):
    d = _copy_model(model_dir, tmp_path_factory.getbasetemp() / "damaged-model")
    target = data.draw(st.sampled_from(["config.json", "model.safetensors"]), label="file")
    raw = (d / target).read_bytes()
    head = data.draw(st.booleans(), label="near the header")
    damaged = data.draw(byte_damage(raw[:4096] if head else raw), label="damage")
    (d / target).write_bytes(damaged + (raw[4096:] if head else b""))
    if target == "model.safetensors" and data.draw(st.booleans(), label="drop the digest"):
        _edit_config(d, _unhashed)
    result = typed_or(load, d)
    if not isinstance(result, RtganError):
        _check_model(result)


_option_values = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 40), st.floats(-2, 1e3), st.text(max_size=12),
    st.lists(st.integers(-1, 300), max_size=6), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip


@FAST
@given(data=st.data())
def test_load_on_mutated_config_fields(model_dir, tmp_path_factory, data):
    d = _copy_model(model_dir, tmp_path_factory.getbasetemp() / "mutated-model")
    meta = json.loads((d / "config.json").read_text())
    where = data.draw(st.sampled_from(["top", "config"]), label="where")
    table = meta if where == "top" else meta["config"]
    key = data.draw(st.sampled_from(sorted(table) + ["new"]), label="key")
    if data.draw(st.booleans(), label="delete"):
        table.pop(key, None)
    else:
        table[key] = data.draw(_option_values, label="value")
    (d / "config.json").write_text(json.dumps(meta))
    result = typed_or(load, d)
    if not isinstance(result, RtganError):
        _check_model(result)


# --------------------------------------------------------------------------------------------
# 2. load_official on hostile .pth files

P2P = VARIANTS["p2phd-global"][1]


@pytest.fixture(scope="module")
def official_pth(tmp_path_factory) -> Path:
    model, _ = make("p2phd-global")
    path = tmp_path_factory.mktemp("official") / "latest_net_G.pth"
    torch.save(model.state_dict(), path)
    return path


class _WritesMarker:
    """Unpickling this runs code: open(marker, 'w') creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
@pytest.mark.parametrize("force_unsafe_env", [False, True], ids=["", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"])
def test_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch, legacy, force_unsafe_env):
    if force_unsafe_env:  # the variable only changes torch.load calls that do not pass weights_only
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pth"
    payload = {"model.1.weight": torch.zeros(1), "x": _WritesMarker(marker)}
    if legacy:
        with open(evil, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    else:
        torch.save(payload, evil)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused|not a readable"):
        load_official("pix2pixhd", evil, **P2P)
    assert not marker.exists(), "code from the checkpoint ran"


def _official_cases(good: bytes, state: dict) -> dict:
    first = next(iter(state))
    return {
        "truncated": (good[: len(good) // 2], "truncated or corrupted"),
        "truncated-tail": (good[:-10], "truncated or corrupted"),
        "empty": (b"", "truncated or corrupted"),
        "random-bytes": (bytes(range(256)) * 4, "truncated or corrupted|refused"),
        "zip-not-torch": (_zip_bytes(), "truncated or corrupted|refused"),
        "text": (b"hello, this is not a checkpoint\n", "truncated or corrupted|refused"),
        "state_dict-int": ({"state_dict": 5}, "'state_dict' entry holds a int"),
        "state_dict-of-ints": ({"state_dict": {"a": 5}}, "entry 'a' holds a int"),
        "dict-of-str": ({first: "weights"}, f"entry '{first}' holds a str"),
        "int-keys": ({1: torch.zeros(1)}, "int key"),
        "list": ([torch.zeros(1)], "state dict of tensors"),
        "tensor": (torch.zeros(3), "state dict of tensors"),
        "none": (None, "state dict of tensors"),
        "empty-dict": ({}, "missing from the checkpoint"),
        "int-weights": ({**state, first: state[first].to(torch.int64)}, "wrong dtype"),
        "bool-weights": ({**state, first: state[first] > 0}, "wrong dtype"),
        "complex-weights": ({**state, first: state[first].to(torch.complex64)}, "wrong dtype"),
        "half-weights-ok": ({**state, first: state[first].half()}, None),
        "nan-weights": ({**state, first: torch.full_like(state[first], float("inf"))}, "NaN or infinite"),
        "sparse": ({**state, first: state[first].to_sparse()}, "dense"),
        "wrapped-ok": ({"state_dict": state, "epoch": 3}, None),
        "dataparallel-ok": ({f"module.{k}": v for k, v in state.items()}, None),
    }


_OFFICIAL = (
    "truncated truncated-tail empty random-bytes zip-not-torch text state_dict-int state_dict-of-ints dict-of-str "
    "int-keys list tensor none empty-dict int-weights bool-weights complex-weights half-weights-ok nan-weights "
    "sparse wrapped-ok dataparallel-ok"
).split()


@pytest.mark.parametrize("case", _OFFICIAL)
def test_load_official_on_hostile_files(official_pth, tmp_path, case):
    state = torch.load(official_pth, weights_only=True)
    content, match = _official_cases(official_pth.read_bytes(), state)[case]
    path = tmp_path / "latest_net_G.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    if match is None:
        _check_model(load_official("pix2pixhd", path, **P2P))
        return
    with pytest.raises(CheckpointError, match=match):
        load_official("pix2pixhd", path, **P2P)


def test_load_official_on_a_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_official("pix2pixhd", tmp_path, **P2P)


@FAST
@given(data=st.data())
def test_load_official_on_damaged_files(official_pth, tmp_path_factory, data):
    raw = official_pth.read_bytes()
    path = tmp_path_factory.getbasetemp() / "damaged.pth"
    if data.draw(st.booleans(), label="near the header"):
        i = data.draw(_near_header(len(raw)), label="at")
        damaged = data.draw(byte_damage(raw[: i + 64]), label="damage") + raw[i + 64 :]
    else:
        damaged = data.draw(byte_damage(raw), label="damage")
    path.write_bytes(damaged)
    result = typed_or(load_official, "pix2pixhd", path, **P2P)
    if not isinstance(result, RtganError):
        _check_model(result)
