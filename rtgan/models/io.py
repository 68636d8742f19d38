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

from .. import __version__
from ..errors import CheckpointError
from ..utils.atomic import atomic_dir
from .official import check_keys, state_shapes
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
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: corrupted JSON: {e}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format {meta.get('format')!r} v{meta.get('format_version')} is not {FORMAT!r} v{FORMAT_VERSION}"
        )
    return meta


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
    if digest is not None and _sha256(weights) != digest:
        raise CheckpointError(f"{weights}: SHA-256 does not match {CONFIG} (corrupted or modified file)")
    model = build(make_config(meta["arch"], **meta["config"]))
    if not meta.get("encoder", True) and getattr(model, "encoder", None) is not None:
        model.encoder = None
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights}: unreadable safetensors file: {e}") from None
    check_keys(state_shapes(model.state_dict()), state_shapes(state), what=str(weights), hints=[])
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
