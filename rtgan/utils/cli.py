"""Command-line helpers shared by the rtgan commands."""

from __future__ import annotations

import json
from typing import Any


def parse_value(text: str) -> Any:
    """'4' -> 4, 'true'/'True' -> True, 'none' -> None, anything else stays a string."""
    named = {"true": True, "false": False, "none": None, "null": None}
    if text.lower() in named:
        return named[text.lower()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_size(text: str) -> tuple[int, int]:
    """'256x512' -> (256, 512): height x width, as every rtgan command writes sizes."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"a size is HEIGHTxWIDTH, e.g. 256x512; got {text!r}") from None
    if h <= 0 or w <= 0:
        raise SystemExit(f"a size must be positive, got {text!r}")
    return h, w


def parse_sets(items: list[str]) -> dict[str, Any]:
    """['ngf=4', 'use_vae=true'] -> {'ngf': 4, 'use_vae': True}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        out[key] = parse_value(value)
    return out


def load_model(
    arch: str | None, weights: str | None, preset: str | None, sets: dict[str, Any], height: int, width: int
):
    """A generator from an official .pth, an rtgan model directory, or (no weights) realistic random weights."""
    from pathlib import Path

    from .. import models
    from ..errors import ConfigError
    from ..models.init import randomize_like_trained

    if weights and Path(weights).is_dir():
        return models.load(weights), weights
    if preset:
        p = models.get_preset(preset)
        if arch and arch != p.arch:
            raise ConfigError(f"preset {preset!r} is a {p.arch} preset, not {arch}")
        arch = p.arch
    if not arch:
        raise ConfigError("give --arch or --preset (or --weights pointing at an rtgan model directory)")
    if weights:
        return models.load_official(arch, weights, preset=preset, **sets), weights
    config = models.get_preset(preset).config(**sets) if preset else models.make_config(arch, **sets)
    return randomize_like_trained(models.build(config), height, width), "random weights (no --weights)"
