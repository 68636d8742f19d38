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
