"""Training checkpoints: generator in rtgan's model format plus discriminator and optimizer state.

Everything is safetensors + JSON (no pickle), written atomically as one directory, so a run
killed mid-save resumes from the previous checkpoint. RNG state is not stored: each step seeds
itself from (seed, rank, step), which makes a resumed run repeat an uninterrupted one exactly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..models import io as model_io
from ..utils.atomic import atomic_dir
from .runs import META, STATE


def _optimizer_split(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_join(prefix: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[name] = v
    for idx, st in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(st)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    directory: str | os.PathLike,
    generator: nn.Module,
    discriminator: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    meta: dict[str, Any],
) -> Path:
    """Write generator/, the discriminator and optimizer tensors, and `meta` (step, config...) atomically."""
    from safetensors.torch import save_file

    directory = Path(directory)
    tensors = {f"D.{k}": v.detach().cpu().contiguous() for k, v in discriminator.state_dict().items()}
    opt_meta = {}
    for name, opt in optimizers.items():
        t, m = _optimizer_split(opt, name)
        tensors.update(t)
        opt_meta[name] = m
    with atomic_dir(directory) as tmp:
        model_io.save(generator, tmp / "generator")
        save_file(tensors, str(tmp / STATE))
        (tmp / META).write_text(json.dumps({**meta, "optimizers": opt_meta}, indent=2) + "\n")
    return directory


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's meta (step, train_config...) alone: what resuming checks before loading tensors."""
    path = Path(directory) / META
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{directory}: unreadable training checkpoint ({e})") from e


def _mismatch(directory: Path, what: str, error: RuntimeError) -> CheckpointError:
    """One line for a state dict that does not fit (torch lists every key, often dozens of lines)."""
    lines = [s.strip() for s in str(error).splitlines() if s.strip()]
    first = lines[1] if len(lines) > 1 else lines[0] if lines else ""
    more = f"; {len(lines) - 2} more" if len(lines) > 2 else ""
    return CheckpointError(
        f"{directory}: the saved {what} does not fit this run's ({first[:200]}{more}); "
        "resume with the flags the run was started with, or train into a new --out"
    )


def read_state(directory: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A checkpoint's meta and its discriminator/optimizer tensors, as stored."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return json.loads((directory / META).read_text()), load_file(str(directory / STATE))
    except (OSError, ValueError, SafetensorError) as e:
        raise CheckpointError(f"{directory}: unreadable training checkpoint ({e})") from e


def load_checkpoint(
    directory: str | os.PathLike,
    generator: nn.Module,
    discriminator: nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
) -> dict[str, Any]:
    """Restore the objects in place from `save_checkpoint`'s directory; returns its meta.

    A checkpoint carried without optimizer state (`tools/carry.py`) leaves the optimizers fresh.
    """
    directory = Path(directory)
    meta, tensors = read_state(directory)
    saved = model_io.load(directory / "generator")
    try:
        generator.load_state_dict(saved.state_dict())
    except RuntimeError as e:
        raise _mismatch(directory, "generator", e) from e
    d_state = {k[2:]: v for k, v in tensors.items() if k.startswith("D.")}
    try:
        discriminator.load_state_dict(d_state)
    except RuntimeError as e:
        raise _mismatch(directory, "discriminator", e) from e
    if "optimizers" not in meta:  # carried across sessions without it (tools/carry.py): optimizers restart
        return meta
    for name, opt in optimizers.items():
        if name not in meta["optimizers"]:
            raise CheckpointError(f"{directory}: no state for optimizer {name!r}")
        opt.load_state_dict(_optimizer_join(name, tensors, meta["optimizers"][name]))
    return meta
