"""Export -> Engine.load -> run, against the PyTorch reference; artifacts, cache and failure modes."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rtgan import Engine, InputError
from rtgan.engine import ArtifactError
from rtgan.export import export, psnr, reference_image, sample_feeds

from helpers import VARIANTS, make

pytest.importorskip("onnxruntime")
EXPORTABLE = [v for v in VARIANTS if v != "p2phd-global-batch-feat"]


def _run(engine, feeds):
    return engine.run(feeds["labels"], feeds.get("instance"), feeds.get("z"))


@pytest.mark.parametrize("variant", EXPORTABLE)
def test_cpu_backends_match_reference(variant, tmp_path):
    model, (h, w) = make(variant)
    feeds = ref = None
    for backend in ("onnxruntime", "openvino"):
        out = export(model, height=h, width=w, backend=backend, out=tmp_path / backend, progress=False)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["fidelity"]["psnr_db_onnxruntime"] >= 60
        if feeds is None:
            feeds = sample_feeds(manifest, batch=2, seed=7)
            ref = reference_image(model, feeds)
        engine = Engine.load(out, backend=backend)
        got = _run(engine, feeds)
        assert got.dtype == np.uint8 and got.shape == (2, h, w, 3)
        assert psnr(got, ref) >= 60, f"{backend}: {psnr(got, ref):.1f} dB"
    # full precision on any CPU (bf16-capable ones would otherwise lower it silently)
    assert "float32" in str(engine.backend.model.get_property("INFERENCE_PRECISION_HINT"))


def test_torch_backend_is_the_reference(tmp_path):
    model, (h, w) = make("spade-vae")
    out = export(model, height=h, width=w, backend="torch", out=tmp_path / "t", progress=False)
    engine = Engine.load(out, backend="torch")
    feeds = sample_feeds(engine.manifest, batch=1)
    assert np.array_equal(_run(engine, feeds), reference_image(model, feeds))
    single = engine.run(feeds["labels"][0], z=feeds["z"][0])
    assert single.shape == (h, w, 3)


@pytest.mark.parametrize("variant", ["spade-vae", "asap-tile16"])
def test_torch_backend_kernel_graph_equals_the_reference(variant, tmp_path):
    # the torch backend's CUDA path (fused ops) on the CPU, where the ops run their references
    from rtgan.engine.torch_backend import TorchBackend

    model, (h, w) = make(variant)
    out = export(model, height=h, width=w, backend="torch", out=tmp_path / "t", progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    fused = TorchBackend(out, manifest, device="cpu", kernels=True)
    assert fused.kernels and TorchBackend(out, manifest, device="cpu").graph is None  # CPU default: the model
    feeds = sample_feeds(manifest, batch=2, seed=3)
    got, ref = fused.infer(feeds), reference_image(model, feeds)
    assert got.dtype == np.uint8 and got.shape == ref.shape
    diff = np.abs(got.astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_cache_reuse_and_force(tmp_path):
    model, (h, w) = make("asap-tile16")
    a = export(model, height=h, width=w, out=tmp_path / "c", progress=False)
    stamp = (a / "manifest.json").stat().st_mtime_ns
    assert export(model, height=h, width=w, out=tmp_path / "c", progress=False) == a
    assert (a / "manifest.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    export(model, height=h, width=w, out=tmp_path / "c", progress=False, force=True)
    assert (a / "manifest.json").stat().st_mtime_ns != stamp
    other, _ = make("asap-tile16")
    with __import__("torch").no_grad():
        next(other.parameters()).add_(1e-3)
    key = json.loads((a / "manifest.json").read_text())["cache_key"]
    export(other, height=h, width=w, out=tmp_path / "c", progress=False)
    assert json.loads((a / "manifest.json").read_text())["cache_key"] != key  # new weights, new artifact


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    model, (h, w) = make("p2phd-global")
    return export(model, height=h, width=w, backend="openvino", out=tmp_path_factory.mktemp("x") / "p", progress=False)


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_corrupted_files_are_refused(artifact, tmp_path):
    assert "model.onnx" not in json.loads((artifact / "manifest.json").read_text())["files"]  # the IR only
    for name in ("model.xml", "model.bin"):
        bad = _copy(artifact, tmp_path / name)
        data = bytearray((bad / name).read_bytes())
        data[len(data) // 2] ^= 0x55
        (bad / name).write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match=f"{name}: SHA-256 does not match"):
            Engine.load(bad)
    bad = _copy(artifact, tmp_path / "manifest")
    (bad / "manifest.json").write_text('{"format": "rtgan-engine", ')
    with pytest.raises(ArtifactError, match="corrupted JSON"):
        Engine.load(bad)
    bad = _copy(artifact, tmp_path / "missing")
    (bad / "model.xml").unlink()
    with pytest.raises(ArtifactError, match="model.xml listed in the manifest is missing"):
        Engine.load(bad)


def test_mismatched_manifest_is_refused(artifact, tmp_path):
    bad = _copy(artifact, tmp_path / "newer")
    m = json.loads((bad / "manifest.json").read_text())
    m["libraries"]["openvino"] = "9999.0.0"
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="OpenVINO 9999.0.0"):
        Engine.load(bad, backend="openvino")
    with pytest.raises(ArtifactError, match="exported for 'openvino'.*not 'torch'"):
        Engine.load(artifact, backend="torch")
    m["format_version"] = 99
    (bad / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="re-export"):
        Engine.load(bad)


def test_killed_export_leaves_no_artifact(tmp_path):
    """SIGKILL in the middle of writing the ONNX file: the artifact path never appears half-written."""
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parents[1])!r})
        from helpers import make
        import rtgan.export.onnx as onnx_export
        def dying(graph, path, **kw):
            open(path, "wb").write(b"partial")
            os.kill(os.getpid(), signal.SIGKILL)
        onnx_export.export_onnx = dying
        from rtgan.export import export
        model, (h, w) = make("p2phd-global")
        export(model, height=h, width=w, out={str(out)!r}, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    assert not out.exists()
    with pytest.raises(ArtifactError, match="interrupted export"):
        Engine.load(out)


def test_engine_input_errors(artifact):
    engine = Engine.load(artifact)
    h, w = engine.height, engine.width
    ok = np.zeros((h, w), np.int64)
    with pytest.raises(InputError, match="integer ids"):
        engine.run(ok.astype(np.float32))
    with pytest.raises(InputError, match=f"H, W = {h}, {w}"):
        engine.run(np.zeros((h + 1, w), np.int64))
    with pytest.raises(InputError, match=f"label id {engine.num_classes} is out of range"):
        engine.run(ok + engine.num_classes)
    with pytest.raises(InputError, match="no latent"):
        engine.run(ok, z=np.zeros(8))
    assert engine.run(ok).shape == (h, w, 3)  # the instance map defaults to the label map


def test_cli(tmp_path, capsys):
    from rtgan.export.__main__ import main

    assert (
        main(
            [
                "--preset",
                "asapnet-cityscapes",
                "--set",
                "lr_max_width=16",
                "--set",
                "lr_depth=1",
                "--height",
                "32",
                "--width",
                "64",
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    assert Engine.load(tmp_path / "cli").run(np.zeros((32, 64), np.uint8)).shape == (32, 64, 3)
    assert main(["--preset", "asapnet-cityscapes", "--height", "30", "--width", "64"]) == 2
    assert "multiples of 16" in capsys.readouterr().err


def test_vae_style_image(tmp_path):
    import torch

    model, (h, w) = make("spade-vae")
    out = export(model, height=h, width=w, out=tmp_path / "vae", progress=False)
    engine = Engine.load(out, backend="onnxruntime")
    style = np.random.default_rng(3).integers(0, 256, (1, 100, 140, 3), dtype=np.uint8)
    z = engine.encode_style(style)
    with torch.no_grad():
        mu, _ = model.encode(torch.from_numpy(style).permute(0, 3, 1, 2).float() / 127.5 - 1)
    np.testing.assert_allclose(z, mu.numpy(), atol=1e-4)
    feeds = sample_feeds(engine.manifest, batch=1)
    feeds["z"] = z
    got = engine.run(feeds["labels"], feeds.get("instance"), style=style[0])
    assert psnr(got, reference_image(model, feeds)) >= 60
    with pytest.raises(InputError, match="not both"):
        engine.run(feeds["labels"], z=z, style=style)
    with pytest.raises(InputError, match="uint8 RGB"):
        engine.run(feeds["labels"], style=style.astype(np.float32))
