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


def _feeds(name: str) -> dict[str, np.ndarray]:
    """A landscape label map, and a fixed z for a model that takes one (the engine would draw its own);
    a sketch for an image-to-image model."""
    from rtgan.data import landscapes

    manifest = json.loads((weights.path(name) / "engine" / "manifest.json").read_text())
    if [i["name"] for i in manifest["inputs"]] == ["source"]:  # the sketch model: a drawing of a scene
        from rtgan.data import sketches

        return {"source": sketches.render(5, 256, 256)[0][None]}
    feeds = {"labels": landscapes.layout(5, 256, 256)[None].astype(np.int32)}
    if manifest.get("z_dim"):
        feeds["z"] = np.random.default_rng(0).standard_normal((1, manifest["z_dim"])).astype(np.float32)
    return feeds


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_engines_paint_without_torch(name, tmp_path):
    from rtgan import models
    from rtgan.export import psnr, reference_image

    feeds = _feeds(name)
    ref = reference_image(models.load(weights.path(name)), feeds)
    np.savez(tmp_path / "feeds.npz", **feeds)
    r = _blocked(
        f"""
        import numpy as np
        from rtgan import Engine, weights
        feeds = dict(np.load({str(tmp_path / "feeds.npz")!r}))
        for backend in ("onnxruntime", "openvino"):
            engine = Engine.load(weights.path({name!r}) / "engine", backend)
            np.save({str(tmp_path)!r} + f"/{{backend}}.npy", engine.run(**feeds))
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


def test_a_model_without_an_engine_says_it_needs_torch_once(tmp_path):
    import shutil

    model = tmp_path / "model"  # a model directory as training writes it: weights, no engine
    shutil.copytree(weights.path(weights.DEFAULT), model, ignore=shutil.ignore_patterns("engine"))
    r = _blocked(
        f"""
        from rtgan.demo.__main__ import main
        sys.exit(main(["--headless", "--frames", "2", "--model", {str(model)!r}, "--out", {str(tmp_path / "o")!r}]))
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
    fresh = export(model, height=256, width=256, out=tmp_path / "e", progress=False, compact=True)  # as shipped
    fresh = Engine.load(fresh, "onnxruntime")
    feeds = sample_feeds(shipped.manifest, batch=2, seed=3)  # z too, for a model that takes one
    assert np.array_equal(shipped.run(**feeds), fresh.run(**feeds))


def test_shipped_512_engine_is_the_shipped_weights_exported(tmp_path):
    """python -m rtgan.export --model landscape-asapnet --backend onnxruntime --size 512x512 --plugins --compact
    --out rtgan/weights/landscape-asapnet/engine-512x512 --force"""
    from rtgan import Engine, models
    from rtgan.engine.tensorrt import BackendUnavailable
    from rtgan.export import export, model_digest, sample_feeds

    name = "landscape-asapnet"
    model = models.load(weights.path(name))
    shipped = Engine.load(weights.path(name) / "engine-512x512", "onnxruntime")
    assert shipped.manifest["model_sha256"] == model_digest(model), "the weights changed since the engine was built"
    assert shipped.manifest["plugins"]["nodes"] == {"AsapPixelMlpExtra": 1, "LabelConv3x3": 1}
    fresh = export(model, height=512, width=512, out=tmp_path / "e", progress=False, compact=True, plugins=True,
                   verify=False)  # fmt: skip
    feeds = sample_feeds(shipped.manifest, batch=1, seed=3)
    assert np.array_equal(shipped.run(**feeds), Engine.load(fresh, "onnxruntime").run(**feeds))
    # the fused graph too, where the extension builds (the files' bytes may differ: names, order)
    try:
        fused = [Engine.load(d, "openvino", precision="fp32", kernels=True) for d in (shipped.directory, fresh)]
    except BackendUnavailable as e:
        pytest.skip(f"fused graph not compared: {e}")
    assert np.array_equal(fused[0].run(**feeds), fused[1].run(**feeds))
