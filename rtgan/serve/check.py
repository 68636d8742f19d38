"""Offline checks of a Triton model repository, before any server sees it (`python -m rtgan.serve check REPO`).

Every config.pbtxt must parse with the protobuf schema tritonclient ships (Triton's own ModelConfig),
and say what its model file says: the same input and output names, dtypes and dims (after the batch
dimension when max_batch_size > 0, which the model must leave dynamic). The model file is read as
Triton's backend would see it: ONNX through `onnx`, OpenVINO IR through OpenVINO's reader, and a
TensorRT plan, which only a GPU can open, through the artifact manifest recorded beside it (its
SHA-256, GPU architecture and largest batch). Ensembles must wire each step's tensors to tensors that
an ensemble input or an earlier step provides, with agreeing dtypes and dims.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..engine.manifest import sha256_file
from ..errors import ConfigError
from . import dtypes
from .errors import RepositoryError
from .repository import CONFIG, RECORD

Shape = list  # dims, None where the model leaves a dimension dynamic
KINDS = {"onnxruntime_onnx": "onnxruntime", "onnxruntime": "onnxruntime", "openvino": "openvino",
         "tensorrt_plan": "tensorrt", "tensorrt": "tensorrt", "ensemble": "ensemble"}  # fmt: skip
DEFAULT_FILES = {"onnxruntime": "model.onnx", "openvino": "model.xml", "tensorrt": "model.plan"}


def parse_config(path: Path):
    """config.pbtxt -> tritonclient's ModelConfig message (RepositoryError naming the line on a syntax error)."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise ConfigError("checking a Triton model repository needs tritonclient: pip install 'rtgan[serve]'") from None
    try:
        return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise RepositoryError(f"{path}: not a valid model configuration: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RepositoryError(f"{path}: unreadable: {e}") from None


def check_repository(repo: str | Path) -> list[str]:
    """Check every model of `repo`; returns one summary line per model, or raises RepositoryError listing
    every problem found (all of them, not only the first)."""
    repo = Path(repo)
    if not repo.is_dir():
        raise RepositoryError(f"{repo}: no such folder (a model repository holds one folder per model)")
    problems: list[str] = []
    configs = {}
    for directory in sorted(p for p in repo.iterdir() if p.is_dir()):
        if not (directory / CONFIG).is_file():
            problems.append(f"{directory.name}: no {CONFIG}")
            continue
        try:
            configs[directory.name] = parse_config(directory / CONFIG)
        except RepositoryError as e:
            problems.append(str(e))
    if not configs and not problems:
        raise RepositoryError(f"{repo}: no models (a folder per model, each with a {CONFIG})")
    lines = []
    for name, config in configs.items():
        found = _check_model(repo / name, config, configs)
        problems += [f"{name}: {p}" for p in found]
        if not found:
            lines.append(f"ok  {name}  {_summary(config)}")
    if problems:
        raise RepositoryError(f"{repo}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    return lines


def _summary(config) -> str:
    kind = KINDS.get(config.platform or config.backend, config.platform or config.backend)
    io = lambda ts: ", ".join(f"{t.name} {dtypes.from_config(_type(t))} {list(t.dims)}" for t in ts)
    return f"{kind}, max_batch_size {config.max_batch_size}: {io(config.input)} -> {io(config.output)}"


def _type(tensor) -> str:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Name(tensor.data_type)


def _check_model(directory: Path, config, configs: dict) -> list[str]:
    from tritonclient.grpc import model_config_pb2 as pb

    problems = []
    if config.name and config.name != directory.name:
        problems.append(f"the config names the model {config.name!r}, but its folder is {directory.name!r}")
    kind = KINDS.get(config.platform or config.backend)
    if kind is None:
        return problems + [f"platform {config.platform!r} / backend {config.backend!r}: rtgan checks "
                           "onnxruntime_onnx, openvino, tensorrt_plan and ensemble models"]  # fmt: skip
    batched = config.max_batch_size > 0
    if config.max_batch_size < 0:
        problems.append(f"max_batch_size {config.max_batch_size} is negative")
    if config.HasField("dynamic_batching"):
        sizes = list(config.dynamic_batching.preferred_batch_size)
        if not batched:
            problems.append("dynamic_batching needs max_batch_size > 0")
        elif any(s < 1 or s > config.max_batch_size for s in sizes):
            problems.append(f"preferred_batch_size {sizes} must lie in 1..max_batch_size ({config.max_batch_size})")
    for t in [*config.input, *config.output]:
        if dtypes.from_config(_type(t)) is None:
            problems.append(f"tensor {t.name!r} has data_type {_type(t)}, which rtgan does not serve")
        if any(d == 0 or d < -1 for d in t.dims):
            problems.append(f"tensor {t.name!r} has dims {list(t.dims)}: each is positive, or -1 for any size")
    kinds = {g.kind for g in config.instance_group}
    if kind == "ensemble":
        if config.instance_group:
            problems.append("an ensemble takes no instance_group (its steps have their own)")
        return problems + _check_ensemble(config, configs)
    if kind == "openvino" and kinds - {pb.ModelInstanceGroup.KIND_CPU}:
        problems.append("Triton's OpenVINO backend runs on the CPU: instance_group kind KIND_CPU")
    if kind == "tensorrt" and kinds & {pb.ModelInstanceGroup.KIND_CPU}:
        problems.append("a TensorRT plan runs on the GPU: instance_group kind KIND_GPU")
    versions = sorted(p for p in directory.iterdir() if p.is_dir() and p.name.isdigit())
    if not versions:
        return problems + ["no version folder (1/ holding the model file)"]
    for version in versions:
        if kind == "tensorrt":
            problems += _check_plans(directory, version, config)
            continue
        path = version / (config.default_model_filename or DEFAULT_FILES[kind])
        if not path.is_file():
            problems.append(f"{path.relative_to(directory)} is missing")
            continue
        try:
            inputs, outputs = onnx_io(path) if kind == "onnxruntime" else openvino_io(path)
        except RepositoryError as e:
            problems.append(str(e))
            continue
        where = path.relative_to(directory).as_posix()
        problems += compare(config.input, inputs, batched, where, "input", required=True)
        problems += compare(config.output, outputs, batched, where, "output", required=False)
    return problems


def compare(tensors, model: dict[str, tuple[str, Shape]], batched: bool, where: str, what: str, required: bool):
    """Config tensors vs the model file's {name: (dtype, dims)}; each disagreement as a sentence."""
    problems = []
    for t in tensors:
        if t.name not in model:
            problems.append(f"{what} {t.name!r} is not one of {where}'s {what}s ({', '.join(model)})")
            continue
        dtype, shape = model[t.name]
        want = dtypes.from_config(_type(t))
        if want != dtype:
            problems.append(f"{what} {t.name!r} is {_type(t)}, but {where} has {dtype} "
                            f"({dtypes.config_type(dtype) if dtype in dtypes.DTYPES else 'not servable'})")  # fmt: skip
        dims = list(t.dims)
        if batched:
            if shape and shape[0] is not None:
                problems.append(f"{what} {t.name!r}: max_batch_size > 0 but {where} fixes the batch dimension "
                                f"at {shape[0]}")  # fmt: skip
            shape = shape[1:]
        shown = [d if d is not None else -1 for d in shape]
        if len(dims) != len(shape) or any(m is not None and d != -1 and d != m for d, m in zip(dims, shape)):
            after = " after the batch dimension" if batched else ""
            problems.append(f"{what} {t.name!r} has dims {dims}, but {where} has {shown}{after}")
    if required:
        missing = sorted(set(model) - {t.name for t in tensors})
        if missing:
            problems.append(f"{where} takes {what}(s) {', '.join(missing)}, which the config does not list")
    return problems


def onnx_io(path: Path) -> tuple[dict, dict]:
    try:
        import onnx
    except ImportError:
        raise ConfigError("checking ONNX models needs onnx: pip install onnx") from None
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as e:  # onnx raises DecodeError, ValueError, ... for a damaged file
        raise RepositoryError(f"{path.name}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    weights = {i.name for i in graph.initializer}

    def spec(v) -> tuple[str, Shape]:
        dims = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
        return dtypes.from_onnx(v.type.tensor_type.elem_type) or f"ONNX type {v.type.tensor_type.elem_type}", dims

    return {v.name: spec(v) for v in graph.input if v.name not in weights}, {v.name: spec(v) for v in graph.output}


def openvino_io(xml: Path) -> tuple[dict, dict]:
    try:
        import openvino as ov
    except ImportError:
        raise ConfigError("checking OpenVINO models needs openvino: pip install 'rtgan[cpu]'") from None
    try:
        model = ov.Core().read_model(str(xml))  # reads the IR (and model.bin beside it), compiles nothing
    except Exception as e:  # OpenVINO raises RuntimeError subclasses with the parser's message
        raise RepositoryError(f"{xml.name}: OpenVINO cannot read it ({type(e).__name__}: {str(e)[:200]})") from None

    def ports(items) -> dict:
        out = {}
        for port in items:
            dims = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
            spec = (np.dtype(port.get_element_type().to_dtype()).name, dims)
            out[port.get_any_name()] = spec  # the name Triton's OpenVINO backend binds tensors by
        return out

    return ports(model.inputs), ports(model.outputs)


def _check_plans(directory: Path, version: Path, config) -> list[str]:
    """Plans cannot be opened without a GPU: hold them to the manifests recorded beside the config."""
    problems = []
    try:
        record = json.loads((directory / RECORD).read_text())["artifacts"]
    except (OSError, ValueError, KeyError, TypeError):
        return [f"no readable {RECORD}: a plan is checked against the artifact manifest rtgan records beside it"]
    files = dict(config.cc_model_filenames) or {"": config.default_model_filename or "model.plan"}
    for cc, filename in files.items():
        relative = f"{version.name}/{filename}"
        path = directory / relative
        entry = record.get(relative)
        if not path.is_file():
            problems.append(f"{relative} is missing")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("manifest"), dict):
            problems.append(f"{relative}: {RECORD} records no manifest for it")
            continue
        manifest = entry["manifest"]
        if sha256_file(path) != manifest.get("files", {}).get("model.plan"):
            problems.append(f"{relative}: SHA-256 differs from its artifact's model.plan (replaced or damaged)")
        gpu = manifest.get("target", {}).get("gpu_arch", "")
        if cc and gpu.upper().removeprefix("SM") != cc.replace(".", ""):
            problems.append(f"cc_model_filenames maps compute capability {cc} to {filename}, built for {gpu}")
        if config.max_batch_size > manifest.get("max_batch", 0):
            problems.append(f"max_batch_size {config.max_batch_size} exceeds the plan's largest batch "
                            f"{manifest.get('max_batch')} ({filename})")  # fmt: skip
        io = lambda s: (s["dtype"], [None if d == "batch" else d for d in s["shape"]])
        inputs = {s["name"]: io(s) for s in manifest.get("inputs", [])}
        output = manifest.get("output", {})
        problems += compare(config.input, inputs, config.max_batch_size > 0, relative, "input", required=True)
        outputs = {output["name"]: io(output)} if output else {}
        problems += compare(config.output, outputs, config.max_batch_size > 0, relative, "output", required=False)
    return problems


def _check_ensemble(config, configs: dict) -> list[str]:
    """Steps in an order Triton can run them, each tensor made once, dtypes and dims agreeing end to end."""
    problems = []
    # tensor name -> (dtype, dims, batched) as its producer says; the ensemble's inputs come first
    known = {t.name: (_type(t), list(t.dims)) for t in config.input}
    pending = list(config.ensemble_scheduling.step)
    if not pending:
        return ["ensemble_scheduling has no steps"]
    for step in pending:
        if step.model_name not in configs:
            problems.append(f"step model {step.model_name!r} is not in the repository")
        elif configs[step.model_name].max_batch_size < config.max_batch_size:
            problems.append(f"step {step.model_name!r} batches up to {configs[step.model_name].max_batch_size}, "
                            f"less than the ensemble's max_batch_size {config.max_batch_size}")  # fmt: skip
    if problems:
        return problems
    used = set()
    while pending:
        ready = [s for s in pending if all(v in known for v in s.input_map.values())]
        if not ready:
            waiting = {s.model_name: sorted(set(s.input_map.values()) - set(known)) for s in pending}
            return problems + [f"steps wait for tensors nothing provides: {waiting}"]
        for step in ready:
            pending.remove(step)
            model = configs[step.model_name]
            inputs = {t.name: t for t in model.input}
            outputs = {t.name: t for t in model.output}
            for key, value in step.input_map.items():
                used.add(value)
                if key not in inputs:
                    problems.append(f"step {step.model_name!r} has no input {key!r} (it takes {', '.join(inputs)})")
                    continue
                problems += _agree(value, known[value], inputs[key], f"{step.model_name}.{key}")
            missing = sorted(set(inputs) - set(step.input_map) - {t.name for t in model.input if t.optional})
            if missing:
                problems.append(f"step {step.model_name!r}: input(s) {', '.join(missing)} are not mapped")
            for key, value in step.output_map.items():
                if key not in outputs:
                    problems.append(f"step {step.model_name!r} has no output {key!r} (it gives {', '.join(outputs)})")
                elif value in known:
                    problems.append(f"ensemble tensor {value!r} is provided twice")
                else:
                    known[value] = (_type(outputs[key]), list(outputs[key].dims))
    for t in config.output:
        if t.name not in known:
            problems.append(f"ensemble output {t.name!r} is made by no step")
        else:
            problems += _agree(t.name, known[t.name], t, "the ensemble output")
    unused = [t.name for t in config.input if t.name not in used]
    if unused:
        problems.append(f"ensemble input(s) {', '.join(unused)} go to no step")
    return problems


def _agree(name: str, have: tuple[str, list], tensor, where: str) -> list[str]:
    dtype, dims = have
    problems = []
    if dtype != _type(tensor):
        problems.append(f"tensor {name!r} is {dtype}, but {where} takes {_type(tensor)}")
    want = list(tensor.dims)
    if len(dims) != len(want) or any(a != -1 and b != -1 and a != b for a, b in zip(dims, want)):
        problems.append(f"tensor {name!r} has dims {dims}, but {where} takes {want}")
    return problems


def run_ensemble(repo: str | Path, name: str, feeds: dict[str, np.ndarray], threads: int = 1) -> dict:
    """Run ensemble `name` step by step with ONNX Runtime, routing tensors as its config says (what
    Triton's ensemble scheduler does): a dry run of the wiring with no server. ONNX steps only."""
    import onnxruntime as ort

    repo = Path(repo)
    config = parse_config(repo / name / CONFIG)
    tensors = dict(feeds)
    pending = list(config.ensemble_scheduling.step)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    while pending:
        step = next((s for s in pending if all(v in tensors for v in s.input_map.values())), None)
        if step is None:
            raise RepositoryError(f"{name}: no step can run with tensors {sorted(tensors)}")
        pending.remove(step)
        model_config = parse_config(repo / step.model_name / CONFIG)
        if KINDS.get(model_config.platform or model_config.backend) != "onnxruntime":
            raise RepositoryError(f"{name}: step {step.model_name!r} is not an ONNX model; run it on a server")
        path = repo / step.model_name / "1" / (model_config.default_model_filename or "model.onnx")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        got = session.run(list(step.output_map), {k: tensors[v] for k, v in step.input_map.items()})
        tensors.update({step.output_map[k]: v for k, v in zip(step.output_map, got)})
    return {t.name: tensors[t.name] for t in config.output}
