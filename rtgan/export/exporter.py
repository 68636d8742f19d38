"""The export implementation behind `rtgan.export(...)` (the package docstring describes it); needs PyTorch."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..engine.contract import (
    CACHE_ROOT,
    MANIFEST,
    MANIFEST_FORMAT,
    MANIFEST_VERSION,
    ONNX_FILE,
    OUTPUT,
    STYLE_FILE,
)
from ..engine.manifest import ArtifactError, check_export_target, installed_version, read_manifest, sha256_file
from ..errors import ConfigError
from ..formats import check_can_export, check_options, get_format
from ..utils.atomic import atomic_dir
from .graph import inference_graph
from .rewrite import DEFAULT, Rewrites, to_uint8

CACHE = CACHE_ROOT / "artifacts"
PLUGIN_ONNX_FILE = "model.plugins.onnx"
PLUGIN_XML_FILE = "model.plugins.xml"  # a bf16 artifact's plugin graph: an IR, for its float32 marks


def _arch(model: nn.Module) -> str:
    """The family name: the config's, or a user's own module's class name."""
    return getattr(getattr(model, "config", None), "arch", None) or type(model).__name__


def _config_dict(model: nn.Module) -> dict:
    config = getattr(model, "config", None)
    return config.to_dict() if hasattr(config, "to_dict") else {}


def model_digest(model: nn.Module) -> str:
    """SHA-256 of the architecture config and every tensor of the state dict."""
    h = hashlib.sha256(json.dumps({"arch": _arch(model), **_config_dict(model)}, sort_keys=True, default=str).encode())
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def reference_image(model: nn.Module, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The PyTorch reference on contract inputs: prepare + forward + the graphs' uint8 conversion."""
    dev = next(model.parameters()).device
    t = {k: torch.from_numpy(v).to(dev) for k, v in feeds.items()}
    with torch.inference_mode():
        return to_uint8(model(*model.prepare_inputs(**t))).cpu().numpy()


def signature_feeds(signature, height: int, width: int, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of every kind a signature declares (the engine's own sampling for latents)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for i in signature.inputs:
        if i.kind in ("labels", "class"):
            ids = np.asarray(i.ids if i.ids is not None else range(i.classes), np.int32)
            shape = (batch, height, width) if i.kind == "labels" else (batch,)
            feeds[i.name] = ids[rng.integers(0, len(ids), shape)]
        elif i.kind == "instance":
            feeds[i.name] = rng.integers(0, 4, (batch, height, width), dtype=np.int32)
        elif i.kind == "image":
            feeds[i.name] = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
        elif i.kind == "latent":
            feeds[i.name] = rng.standard_normal((batch, i.size)).astype(np.float32)
        elif i.kind == "styles":
            feeds[i.name] = rng.uniform(-1, 1, (batch, i.classes, i.size)).astype(np.float32)
        elif i.kind == "latents":
            feeds[i.name] = rng.standard_normal((batch, i.classes, i.size)).astype(np.float32)
        elif i.kind == "scalar":  # the default: what the engine feeds when the input is not given
            feeds[i.name] = np.full(batch, i.default, np.float32)
        elif i.kind == "regions":  # blocky regions (8x8 cells), every id in play
            cells = rng.integers(0, i.classes, (batch, -(-height // 8), -(-width // 8)), dtype=np.int32)
            feeds[i.name] = np.ascontiguousarray(cells.repeat(8, 1).repeat(8, 2)[:, :height, :width])
        else:  # codes
            feeds[i.name] = rng.uniform(-1, 1, (batch, i.size)).astype(np.float32)
    return feeds


def model_feeds(model: nn.Module, height: int, width: int, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """`sample_feeds` for a model that has not been exported: the inputs its graph would take."""
    signature = model.signature()
    if signature.input("labels") is None:
        return signature_feeds(signature, height, width, batch, seed)
    labels, z = signature.input("labels"), signature.input("z")
    spec = {
        "height": height,
        "width": width,
        "num_classes": labels.classes,
        "label_ids": list(labels.ids) if labels.ids is not None else None,
        "z_dim": z.size if z is not None else None,
        "inputs": [{"name": i.name} for i in signature.inputs],
        "signature": signature.to_dict(),
    }
    return sample_feeds(spec, batch=batch, seed=seed)


def sample_feeds(manifest: dict[str, Any], batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Blocky random inputs that follow an artifact's input spec, for verification and benchmarks."""
    m = manifest
    if "labels" not in [i["name"] for i in m["inputs"]]:  # a generator declared by its signature alone
        from ..signature import Signature

        return signature_feeds(Signature.from_dict(m["signature"]), m["height"], m["width"], batch, seed)
    rng = np.random.default_rng(seed)
    h, w, n = m["height"], m["width"], m["num_classes"]
    coarse = rng.integers(0, n, (batch, -(-h // 8), -(-w // 8)), dtype=np.int32)
    labels = np.ascontiguousarray(coarse.repeat(8, 1).repeat(8, 2)[:, :h, :w])
    if m.get("label_ids") is not None:
        labels = np.asarray(m["label_ids"], np.int32)[labels]
    feeds = {"labels": labels}
    names = [i["name"] for i in m["inputs"]]
    if "instance" in names:
        feeds["instance"] = labels * 10 + (rng.integers(0, 2, labels.shape, dtype=np.int32) * (labels == 1))
    if "z" in names:
        feeds["z"] = rng.standard_normal((batch, m["z_dim"])).astype(np.float32)
    if m.get("signature") and set(names) - {"labels", "instance", "z"}:  # SEAN's style and noise: at random
        from ..signature import Signature

        rest = signature_feeds(Signature.from_dict(m["signature"]), h, w, batch, seed + 1)
        feeds.update({k: v for k, v in rest.items() if k not in feeds})
    return feeds


@contextlib.contextmanager
def _stages(enabled: bool) -> Iterator:
    """A rich progress display with one line per stage (plain lines without rich)."""
    try:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    except ImportError:
        Progress = None

    if not enabled or Progress is None:

        @contextlib.contextmanager
        def stage(name):
            t = time.perf_counter()
            yield
            if enabled:
                print(f"  {name}: {time.perf_counter() - t:.1f} s")

        yield stage
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=False) as bar:

        @contextlib.contextmanager
        def stage(name):
            task = bar.add_task(name, total=1)
            yield
            bar.update(task, completed=1, description=f"[green]✓[/green] {name}")

        yield stage


def _cache_key(digest: str, fields: dict) -> str:
    return hashlib.sha256(json.dumps({"model": digest, **fields}, sort_keys=True).encode()).hexdigest()


def export(
    model: nn.Module,
    *,
    height: int,
    width: int,
    backend: str = "onnxruntime",
    precision: str = "fp32",
    out: str | os.PathLike | None = None,
    rewrites: Rewrites = DEFAULT,
    compute_capability: str | None = None,
    max_batch: int | None = None,
    force: bool = False,
    progress: bool = True,
    verify: bool = True,
    plugins: bool = False,
    compact: bool = False,
    min_psnr: float | None = None,
    calibration: str | os.PathLike | None = None,
) -> Path:
    """Export `model` for `backend` at a fixed height x width; returns the artifact directory.

    `compact=True` stores the ONNX weights that fp16 holds exactly as fp16 (cast back in the graph:
    the same fp32 computation in about half the file; how the bundled models ship their engines).
    `precision='bf16' | 'int8'` (CPU backends, `quantize`): calibrated on `calibration` (a folder of
    label-id PNGs) or the model's own label space, measured on held-out maps against the fp32
    PyTorch reference, refused below `min_psnr` dB (default: bf16 45, int8 30).
    """
    fmt = get_format(backend)
    given = {"compute_capability": compute_capability, "max_batch": max_batch, "min_psnr": min_psnr,
             "calibration": calibration}  # fmt: skip
    check_options(fmt, {k: v for k, v in given.items() if v is not None})
    max_batch = 4 if max_batch is None else max_batch  # a plan's profile; ONNX graphs take any batch
    if plugins and precision != "fp32" and not (precision == "bf16" and fmt.backend == "openvino"):
        raise ConfigError("plugin graphs are exported in fp32 only (and bf16 on openvino): "
                          "the fp16 and int8 conversions do not know plugin nodes")  # fmt: skip
    check_can_export(fmt, precision, verify=verify, compute_capability=compute_capability)
    reduced = precision in ("bf16", "int8") and fmt.cpu
    if (min_psnr is not None or calibration is not None) and not reduced:
        raise ConfigError("min_psnr and calibration apply to bf16 and int8 CPU exports only")
    if calibration is not None and not Path(calibration).is_dir():
        raise ConfigError(f"calibration {calibration}: no such folder (a folder of label-id PNGs)")
    if out is not None:
        check_export_target(out)
    if not hasattr(model, "signature"):
        raise ConfigError(f"{type(model).__name__} declares no signature(): rtgan.export cannot know its inputs")
    signature = model.signature()
    (getattr(getattr(model, "config", None), "check_size", None) or signature.check_size)(height, width)
    model = model.eval()
    if compact:  # W / sigma is not fp16-exact where W is: the runtime folds spectral norm when it loads the file
        rewrites = dataclasses.replace(rewrites, fold_spectral=False)
    digest = model_digest(model)
    region_inputs = getattr(model, "style_encoder_inputs", lambda: None)()  # SEAN's codes engines
    # graphs whose inputs grew (StyleGAN's truncation, OASIS's noise regions) or that gained a style encoder:
    # keyed apart from the artifacts cached before them (other keys stay valid)
    grown = region_inputs or any(i.kind in ("scalar", "regions", "latents") for i in signature.inputs)
    libs = {"rtgan": __version__, "torch": torch.__version__, "onnx": installed_version("onnx")}
    if fmt.backend in ("onnxruntime", "openvino", "tensorrt", "tensorrt-rtx"):
        libs[fmt.backend] = installed_version(fmt.backend)
    key_fields = dict(
        height=height,
        width=width,
        backend=fmt.backend,
        precision=precision,
        max_batch=max_batch,
        rewrites=dataclasses.asdict(rewrites),
        compute_capability=compute_capability,
        libraries=libs,
        plugins=plugins,
        **({"compact": True} if compact else {}),  # absent when off: earlier cache keys stay valid
        **({"signature": signature.to_dict(), "style_encoder": bool(region_inputs)} if grown else {}),
        **({"min_psnr": min_psnr, "calibration": str(calibration)} if reduced else {}),
    )
    key = _cache_key(digest, key_fields)
    c = getattr(model, "config", None)
    arch = _arch(model)
    out = Path(out) if out is not None else CACHE / f"{arch}-{height}x{width}-{fmt.backend}-{precision}-{key[:12]}"
    if not force and (out / MANIFEST).is_file():
        with contextlib.suppress(ArtifactError):
            if read_manifest(out).get("cache_key") == key:
                return out

    started = time.perf_counter()
    with _stages(progress) as stage, atomic_dir(out) as tmp:
        with stage("rewrite the model for inference"):
            graph = inference_graph(model, height, width, rewrites)
        inputs = _input_specs(graph, signature, height, width)
        z = signature.input("z")
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "format_version": MANIFEST_VERSION,
            "cache_key": key,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "arch": arch,
            "config": _config_dict(model),
            "model_sha256": digest,
            "num_classes": _num_classes(signature, c),
            "label_ids": list(c.label_ids) if getattr(c, "label_ids", None) is not None else None,
            "class_names": _class_names(c),
            "z_dim": z.size if z is not None else None,
            "signature": signature.to_dict(),
            "height": height,
            "width": width,
            "max_batch": max_batch,
            "inputs": inputs,
            "output": {"name": OUTPUT, "dtype": "uint8", "shape": ["batch", height, width, signature.channels]},
            "backend": fmt.backend,
            "precision": precision,
            "rewrites": dataclasses.asdict(rewrites),
            "libraries": libs,
            "target": {"device": "cpu" if fmt.cpu and not fmt.gpu else "any"},
        }
        with stage(f"export ONNX (opset 18, {len(graph.input_names())} inputs)"):
            from .onnx import export_onnx, to_fp16

            export_onnx(graph, tmp / ONNX_FILE, fold_constants=not compact)
            image_in = any(i["dtype"] == "uint8" for i in inputs)
            if image_in and fmt.backend in ("tensorrt", "tensorrt-rtx"):  # TensorRT takes uint8 into a Cast only
                from .onnx import cast_uint8_inputs_first

                cast_uint8_inputs_first(tmp / ONNX_FILE, tmp / ONNX_FILE)
            if precision == "fp16":
                to_fp16(tmp / ONNX_FILE, tmp / ONNX_FILE)
            elif compact:
                from .onnx import store_exact_fp16

                manifest["storage"] = {"exact_fp16_weights": True, **store_exact_fp16(tmp / ONNX_FILE, tmp / ONNX_FILE)}
        if plugins:
            with stage("export the plugin-node ONNX"):
                from ..kernels.plugins import NAMESPACE
                from .plugins import export_plugin_onnx, plugin_nodes

                if fmt.cpu and arch == "oasis":  # its CPU kernel is the label conv: the standard graph, ids-form
                    from .conditioning import read_label_ids

                    kernel_graph = inference_graph(model, height, width, rewrites)
                    if not read_label_ids(kernel_graph):
                        raise ConfigError("OASIS's CPU plugin graph needs the noise split (split_noise_conv=True)")
                    export_onnx(kernel_graph, tmp / PLUGIN_ONNX_FILE, fold_constants=not compact)
                else:
                    kernel_graph = inference_graph(model, height, width, dataclasses.replace(rewrites, kernels=True))
                    export_plugin_onnx(kernel_graph, tmp / PLUGIN_ONNX_FILE)
                if image_in and fmt.backend == "tensorrt":  # the plan is built from this graph
                    from .onnx import cast_uint8_inputs_first

                    cast_uint8_inputs_first(tmp / PLUGIN_ONNX_FILE, tmp / PLUGIN_ONNX_FILE)
                if compact:
                    from .onnx import store_exact_fp16

                    store_exact_fp16(tmp / PLUGIN_ONNX_FILE, tmp / PLUGIN_ONNX_FILE)
                if fmt.cpu:  # OpenVINO runs it with rtgan's extension: one-hot convolutions as its op too
                    from .cpu_kernels import fuse_label_convs

                    fuse_label_convs(tmp / PLUGIN_ONNX_FILE)
                ops = collections.Counter(n["op_type"] for n in plugin_nodes(tmp / PLUGIN_ONNX_FILE))
                manifest["plugins"] = {"file": PLUGIN_ONNX_FILE, "namespace": NAMESPACE, "nodes": dict(ops),
                                       "in_plan": fmt.backend == "tensorrt"}  # fmt: skip
            from ..engine import openvino_ext
            from ..utils.extras import has_module

            if verify and precision == "fp32" and fmt.cpu and set(ops) <= set(openvino_ext.OPS) \
                    and has_module("openvino"):  # fmt: skip
                with stage("measure the fused CPU kernels on OpenVINO against the standard graph"):
                    manifest["plugins"]["openvino"] = _measure_cpu_kernels(model, tmp, manifest)
        if z is not None and getattr(model, "encoder", None) is not None:
            with stage("export the style encoder"):
                from .graph import StyleEncoderGraph
                from .onnx import export_style_encoder, store_exact_fp16

                export_style_encoder(StyleEncoderGraph(model, not compact), tmp / STYLE_FILE, not compact)
                if compact:
                    store_exact_fp16(tmp / STYLE_FILE, tmp / STYLE_FILE)
                manifest["style_encoder"] = {"file": STYLE_FILE, "input": "style", "output": "mu"}
        if region_inputs:
            with stage("export the per-region style encoder"):
                from .onnx import export_region_encoder, store_exact_fp16

                export_region_encoder(model, tmp / STYLE_FILE, height, width, not compact)
                if compact:
                    store_exact_fp16(tmp / STYLE_FILE, tmp / STYLE_FILE)
                manifest["style_encoder"] = {"file": STYLE_FILE, "inputs": list(region_inputs), "output": "codes"}
        if verify and precision == "fp32":
            with stage("verify ONNX Runtime against the PyTorch reference"):
                manifest["fidelity"] = _verify(model, tmp / ONNX_FILE, manifest)
        files = [ONNX_FILE] + ([STYLE_FILE] if "style_encoder" in manifest else [])
        files += [PLUGIN_ONNX_FILE] if plugins else []
        if reduced:
            from . import quantize

            floor = quantize.FLOORS[precision] if min_psnr is None else float(min_psnr)
            with stage(f"{precision}: calibrate and measure on held-out maps (floor {floor} dB)"):
                files = _reduce(model, tmp, fmt, precision, manifest, floor, calibration, files, progress)
        elif fmt.backend == "openvino":
            with stage("convert to OpenVINO IR"):
                # the IR holds the weights again: keeping the ONNX beside it would double the artifact
                files = [f for f in files if f != ONNX_FILE] + _export_openvino(tmp / ONNX_FILE, tmp / fmt.artifact)
                (tmp / ONNX_FILE).unlink()
        elif fmt.backend == "torch":
            with stage("save the PyTorch reference"):
                from ..models import save

                save(model, tmp / "model")
                files += ["model/config.json", "model/model.safetensors"]
        elif fmt.backend in ("tensorrt", "tensorrt-rtx"):
            with stage(f"build the {fmt.backend} plan"):
                from .tensorrt import build_plan

                with_plugins = plugins and fmt.backend == "tensorrt"
                meta = build_plan(
                    tmp / (PLUGIN_ONNX_FILE if with_plugins else ONNX_FILE),
                    tmp / fmt.artifact,
                    flavor=fmt.backend,
                    max_batch=max_batch,
                    compute_capability=compute_capability,
                    progress=False,
                    plugins=with_plugins,
                )
                manifest["target"] = {"device": "cuda", "gpu_arch": meta["compute_capability"]}
                manifest["plan"] = {k: meta[k] for k in ("library", "version", "plan_bytes", "build_seconds")}
                files.append(fmt.artifact)
        if verify and precision == "fp32" and fmt.backend in ("onnxruntime", "openvino"):
            from ..utils import cpu
            from ..utils.extras import has_module

            if cpu.has_bf16() and has_module("openvino"):
                with stage("measure OpenVINO's bf16 inference on this artifact"):
                    manifest["bf16"] = _measure_bf16(model, tmp / (fmt.artifact if fmt.backend == "openvino"
                                                                   else ONNX_FILE), manifest)  # fmt: skip
        manifest["files"] = {f: sha256_file(tmp / f) for f in files}
        manifest["export_seconds"] = round(time.perf_counter() - started, 2)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _input_specs(graph, signature, height: int, width: int) -> list[dict]:
    """The manifest's input list, in graph order: name, kind, dtype and shape from the signature."""
    specs = [signature.input(n) for n in graph.input_names()]
    return [{"name": i.name, "kind": i.kind, "dtype": i.dtype, "shape": i.shape(height, width)} for i in specs]


def _num_classes(signature, config) -> int | None:
    if hasattr(config, "num_classes"):
        return config.num_classes
    spec = next((i for i in signature.inputs if i.kind in ("labels", "class")), None)
    return spec.classes if spec is not None else None


def _class_names(config) -> dict[str, str] | None:
    """Names of the classes, for error messages and UIs, where the ids are a known label space."""
    from ..data.landscapes import NAMES

    ids = getattr(config, "label_ids", None)
    if ids is not None and set(ids) <= set(NAMES):
        return {str(i): NAMES[i] for i in ids}
    return None


def _verify(model: nn.Module, onnx_path: Path, manifest: dict) -> dict:
    import onnxruntime as ort

    feeds = sample_feeds(manifest, batch=2)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)[0]
    ref = reference_image(model, feeds)
    return {"psnr_db_onnxruntime": round(psnr(got, ref), 2), "max_abs_uint8": int(np.abs(got.astype(int) - ref).max())}


def _reduce(model, tmp: Path, fmt, precision: str, manifest: dict, floor: float, calibration, files, progress):
    """The bf16 / int8 artifact in `tmp` from its fp32 ONNX, measured; its file list. Below `floor`: ConfigError."""
    from ..engine.backends import openvino_config
    from ..utils import cpu
    from . import quantize

    say = print if progress else (lambda *a, **k: None)
    problem = cpu.precision_problem(precision)
    if precision == "bf16" and problem:  # it could not even be measured here
        raise ConfigError(f"cannot export bf16 here: {problem}")
    sets = quantize.calibration_sets(manifest, calibration)
    refs = [[reference_image(model, f) for f in part] for part in sets]
    onnx_path = tmp / ONNX_FILE
    maps = {"calibration": len(sets[0]), "validation": len(sets[1]), "held_out": len(sets[2])}
    info: dict[str, Any] = {"maps": maps, "calibration": str(calibration or "the model's label space")}
    if fmt.backend == "openvino":
        import openvino as ov

        xml = tmp / fmt.artifact
        core, graphs = ov.Core(), {"openvino": xml}
        if precision == "int8":
            info.update(quantize.openvino_int8(onnx_path, xml, sets, refs, floor, say))
        else:
            graphs = _openvino_bf16(core, tmp, xml, manifest, sets, refs, floor, info, say)
        onnx_path.unlink()
        files = [f for f in files if f != ONNX_FILE] + [xml.name, xml.with_suffix(".bin").name]
        if "openvino_fused" in graphs:  # the plugin graph became a marked IR
            (tmp / PLUGIN_ONNX_FILE).unlink()
            plugin_xml = graphs["openvino_fused"]
            files = [f for f in files if f != PLUGIN_ONNX_FILE] + [plugin_xml.name, plugin_xml.with_suffix(".bin").name]
        compiled = {k: core.compile_model(str(v), "CPU", openvino_config(precision)) for k, v in graphs.items()}
        scores = {k: quantize.fidelity(lambda f, c=c: c(f)[0], sets[2], refs[2]) for k, c in compiled.items()}
        run = None
    else:
        import onnxruntime as ort

        quantized = tmp / "model.int8.onnx"
        info.update(quantize.onnxruntime_int8(onnx_path, quantized, sets, say))
        quantized.replace(onnx_path)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        run = lambda f: session.run(None, f)[0]  # noqa: E731
    if run is not None:
        scores = {fmt.backend: quantize.fidelity(run, sets[2], refs[2])}
    got = min(scores.values())  # every graph the artifact ships holds the floor
    manifest["fidelity"] = {**{f"psnr_db_held_out_{k}": v for k, v in scores.items()}, "floor_db": floor,
                            "cpu": cpu.summary()}  # fmt: skip
    manifest["quantization"] = info
    say(f"{precision}: {got} dB on {len(sets[2])} held-out maps vs the fp32 PyTorch reference (floor {floor} dB)")
    if got < floor:
        raise ConfigError(
            f"{precision} paints {got} dB against the fp32 reference on held-out maps, below the floor of "
            f"{floor} dB: no artifact written (lower it with min_psnr / --min-psnr, or use fp32)"
        )
    return files


def _openvino_bf16(core, tmp: Path, xml: Path, manifest: dict, sets, refs, floor: float, info: dict, say) -> dict:
    """The bf16 IRs of the artifact in `tmp`, with the layer groups that hurt kept in float32 (`bf16.choose`,
    on the validation maps; the fused graph's choice where the artifact has one, applied to both);
    {measured name: IR path}."""
    from ..engine import openvino_ext
    from ..engine.backends import openvino_config
    from . import bf16
    from .quantize import VALIDATION_MARGIN_DB

    sources = {"openvino": tmp / ONNX_FILE}
    plugins = manifest.get("plugins")
    if plugins:
        try:
            openvino_ext.add_to(core, log=say)
        except openvino_ext.ExtensionUnavailable as e:  # its bf16 fidelity could not be measured
            raise ConfigError(f"a bf16 artifact with plugins is measured with rtgan's OpenVINO extension: {e}") \
                from None  # fmt: skip
        sources["openvino_fused"] = tmp / PLUGIN_ONNX_FILE

    def compile_run(path):
        compiled = core.compile_model(str(path), "CPU", openvino_config("bf16"))
        return lambda f: compiled(f)[0]

    search = sources.get("openvino_fused", sources["openvino"])
    chosen = bf16.choose(core, search, compile_run, sets[1], refs[1], floor + VALIDATION_MARGIN_DB, say)
    info["mixed_bf16"] = chosen
    groups = set(chosen["float_groups"]) if chosen["float_groups"] is not None else None
    graphs = {"openvino": bf16.save_marked(core, sources["openvino"], xml, groups)}
    if plugins:
        graphs["openvino_fused"] = bf16.save_marked(core, sources["openvino_fused"], tmp / PLUGIN_XML_FILE, groups)
        plugins["file"] = PLUGIN_XML_FILE
    return graphs


def _alternating_medians(compiled: dict, feeds: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each compiled model on `feeds`, runs alternating between them (the
    machine's noise hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in compiled}
    for _ in range(repeats):
        for name, run in compiled.items():
            start = time.perf_counter()
            run(feeds)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def _measure_bf16(model: nn.Module, path: Path, manifest: dict, repeats: int = 5) -> dict:
    """OpenVINO's bf16 inference on an fp32 file: worst PSNR against the PyTorch reference on
    held-out maps, and its speed against f32 on this CPU (alternating runs, medians), so that
    `Engine.load(precision="auto")` can choose it where it holds its floor and pays."""
    import openvino as ov

    from ..engine.backends import openvino_config
    from ..utils import cpu
    from . import quantize

    held = quantize.calibration_sets(manifest)[2]
    refs = [reference_image(model, f) for f in held]
    core = ov.Core()
    compiled = {p: core.compile_model(str(path), "CPU", openvino_config(p)) for p in ("fp32", "bf16")}
    got = quantize.fidelity(lambda f: compiled["bf16"](f)[0], held, refs)
    seconds = _alternating_medians(compiled, held[0], repeats)
    speedup = seconds["fp32"] / seconds["bf16"]
    return {"psnr_db_openvino": got, "speedup_openvino": round(speedup, 2), "maps": len(held), "cpu": cpu.summary()}


def _measure_cpu_kernels(model: nn.Module, tmp: Path, manifest: dict, repeats: int = 7) -> dict:
    """The plugin-node graph on OpenVINO with rtgan's CPU extension: worst PSNR against the PyTorch
    reference on held-out maps, and its speed against the standard-op graph (alternating runs,
    medians) at fp32 and, where this CPU has bf16, bf16: what `Engine.load` runs by default."""
    import openvino as ov

    from ..engine import openvino_ext
    from ..engine.backends import openvino_config
    from ..utils import cpu
    from . import quantize

    core = ov.Core()
    try:
        openvino_ext.add_to(core, log=print)
    except openvino_ext.ExtensionUnavailable as e:
        return {"unavailable": str(e)}
    held = quantize.calibration_sets(manifest)[2]
    refs = [reference_image(model, f) for f in held]
    result: dict[str, Any] = {"maps": len(held), "cpu": cpu.summary()}
    for precision in ["fp32"] + (["bf16"] if cpu.has_bf16() else []):
        config = openvino_config(precision)
        graphs = {name: core.compile_model(str(tmp / f), "CPU", config)
                  for name, f in (("fused", PLUGIN_ONNX_FILE), ("standard", ONNX_FILE))}  # fmt: skip
        got = quantize.fidelity(lambda f, fused=graphs["fused"]: fused(f)[0], held, refs)
        ms = {name: t * 1000 for name, t in _alternating_medians(graphs, held[0], repeats).items()}
        result[precision] = {"psnr_db": got, "ms": round(ms["fused"], 2), "ms_standard": round(ms["standard"], 2),
                             "speedup": round(ms["standard"] / ms["fused"], 2)}  # fmt: skip
    return result


def _export_openvino(onnx_path: Path, xml_path: Path) -> list[str]:
    import openvino as ov

    ov.save_model(ov.convert_model(str(onnx_path)), str(xml_path), compress_to_fp16=False)
    return [xml_path.name, xml_path.with_suffix(".bin").name]
