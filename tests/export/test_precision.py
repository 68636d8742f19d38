"""bf16 and int8 CPU artifacts: calibrated, measured on held-out maps, refused below their floor, and
loaded with the precision they were measured at; a CPU without bf16 / int8 units is said so."""

import json

import cv2
import numpy as np
import pytest

from rtgan import Engine, weights
from rtgan.data import landscapes
from rtgan.engine.tensorrt import BackendUnavailable
from rtgan.errors import ConfigError
from rtgan.export import export, psnr, reference_image
from rtgan.models import load
from rtgan.utils import cpu

pytest.importorskip("openvino")
SIZE = 64  # the bundled ASAPNet paints any multiple of its 16-pixel tile


@pytest.fixture(scope="module")
def model():
    return load(weights.path("landscape-asapnet"))


def _export(model, out, **options):
    return export(model, height=SIZE, width=SIZE, out=out, progress=False, **options)


def _check(out, model, precision, backend):
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == precision and manifest["backend"] == backend
    got = manifest["fidelity"][f"psnr_db_held_out_{backend}"]
    assert got >= manifest["fidelity"]["floor_db"]
    labels = landscapes.layout(4242, SIZE, SIZE)[None].astype(np.int32)  # a map none of the sets used
    image = Engine.load(out, backend).run(labels)
    assert psnr(image, reference_image(model, {"labels": labels})) >= 30
    return manifest


def test_int8_openvino_is_quantized_and_holds_its_floor(model, tmp_path):
    pytest.importorskip("nncf")
    out = _export(model, backend="openvino", precision="int8", out=tmp_path / "a")
    manifest = _check(out, model, "int8", "openvino")
    q = manifest["quantization"]
    assert q["fake_quantize_ops"] > 0 and q["recipe"] in q["validation_psnr_db"], q
    assert "FakeQuantize" in (out / "model.xml").read_text()


def test_int8_openvino_ranges_cover_every_map(tmp_path):
    """landscape-pix2pixhd's held-out layout 21 peaks past the activation ranges NNCF's default
    estimator keeps: quantized that way it is painted darker as a whole (28.7 dB, the other maps
    ~50). Export's min-max ranges on the convolution inputs hold 40 dB on every held-out map."""
    pytest.importorskip("nncf")
    model = load(weights.path("landscape-pix2pixhd"))
    out = export(model, height=256, width=256, out=tmp_path / "a", progress=False, backend="openvino",
                 precision="int8", min_psnr=40)  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    q = manifest["quantization"]
    assert q["recipe"] == "convolution inputs, min-max ranges" and not q["accuracy_control"], q
    labels = landscapes.layout(21, 256, 256)[None].astype(np.int32)
    assert psnr(Engine.load(out, "openvino").run(labels), reference_image(model, {"labels": labels})) >= 40


def test_int8_onnxruntime_quantizes_the_convolutions(model, tmp_path):
    import onnx

    out = _export(model, backend="onnxruntime", precision="int8", out=tmp_path / "a")
    _check(out, model, "int8", "onnxruntime")
    ops = [n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops


@pytest.mark.skipif(not cpu.has_bf16(), reason="this CPU has no bf16 units")
def test_bf16_openvino_runs_in_bf16(model, tmp_path):
    out = _export(model, backend="openvino", precision="bf16", out=tmp_path / "a")
    _check(out, model, "bf16", "openvino")
    engine = Engine.load(out, "openvino")
    assert "bfloat16" in str(engine.backend.model.get_property("INFERENCE_PRECISION_HINT"))


def test_below_the_floor_nothing_is_written(model, tmp_path):
    with pytest.raises(ConfigError, match="below the floor of 99.0 dB"):
        _export(model, backend="onnxruntime", precision="int8", out=tmp_path / "a", min_psnr=99)
    assert not (tmp_path / "a").exists()


def test_calibration_folder_of_label_pngs(model, tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    for i in range(3):
        cv2.imwrite(str(maps / f"{i}.png"), landscapes.layout(i, 128, 128).astype(np.uint8))
    out = _export(model, backend="onnxruntime", precision="int8", out=tmp_path / "a", calibration=maps)
    assert json.loads((out / "manifest.json").read_text())["quantization"]["calibration"] == str(maps)
    cv2.imwrite(str(maps / "bad.png"), np.full((8, 8), 7, np.uint8))  # id 7: not a landscape class
    with pytest.raises(ConfigError, match="label id 7 is not one of the model's ids"):
        _export(model, backend="onnxruntime", precision="int8", out=tmp_path / "b", calibration=maps)


def test_reduced_precision_options_are_checked(model, tmp_path):
    with pytest.raises(ConfigError, match="bf16 and int8 CPU exports only"):
        _export(model, min_psnr=40, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="takes no option 'min_psnr'"):
        _export(
            model, backend="tensorrt-rtx", precision="fp16", min_psnr=40, compute_capability="SM86", out=tmp_path / "b"
        )
    with pytest.raises(ConfigError, match="no bf16 convolutions"):
        _export(model, backend="onnxruntime", precision="bf16", out=tmp_path / "c")


def test_a_cpu_without_bf16_or_vnni_is_said_so(model, tmp_path, monkeypatch):
    monkeypatch.setenv("RTGAN_CPU_FLAGS", "avx2,fma")  # an AVX2-only machine
    assert not cpu.has_bf16() and not cpu.has_int8_dot()
    with pytest.raises(ConfigError, match="no bf16 units"):
        _export(model, backend="openvino", precision="bf16", out=tmp_path / "a")
    out = _export(model, backend="onnxruntime", precision="int8", out=tmp_path / "b")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fidelity"]["cpu"]["int8_dot"] is False
    if cpu._proc_flags() and any(f in cpu._proc_flags() for f in cpu.BF16):  # a real bf16 artifact to refuse
        monkeypatch.delenv("RTGAN_CPU_FLAGS")
        bf16 = _export(model, backend="openvino", precision="bf16", out=tmp_path / "c")
        monkeypatch.setenv("RTGAN_CPU_FLAGS", "avx2,fma")
        with pytest.raises(BackendUnavailable, match="bf16 artifact and this CPU has no bf16 units"):
            Engine.load(bf16, "openvino")


def test_int8_openvino_on_a_cpu_without_vnni_warns(model, tmp_path, monkeypatch):
    pytest.importorskip("nncf")
    out = _export(model, backend="openvino", precision="int8", out=tmp_path / "a")
    monkeypatch.setenv("RTGAN_CPU_FLAGS", "avx2,fma")
    with pytest.warns(RuntimeWarning, match="no int8 dot-product instructions"):
        Engine.load(out, "openvino")


# --- precision="auto": an fp32 artifact runs in bf16 where export measured it faster and faithful


def _manifest(psnr_db=58.0, speedup=1.4, precision="fp32"):
    return {"precision": precision, "bf16": {"psnr_db_openvino": psnr_db, "speedup_openvino": speedup}}


@pytest.mark.parametrize(
    "flags,manifest,backend,want,why",
    [
        ("avx512f,avx512_bf16", _manifest(), "openvino", "bf16", "holds 58.0 dB"),
        ("avx2,fma", _manifest(), "openvino", "fp32", "no bf16 units"),
        ("amx_bf16", _manifest(psnr_db=40.0), "openvino", "fp32", "bf16 measured 40.0 dB"),
        ("amx_bf16", _manifest(speedup=1.01), "openvino", "fp32", "only 1.01x"),
        ("amx_bf16", {"precision": "fp32"}, "openvino", "fp32", "no bf16 measurement"),
        ("amx_bf16", _manifest(), "onnxruntime", "fp32", "only OpenVINO"),
        ("amx_bf16", _manifest(precision="int8"), "openvino", "int8", "artifact's precision"),
    ],
)
def test_auto_precision_choice(flags, manifest, backend, want, why, monkeypatch):
    from rtgan.engine.precision import choose

    monkeypatch.setenv("RTGAN_CPU_FLAGS", flags)
    got, reason = choose(manifest, backend, "auto")
    assert got == want and why in reason


def test_asking_for_a_precision_that_cannot_be_had_says_why(monkeypatch):
    from rtgan.engine.precision import choose

    monkeypatch.setenv("RTGAN_CPU_FLAGS", "avx2")
    with pytest.raises(ConfigError, match="no bf16 units"):
        choose(_manifest(), "openvino", "bf16")
    with pytest.raises(ConfigError, match="bf16 runs on OpenVINO only"):
        choose(_manifest(), "onnxruntime", "bf16")
    with pytest.raises(ConfigError, match="fp32 artifact cannot run at int8"):
        choose(_manifest(), "openvino", "int8")
    with pytest.raises(ConfigError, match="precision must be one of"):
        choose(_manifest(), "openvino", "fp8")
    assert choose(_manifest(precision="bf16"), "openvino", "fp32")[0] == "fp32"


def test_the_shipped_engine_runs_in_bf16_where_it_pays(monkeypatch):
    shipped = weights.path(weights.DEFAULT) / "engine"
    manifest = json.loads((shipped / "manifest.json").read_text())
    assert manifest["bf16"]["psnr_db_openvino"] >= 45  # measured when it was exported
    labels = landscapes.layout(7, 256, 256)[None].astype(np.int32)
    exact = Engine.load(shipped, "openvino").run(labels)
    monkeypatch.setenv("RTGAN_CPU_FLAGS", "avx2,fma")
    engine = Engine.load(shipped, "openvino", precision="auto")
    assert engine.precision == "fp32" and "no bf16 units" in engine.precision_reason
    assert np.array_equal(engine.run(labels), exact)
    if cpu._proc_flags() & set(cpu.BF16) and manifest["bf16"]["speedup_openvino"] >= 1.05:
        monkeypatch.delenv("RTGAN_CPU_FLAGS")
        engine = Engine.load(shipped, "openvino", precision="auto")
        assert engine.precision == "bf16"
        assert "bfloat16" in str(engine.backend.model.get_property("INFERENCE_PRECISION_HINT"))
        assert psnr(engine.run(labels), exact) >= 45


@pytest.mark.skipif(not cpu.has_bf16(), reason="this CPU has no bf16 units")
def test_fp32_exports_record_their_bf16_measurement(model, tmp_path):
    out = _export(model, backend="openvino", out=tmp_path / "a")
    measured = json.loads((out / "manifest.json").read_text())["bf16"]
    assert measured["psnr_db_openvino"] >= 45 and measured["speedup_openvino"] > 0 and measured["cpu"]["bf16"]


@pytest.mark.parametrize("entry", ["x", [], {"psnr_db_openvino": "58", "speedup_openvino": 2}, None])
def test_a_malformed_bf16_entry_is_as_if_unmeasured(entry, monkeypatch):
    from rtgan.engine.precision import choose

    monkeypatch.setenv("RTGAN_CPU_FLAGS", "amx_bf16")
    assert choose({"precision": "fp32", "bf16": entry}, "openvino", "auto") == (
        "fp32",
        "no bf16 measurement recorded (floor 45.0 dB)",
    )
