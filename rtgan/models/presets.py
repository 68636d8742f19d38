"""Presets as models: the table lives in `rtgan.presets` (torch-free); this adds the builder."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..presets import PRESETS, Preset, get_preset, list_presets
from .registry import build

__all__ = ["PRESETS", "Preset", "get_model", "get_preset", "list_presets"]


def get_model(name: str, **overrides: Any) -> nn.Module:
    """A randomly initialised generator of preset `name`, options overridden by keyword (eval mode)."""
    return build(get_preset(name).config(**overrides))


ARCH_NAMES = {"spade": "SPADE", "asapnet": "ASAPNet", "pix2pixhd": "pix2pixHD", "dcgan": "DCGAN",
              "dcgan-pytorch-gan": "DCGAN", "cgan": "conditional GAN", "infogan": "InfoGAN",
              "pix2pix": "pix2pix", "cyclegan": "CycleGAN", "munit": "MUNIT", "stylegan": "StyleGAN",
              "oasis": "OASIS", "sean": "SEAN"}  # fmt: skip


def preset_signature(name: str):
    """The signature of preset `name`'s generator, built without weights (on the meta device)."""
    import torch

    with torch.device("meta"):
        return get_model(name).signature()


def markdown_table() -> str:
    """The README's preset table: each row's inputs and output read from the generator's signature."""
    rows = ["| preset | architecture | inputs → output | notes |", "|---|---|---|---|"]
    for p in PRESETS.values():
        cells = [f"`{p.name}`", ARCH_NAMES.get(p.arch, p.arch), preset_signature(p.name).describe(), p.notes]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
