"""Weights of a generator for the same generator with more noise channels, painting the same.

The new noise inputs get zero weights: in SPADE and pix2pixHD every conv that reads the semantic
map gains input channels; in ASAPNet the low-res stream's last conv gains the outputs that become
the MLPs' weights for the new inputs; pix2pixHD's decoder-noise convs (noise_decoder) are new
weights, all zero. Used by `tools/add_noise.py` (a run) and `--init-from` (a saved model).
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from ..models import build


def _insert(t: torch.Tensor, shape: torch.Size, dim: int, at: int, name: str) -> torch.Tensor:
    """Insert zeros into `t` along `dim` at index `at` up to `shape`."""
    if dim >= t.dim() or t.dim() != len(shape):
        raise ConfigError(f"{name}: cannot widen {tuple(t.shape)} to {tuple(shape)}")
    n = shape[dim] - t.shape[dim]
    rest = [d for i, (d, e) in enumerate(zip(t.shape, shape)) if i != dim and d != e]
    if n < 0 or rest or at > t.shape[dim]:
        raise ConfigError(f"{name}: cannot widen {tuple(t.shape)} to {tuple(shape)}")
    zeros = t.new_zeros(*[n if i == dim else d for i, d in enumerate(t.shape)])
    return torch.cat([t.narrow(dim, 0, at), zeros, t.narrow(dim, at, t.shape[dim] - at)], dim)


def widen(t: torch.Tensor, shape: torch.Size, name: str, old, new) -> torch.Tensor:
    """`t` (a weight or its Adam moment) of a generator with config `old`, for one with config `new`
    that differs in noise_nc only: the new inputs' weights are zero, so it paints the same."""
    if t.shape == shape:
        return t
    if old.arch != "asapnet":  # noise channels come last in the semantic map: conv input channels
        return _insert(t, shape, 1, t.shape[1] if t.dim() > 1 else 0, name)
    # ASAPNet: the low-res stream predicts [bias, weight (cin-major)] of the MLPs' first layer; the
    # noise inputs are rows after the one-hot (and edge) rows, so their weights are outputs there
    hidden = old.mlp_channels[1]
    first_noise = old.mlp_channels[0] - 4 * int(math.log2(old.tile_size)) * (old.hr_coor == "cosine")
    return _insert(t, shape, 0, hidden * (1 + first_noise), name)


def widened_state(old_model, new_config) -> dict[str, torch.Tensor]:
    """`old_model`'s state for a model built from `new_config`: old's config with more noise_nc
    (and, for pix2pixHD, noise_decoder turned on: its 1x1 noise convs start at zero)."""
    old = old_model.config
    noise = {"noise_nc": new_config.noise_nc}
    if old.arch == "pix2pixhd":
        noise["noise_decoder"] = new_config.noise_decoder
        if old.noise_decoder and not new_config.noise_decoder:
            raise ConfigError("cannot remove the decoder noise (noise_decoder True -> False)")
    if old.arch not in ("spade", "pix2pixhd", "asapnet") or old.replace(**noise) != new_config:
        raise ConfigError(f"only noise_nc (and pix2pixHD's noise_decoder) may differ between {old} and {new_config}")
    if new_config.noise_nc < old.noise_nc:
        raise ConfigError(f"cannot remove noise channels ({old.noise_nc} -> {new_config.noise_nc})")
    new_state = build(new_config).state_dict()
    state = {k: widen(v, new_state[k].shape, k, old, new_config) for k, v in old_model.state_dict().items()}
    return {k: state[k] if k in state else torch.zeros_like(v) for k, v in new_state.items()}
