"""rtgan artifacts -> a Triton Inference Server model repository (one `config.pbtxt` per model).

    REPO/
      landscape-asapnet/
        config.pbtxt      platform, tensors, max_batch_size, dynamic_batching, instance_group
        rtgan.json        the artifact's manifest per model file (what `check` holds the plans to)
        1/model.onnx      the model file (model.xml + model.bin, or model_sm86.plan ...)

Each artifact's own backend decides the Triton one: onnxruntime -> `onnxruntime_onnx`, openvino ->
`backend: "openvino"`, tensorrt -> `tensorrt_plan` with one plan per GPU architecture
(`cc_model_filenames`; artifacts of one model built for several GPUs become one model).

TensorRT-RTX plans are not served as plans: Triton's tensorrt backend links NVIDIA's datacenter
TensorRT runtime (libnvinfer), which cannot deserialize TensorRT-RTX engines, and no Triton backend
links the TensorRT-RTX runtime. Such an artifact is served from the ONNX graph its plan was built
from, on ONNX Runtime (on the GPU), with a warning; `--backend tensorrt` on the serving GPU makes a plan.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Callable

from .. import __version__
from ..engine.contract import ONNX_FILE
from ..engine.manifest import read_manifest
from ..errors import ConfigError
from ..utils.atomic import atomic_dir
from . import dtypes

CONFIG = "config.pbtxt"
RECORD = "rtgan.json"  # beside config.pbtxt: Triton reads only the config and the version directories
VERSION = "1"
HEADER = "# Written by rtgan"  # how `write_repository` recognizes a repository it may replace
QUEUE_DELAY_US = 2000  # a few ms of batching delay is small next to a painting's tens of ms on a CPU
# how each kind of model names its Triton runtime in config.pbtxt
RUNTIMES = {"onnxruntime": {"platform": "onnxruntime_onnx"}, "openvino": {"backend": "openvino"},
            "tensorrt": {"platform": "tensorrt_plan"}, "ensemble": {"platform": "ensemble"}}  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # the model names both Triton and PyTriton accept


@dataclasses.dataclass
class Tensor:
    name: str
    dtype: str  # NumPy's name: int32, uint8, float32
    dims: list[int]  # per request item: no batch dimension when max_batch_size > 0


@dataclasses.dataclass
class Model:
    """One model of the repository, as its config.pbtxt and files will say."""

    name: str
    kind: str  # onnxruntime | openvino | tensorrt | ensemble
    inputs: list[Tensor]
    outputs: list[Tensor]
    max_batch_size: int
    files: dict[str, Path | bytes] = dataclasses.field(default_factory=dict)  # path in the model dir -> source
    device: str | None = "KIND_CPU"  # instance_group kind (None: ensembles have none)
    instances: int = 1
    parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    cc_model_filenames: dict[str, str] = dataclasses.field(default_factory=dict)
    steps: list[dict] = dataclasses.field(default_factory=list)  # ensemble_scheduling steps
    queue_delay_us: int = QUEUE_DELAY_US
    notes: list[str] = dataclasses.field(default_factory=list)  # comment lines at the top of config.pbtxt
    record: dict = dataclasses.field(default_factory=dict)  # rtgan.json


def parse_artifact_arg(text: str) -> tuple[str | None, Path]:
    """'NAME=PATH' or 'PATH' -> (NAME or None, PATH)."""
    name, sep, path = text.partition("=")
    if sep and _NAME.match(name) and not Path(text).exists():
        return name, Path(path)
    return None, Path(text)


def default_name(directory: Path, manifest: dict) -> str:
    """A model name from where the artifact lives: a bundled model's `engine` folder is named after the
    model (`engine-512x512` adds the size); a cache folder `asapnet-256x256-tensorrt-fp32-<key>` gives
    `asapnet-256x256`, so plans of one model built for several GPUs share a name and become one model."""
    directory = directory.resolve()
    name = directory.name
    if name == "engine" or name.startswith("engine-"):
        name = directory.parent.name + name.removeprefix("engine")
    cached = re.fullmatch(r"(.+-\d+x\d+)-(onnxruntime|openvino|tensorrt|tensorrt-rtx|torch)-\w+-[0-9a-f]{12}", name)
    if cached:
        name = cached[1]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or manifest.get("arch", "model")


def _io(manifest: dict, batched: bool) -> tuple[list[Tensor], list[Tensor]]:
    """The manifest's tensors; its shapes are ["batch", ...], and Triton wants the rest (or -1 for batch)."""

    def tensor(spec: dict) -> Tensor:
        per = [int(d) for d in spec["shape"][1:]]
        return Tensor(spec["name"], spec["dtype"], per if batched else [-1, *per])

    return [tensor(i) for i in manifest["inputs"]], [tensor(manifest["output"])]


def _rtgan_parameters(manifest: dict) -> dict[str, str]:
    """What the client checks requests against before sending (Triton passes unknown parameters through)."""
    params = {"rtgan_arch": str(manifest.get("arch", ""))}
    if manifest.get("label_ids") is not None:
        params["rtgan_label_ids"] = ",".join(str(i) for i in manifest["label_ids"])
    elif manifest.get("num_classes") and any(i["name"] == "labels" for i in manifest["inputs"]):
        params["rtgan_label_ids"] = f"0-{manifest['num_classes'] - 1}"
    return params


def _cc(gpu_arch: str) -> str:
    """'SM86' -> '8.6', 'SM120' -> '12.0' (the compute capability keys of cc_model_filenames)."""
    digits = gpu_arch.upper().removeprefix("SM")
    if not digits.isdigit() or len(digits) < 2:
        raise ConfigError(f"plan target {gpu_arch!r} is not a compute capability such as SM86")
    return f"{int(digits[:-1])}.{digits[-1]}"


def _batch(manifest: dict, requested: int | None, is_plan: bool, where: str) -> int:
    if requested is None:
        return manifest["max_batch"]
    if requested < 0:
        raise ConfigError(f"--max-batch-size must be 0 (no batching) or more, got {requested}")
    if is_plan and requested > manifest["max_batch"]:
        raise ConfigError(
            f"{where}: its plan takes batches of at most {manifest['max_batch']}, not --max-batch-size {requested}; "
            f"re-export with --max-batch {requested}"
        )
    return requested


def model_from_artifacts(
    name: str,
    artifacts: list[tuple[Path, dict]],
    *,
    max_batch_size: int | None = None,
    instances: int = 1,
    threads: int | None = None,
    warn: Callable[[str], None] = print,
) -> Model:
    """The repository model serving `artifacts`: one artifact, or several TensorRT plans of one model."""
    backends = {m["backend"] for _, m in artifacts}
    if len(artifacts) > 1 and backends != {"tensorrt"}:
        shown = ", ".join(str(d) for d, _ in artifacts)
        raise ConfigError(
            f"{len(artifacts)} artifacts would be model {name!r} ({shown}); only TensorRT plans for different "
            "GPUs share a model: name each with NAME=ARTIFACT"
        )
    directory, manifest = artifacts[0]
    backend = manifest["backend"]
    if backend == "torch":
        raise ConfigError(f"{directory}: a torch artifact is the PyTorch reference; export onnxruntime, openvino "
                          "or tensorrt to serve it")  # fmt: skip
    record = {"rtgan": __version__, "artifacts": {}}
    notes = [f"from {directory} ({backend}, {manifest.get('precision', 'fp32')}, "
             f"{manifest['height']}x{manifest['width']})"]  # fmt: skip
    if backend == "tensorrt":
        return _plan_model(name, artifacts, max_batch_size, instances, record)
    if backend == "openvino":
        # Triton's OpenVINO backend fixes the IR's batch at max_batch_size and pads every smaller batch to it
        # (ENABLE_BATCH_PADDING), so a batch above 1 costs a full batch per request under light load
        batch = 1 if max_batch_size is None else _batch(manifest, max_batch_size, False, str(directory))
        inputs, outputs = _io(manifest, batch > 0)
        params = {"PERFORMANCE_HINT": "LATENCY"}  # as rtgan.Engine compiles it
        if batch > 1:
            params["ENABLE_BATCH_PADDING"] = "YES"
        if manifest.get("precision") == "bf16":
            params["HINT_BF16"] = "YES"
        if threads:
            params["INFERENCE_NUM_THREADS"] = str(threads)
        files = {f"{VERSION}/model.xml": directory / "model.xml", f"{VERSION}/model.bin": directory / "model.bin"}
        if batch > 1:
            notes.append(f"the OpenVINO backend pads each batch to {batch}: --max-batch-size 1 for least latency")
        kind = "openvino"
        device = "KIND_CPU"
    else:  # onnxruntime, or a TensorRT-RTX artifact served from the ONNX its plan was built from
        batch = _batch(manifest, max_batch_size, False, str(directory))
        inputs, outputs = _io(manifest, batch > 0)
        params = {"intra_op_thread_count": str(threads)} if threads else {}
        files = {f"{VERSION}/{ONNX_FILE}": directory / ONNX_FILE}
        kind, device = "onnxruntime", "KIND_CPU"
        if backend == "tensorrt-rtx":
            gpu = manifest.get("target", {}).get("gpu_arch")
            message = (
                f"{directory} is a TensorRT-RTX plan{f' for {gpu}' if gpu else ''}: Triton's tensorrt backend "
                "runs datacenter TensorRT plans only, and no Triton backend loads TensorRT-RTX engines; model "
                f"{name!r} serves the ONNX graph the plan was built from on ONNX Runtime (GPU) instead. For a plan, "
                "export --backend tensorrt on the serving GPU"
            )
            warn(f"warning: {message}")
            notes.append("TensorRT-RTX plan not loadable by Triton: serving its model.onnx on ONNX Runtime")
            device = "KIND_GPU"
    record["artifacts"] = {path: {"source": str(directory.resolve()), "manifest": manifest} for path in files}
    params.update(_rtgan_parameters(manifest))
    return Model(name, kind, inputs, outputs, batch, files, device, instances, params, notes=notes, record=record)


def _plan_model(name, artifacts, max_batch_size, instances, record) -> Model:
    """TensorRT plans of one model, one per GPU architecture, as `cc_model_filenames`."""
    first_dir, first = artifacts[0]
    cc: dict[str, str] = {}
    files: dict[str, Path] = {}
    notes = []
    batch = None
    for directory, manifest in artifacts:
        for field in ("inputs", "output", "height", "width"):
            if manifest[field] != first[field]:
                raise ConfigError(f"plans of model {name!r} disagree on {field}: {first_dir} and {directory}")
        gpu = manifest.get("target", {}).get("gpu_arch")
        if not gpu:
            raise ConfigError(f"{directory}: the manifest names no GPU architecture (target.gpu_arch); re-export")
        key = _cc(gpu)
        if key in cc:
            raise ConfigError(f"two plans of model {name!r} are built for {gpu}: {files[f'{VERSION}/{cc[key]}']} "
                              f"and {directory}")  # fmt: skip
        filename = f"model_{gpu.lower()}.plan"
        cc[key] = filename
        files[f"{VERSION}/{filename}"] = directory / "model.plan"
        b = _batch(manifest, max_batch_size, True, str(directory))
        batch = b if batch is None else min(batch, b)
        plan = manifest.get("plan", {})
        notes.append(f"{filename}: {gpu} (compute capability {key}), {plan.get('library', 'tensorrt')} "
                     f"{plan.get('version', '?')} from {directory}")  # fmt: skip
    versions = {m.get("plan", {}).get("version") for _, m in artifacts}
    notes.append(
        f"serve with a tritonserver release whose TensorRT is {', '.join(sorted(v or '?' for v in versions))}: "
        "a plan loads only in the TensorRT version that built it"
    )
    inputs, outputs = _io(first, batch > 0)
    record["artifacts"] = {path: {"source": str(src.parent.resolve()), "manifest": m}
                           for (path, src), (_, m) in zip(files.items(), artifacts)}  # fmt: skip
    return Model(name, "tensorrt", inputs, outputs, batch, files, "KIND_GPU", instances, _rtgan_parameters(first),
                 cc_model_filenames=cc, notes=notes, record=record)  # fmt: skip


def config_dict(model: Model) -> dict:
    """The model's configuration as ModelConfig's JSON form (protobuf field names)."""

    def tensor(t: Tensor) -> dict:
        return {"name": t.name, "data_type": dtypes.config_type(t.dtype), "dims": t.dims}

    config: dict = {"name": model.name, "max_batch_size": model.max_batch_size}
    config.update(RUNTIMES[model.kind])
    config["input"] = [tensor(t) for t in model.inputs]
    config["output"] = [tensor(t) for t in model.outputs]
    if model.kind == "ensemble":
        config["ensemble_scheduling"] = {"step": model.steps}
    else:
        if model.max_batch_size > 0:
            config["dynamic_batching"] = {
                "preferred_batch_size": preferred_batch_sizes(model.max_batch_size),
                "max_queue_delay_microseconds": model.queue_delay_us,
            }
        config["instance_group"] = [{"kind": model.device, "count": model.instances}]
    if model.cc_model_filenames:
        config["cc_model_filenames"] = model.cc_model_filenames
    if model.parameters:
        config["parameters"] = {k: {"string_value": v} for k, v in model.parameters.items()}
    return config


def preferred_batch_sizes(max_batch_size: int) -> list[int]:
    """Powers of two up to the largest batch, and the largest: 4 -> [2, 4], 6 -> [2, 4, 6]; 1 -> [1]."""
    sizes = [b for b in (2**i for i in range(1, 17)) if b < max_batch_size]
    return sizes + [max_batch_size]


def config_text(model: Model) -> str:
    """config.pbtxt: comment lines saying where it came from, then the protobuf text format."""
    try:
        from google.protobuf import json_format, text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise ConfigError("writing a Triton model repository needs tritonclient: pip install 'rtgan[serve]'") from None
    message = json_format.ParseDict(config_dict(model), model_config_pb2.ModelConfig())
    header = [f"{HEADER} {__version__} (python -m rtgan.serve repository)"] + [f"# {n}" for n in model.notes]
    return "\n".join(header) + "\n" + text_format.MessageToString(message)


def write_repository(
    artifacts: list[str],
    out: str | Path,
    *,
    max_batch_size: int | None = None,
    instances: int = 1,
    threads: int | None = None,
    queue_delay_us: int = QUEUE_DELAY_US,
    segmenter: str | Path | None = None,
    mapping: str | Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Model]:
    """Write the repository for `artifacts` ("PATH" or "NAME=PATH") to `out`, atomically; returns its models.

    `segmenter` + `mapping` add, for each generator that takes labels, an ensemble photo -> painting:
    pre-processing, the segmenter, class mapping (rtgan.serve.ensemble) and the generator.
    """
    warn = warn or (lambda m: print(m, file=sys.stderr))
    if instances < 1:
        raise ConfigError(f"--instances must be 1 or more, got {instances}")
    if not artifacts:
        raise ConfigError("give at least one artifact directory (an exported engine with a manifest.json)")
    if (segmenter is None) != (mapping is None):
        raise ConfigError("--segmenter and --mapping go together: the network, and the JSON mapping its classes")
    groups: dict[str, list[tuple[Path, dict]]] = {}
    for text in artifacts:
        name, directory = parse_artifact_arg(text)
        manifest = read_manifest(directory)  # verifies every file's SHA-256
        name = name or default_name(directory, manifest)
        if not _NAME.match(name):
            raise ConfigError(f"model name {name!r}: use letters, digits, '.', '_' and '-'")
        groups.setdefault(name, []).append((directory, manifest))
    models = [
        model_from_artifacts(name, group, max_batch_size=max_batch_size, instances=instances, threads=threads,
                             warn=warn)
        for name, group in groups.items()
    ]  # fmt: skip
    for m in models:
        m.queue_delay_us = queue_delay_us
    if segmenter is not None:
        from .ensemble import photo_ensembles

        models += photo_ensembles(Path(segmenter), Path(mapping), models, max_batch_size=max_batch_size)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"two models would share a name: {sorted(n for n in names if names.count(n) > 1)}")
    target = _check_target(Path(out))
    with atomic_dir(target) as tmp:
        for m in models:
            _write_model(tmp / m.name, m)
    return models


def _write_model(directory: Path, model: Model) -> None:
    (directory / VERSION).mkdir(parents=True)
    for relative, source in model.files.items():
        dest = directory / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            dest.write_bytes(source)
        else:
            shutil.copyfile(source, dest)
    (directory / CONFIG).write_text(config_text(model))
    (directory / RECORD).write_text(json.dumps(model.record, indent=2) + "\n")


def _check_target(out: Path) -> Path:
    """Refuse an --out that holds anything but a repository rtgan wrote (it is replaced whole)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; name a folder for the repository")
    if out.is_dir():
        for child in out.iterdir():
            config = child / CONFIG
            ours = child.is_dir() and config.is_file() and config.read_text(errors="replace").startswith(HEADER)
            if not ours:
                raise ConfigError(
                    f"--out {out} holds {child.name}, which rtgan did not write; the repository replaces its folder "
                    "whole, so give a new or empty one"
                )
    return out
