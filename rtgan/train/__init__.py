"""Training: multi-scale discriminator, SPADE's losses, checkpoints that resume, DDP; paired
image-to-image (pix2pix) in the same loop, unpaired CycleGAN and MUNIT in `rtgan.train.cyclegan` /
`rtgan.train.munit`.

The names below are imported on first use: `python -m rtgan.train[.command]` imports this package
first, and must check its arguments before PyTorch is loaded.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "CycleGANTrainConfig": "cyclegan",
    "CycleGANTrainer": "cyclegan",
    "MUNITTrainConfig": "munit",
    "MUNITTrainer": "munit",
    "ClassicRun": "classic",
    "train_classic": "classic",
    "DiscriminatorConfig": "discriminator",
    "MultiscaleDiscriminator": "discriminator",
    "TrainConfig": "trainer",
    "Trainer": "trainer",
    "train": "trainer",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
