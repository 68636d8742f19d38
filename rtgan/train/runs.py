"""What a training run directory holds, named without PyTorch: the commands that take a `--run`
check it before importing anything heavy."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError

CHECKPOINT = "checkpoint"  # OUT/checkpoint: generator/, the two files below
META = "train_state.json"  # step, train_config, optimizer scalars...
STATE = "train_state.safetensors"  # discriminator and optimizer tensors


def check_run(run: str | os.PathLike, option: str = "--run") -> Path:
    """`run` as a Path once it holds a training checkpoint; else a ConfigError saying what it is."""
    run = Path(run)
    if not (run / CHECKPOINT / META).is_file():
        found = "no such folder" if not run.is_dir() else f"no {CHECKPOINT}/{META} in it"
        raise ConfigError(f"{option} {run}: not a training run ({found}); give the --out of `python -m rtgan.train`")
    return run
