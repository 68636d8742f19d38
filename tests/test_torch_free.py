"""The runtime without PyTorch: the engines the bundled models ship with open and paint on every CPU
backend, and the demo runs headless, in a process where importing torch (or rtgan's model, export
and training code) fails; and those shipped engines are the shipped weights, exported."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rtgan import weights

pytest.importorskip("onnxruntime")
SHIPPED = [n for n in weights.BUNDLED if (weights.path(n) / "engine" / "manifest.json").is_file()]

BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = ("torch", "rtgan.models", "rtgan.train", "rtgan.export.exporter", "rtgan.export.graph")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, Block())
    """
)


def _blocked(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    script = tmp_path / "probe.py"
    script.write_text(BLOCK + textwrap.dedent(code))
    env = {**os.environ, "RTGAN_CACHE": str(tmp_path / "cache"), "RTGAN_NO_CAMERA": "1", **env}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)


def test_the_default_model_ships_its_engine():
    assert weights.DEFAULT in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_engines_paint_without_torch(name, tmp_path):
    from rtgan import models
    from rtgan.data import landscapes
    from rtgan.export import psnr, reference_image

    labels = landscapes.layout(5, 256, 256)[None].astype(np.int32)
    ref = reference_image(models.load(weights.path(name)), {"labels": labels})
    np.save(tmp_path / "labels.npy", labels)
    r = _blocked(
        f"""
        import numpy as np
        from rtgan import Engine, weights
        labels = np.load({str(tmp_path / "labels.npy")!r})
        for backend in ("onnxruntime", "openvino"):
            engine = Engine.load(weights.path({name!r}) / "engine", backend)
            np.save({str(tmp_path)!r} + f"/{{backend}}.npy", engine.run(labels))
        assert "torch" not in sys.modules
        print("ok")
        """,
        tmp_path,
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]
    for backend in ("onnxruntime", "openvino"):
        got = np.load(tmp_path / f"{backend}.npy")
        assert got.shape == ref.shape and psnr(got, ref) >= 60, backend


def test_demo_runs_headless_without_torch(tmp_path):
    r = _blocked(
        f"""
        from rtgan.demo.__main__ import main
        args = ["--headless", "--frames", "5", "--source", "scene", "--no-record"]
        code = main(args + ["--out", {str(tmp_path / "out")!r}])
        assert "torch" not in sys.modules
        sys.exit(code)
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "latency.json").read_text())
    assert summary["frames_shown"] == 5 and summary["model"] == weights.DEFAULT
    assert not (tmp_path / "cache" / "artifacts").exists()  # nothing was exported: the shipped engine painted


def test_a_model_without_a_shipped_engine_says_it_needs_torch_once(tmp_path):
    missing = [n for n in weights.BUNDLED if n not in SHIPPED]
    if not missing:
        pytest.skip("every bundled model ships its engine")
    r = _blocked(
        f"""
        from rtgan.demo.__main__ import main
        sys.exit(main(["--headless", "--frames", "2", "--model", {missing[0]!r}, "--out", {str(tmp_path / "o")!r}]))
        """,
        tmp_path,
    )
    assert r.returncode == 2 and "pip install 'rtgan[torch]'" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_engine_is_the_shipped_weights_exported(name, tmp_path):
    """Re-bundled weights need a re-shipped engine:
    python -m rtgan.export --model NAME --backend onnxruntime --compact --out rtgan/weights/NAME/engine --force"""
    from rtgan import Engine, models
    from rtgan.export import export, model_digest, sample_feeds

    model = models.load(weights.path(name))
    shipped = Engine.load(weights.path(name) / "engine", "onnxruntime")
    assert shipped.manifest["model_sha256"] == model_digest(model), "the weights changed since the engine was built"
    fresh = Engine.load(export(model, height=256, width=256, out=tmp_path / "e", progress=False), "onnxruntime")
    feeds = sample_feeds(shipped.manifest, batch=2, seed=3)
    assert np.array_equal(shipped.run(feeds["labels"]), fresh.run(feeds["labels"]))
