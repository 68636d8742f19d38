"""rtgan's own model format: a directory with `config.json` and `model.safetensors`.

safetensors holds no code, and `config.json` records the architecture, its config and the
weights' SHA-256, so a truncated or edited file is reported as such instead of loading.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import nn

from .._version import __version__
from ..errors import CheckpointError, RtganError
from ..utils.atomic import atomic_dir
from .official import check_dtypes, check_keys, state_shapes
from .registry import build, make_config

FORMAT = "rtgan-generator"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save(
    model: nn.Module, directory: str | os.PathLike, *, dtype: torch.dtype | None = None, extra: dict | None = None
) -> Path:
    """Write `model` to `directory` atomically. `dtype=torch.float16` halves the file; floats load back as fp32."""
    from safetensors.torch import save_file

    config = model.config
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT, "arch": config.arch})
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "rtgan_version": __version__,
            "arch": config.arch,
            "config": config.to_dict(),
            "encoder": getattr(model, "encoder", None) is not None,
            "sha256": {WEIGHTS: _sha256(tmp / WEIGHTS)},
            **(extra or {}),
        }
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def read_config(directory: str | os.PathLike) -> dict:
    path = Path(directory) / CONFIG
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{directory}: no {CONFIG}; not an rtgan model directory") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: corrupted JSON: {e}") from None
    except OSError as e:
        raise CheckpointError(f"{path}: unreadable: {e}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: not an rtgan model config (a JSON object), got {type(meta).__name__}")
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format {meta.get('format')!r:.40} v{meta.get('format_version')!r:.20} is not "
            f"{FORMAT!r} v{FORMAT_VERSION}"
        )
    fields = {
        "arch": (isinstance(meta.get("arch"), str), "an architecture name"),
        "config": (isinstance(meta.get("config"), dict), "an object of options"),
        "sha256": (
            isinstance(meta.get("sha256", {}), dict)
            and all(isinstance(v, str) for v in meta.get("sha256", {}).values()),
            "an object of file names to SHA-256 hex digests",
        ),
        "encoder": (isinstance(meta.get("encoder", True), bool), "true or false"),
    }
    for name, (ok, want) in fields.items():
        if not ok:
            raise CheckpointError(f"{path}: field {name!r} must be {want}, got {meta.get(name)!r:.80}")
    return meta


def _build(config, path: Path) -> nn.Module:
    """`build(config)` for a config read from a file: any failure is that file's fault."""
    try:
        return build(config)
    except RtganError as e:
        raise type(e)(f"{path}: {e}") from None
    except Exception as e:  # a config that passes its checks but builds no model
        raise CheckpointError(f"{path}: the config builds no model: {type(e).__name__}: {e}") from None


def load(directory: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Load a model written by `save` (eval mode, fp32 parameters)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    meta = read_config(directory)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{directory}: {WEIGHTS} is missing")
    digest = meta.get("sha256", {}).get(WEIGHTS)
    try:
        if digest is not None and _sha256(weights) != digest:
            raise CheckpointError(f"{weights}: SHA-256 does not match {CONFIG} (corrupted or modified file)")
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{weights}: unreadable safetensors file: {e}") from None
    try:
        config = make_config(meta["arch"], **meta["config"])
    except RtganError as e:
        raise type(e)(f"{directory / CONFIG}: {e}") from None
    except Exception as e:  # e.g. a config whose options do not fit together
        raise CheckpointError(f"{directory / CONFIG}: not a valid {meta['arch']} config: {e}") from None
    # the options are checked against the file's shapes on a model without storage first, so that a
    # config.json with huge widths fails here instead of allocating them
    with torch.device("meta"):
        skeleton = _build(config, directory / CONFIG)
    if not meta.get("encoder", True) and getattr(skeleton, "encoder", None) is not None:
        skeleton.encoder = None
    check_keys(state_shapes(skeleton.state_dict()), state_shapes(state), what=str(weights), hints=[])
    check_dtypes(skeleton.state_dict(), state, what=str(weights))
    model = _build(config, directory / CONFIG)
    if not meta.get("encoder", True) and getattr(model, "encoder", None) is not None:
        model.encoder = None
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
