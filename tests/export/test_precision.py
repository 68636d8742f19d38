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
    out = export(model, height=SIZE, width=SIZE, backend="openvino", precision="int8", out=tmp_path / "a",
                 progress=False)  # fmt: skip
    manifest = _check(out, model, "int8", "openvino")
    assert manifest["quantization"]["fake_quantize_ops"] > 0
    assert "FakeQuantize" in (out / "model.xml").read_text()


def test_int8_onnxruntime_quantizes_the_convolutions(model, tmp_path):
    import onnx

    out = export(model, height=SIZE, width=SIZE, backend="onnxruntime", precision="int8", out=tmp_path / "a",
                 progress=False)  # fmt: skip
    _check(out, model, "int8", "onnxruntime")
    ops = [n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops


@pytest.mark.skipif(not cpu.has_bf16(), reason="this CPU has no bf16 units")
def test_bf16_openvino_runs_in_bf16(model, tmp_path):
    out = export(model, height=SIZE, width=SIZE, backend="openvino", precision="bf16", out=tmp_path / "a",
                 progress=False)  # fmt: skip
    _check(out, model, "bf16", "openvino")
    engine = Engine.load(out, "openvino")
    assert "bfloat16" in str(engine.backend.model.get_property("INFERENCE_PRECISION_HINT"))


def test_below_the_floor_nothing_is_written(model, tmp_path):
    with pytest.raises(ConfigError, match="below the floor of 99.0 dB"):
        export(model, height=SIZE, width=SIZE, backend="onnxruntime", precision="int8", out=tmp_path / "a",
               min_psnr=99, progress=False)  # fmt: skip
    assert not (tmp_path / "a").exists()


def test_calibration_folder_of_label_pngs(model, tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    for i in range(3):
        cv2.imwrite(str(maps / f"{i}.png"), landscapes.layout(i, 128, 128).astype(np.uint8))
    out = export(model, height=SIZE, width=SIZE, backend="onnxruntime", precision="int8", out=tmp_path / "a",
                 calibration=maps, progress=False)  # fmt: skip
    assert json.loads((out / "manifest.json").read_text())["quantization"]["calibration"] == str(maps)
    cv2.imwrite(str(maps / "bad.png"), np.full((8, 8), 7, np.uint8))  # id 7: not a landscape class
    with pytest.raises(ConfigError, match="label id 7 is not one of the model's ids"):
        export(model, height=SIZE, width=SIZE, backend="onnxruntime", precision="int8", out=tmp_path / "b",
               calibration=maps, progress=False)  # fmt: skip


def test_reduced_precision_options_are_checked(model, tmp_path):
    with pytest.raises(ConfigError, match="bf16 and int8 CPU exports only"):
        export(model, height=SIZE, width=SIZE, min_psnr=40, out=tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="takes no option 'min_psnr'"):
        export(model, height=SIZE, width=SIZE, backend="tensorrt-rtx", precision="fp16", min_psnr=40,
               compute_capability="SM86", out=tmp_path / "b", progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="no bf16 convolutions"):
        export(model, height=SIZE, width=SIZE, backend="onnxruntime", precision="bf16", out=tmp_path / "c")


def test_a_cpu_without_bf16_or_vnni_is_said_so(model, tmp_path, monkeypatch):
    monkeypatch.setenv("RTGAN_CPU_FLAGS", "avx2,fma")  # an AVX2-only machine
    assert not cpu.has_bf16() and not cpu.has_int8_dot()
    with pytest.raises(ConfigError, match="no bf16 units"):
        export(model, height=SIZE, width=SIZE, backend="openvino", precision="bf16", out=tmp_path / "a")
    out = export(model, height=SIZE, width=SIZE, backend="onnxruntime", precision="int8", out=tmp_path / "b",
                 progress=False)  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["fidelity"]["cpu"]["int8_dot"] is False
    if cpu._proc_flags() and any(f in cpu._proc_flags() for f in cpu.BF16):  # a real bf16 artifact to refuse
        monkeypatch.delenv("RTGAN_CPU_FLAGS")
        bf16 = export(model, height=SIZE, width=SIZE, backend="openvino", precision="bf16", out=tmp_path / "c",
                      progress=False)  # fmt: skip
        monkeypatch.setenv("RTGAN_CPU_FLAGS", "avx2,fma")
        with pytest.raises(BackendUnavailable, match="bf16 artifact and this CPU has no bf16 units"):
            Engine.load(bf16, "openvino")


def test_int8_openvino_on_a_cpu_without_vnni_warns(model, tmp_path, monkeypatch):
    pytest.importorskip("nncf")
    out = export(model, height=SIZE, width=SIZE, backend="openvino", precision="int8", out=tmp_path / "a",
                 progress=False)  # fmt: skip
    monkeypatch.setenv("RTGAN_CPU_FLAGS", "avx2,fma")
    with pytest.warns(RuntimeWarning, match="no int8 dot-product instructions"):
        Engine.load(out, "openvino")
