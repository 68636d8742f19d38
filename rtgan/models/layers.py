"""Small building blocks shared by the generators."""

from __future__ import annotations

import re

from torch import nn
from torch.nn.utils import spectral_norm

from ..errors import ConfigError

_PLAIN_NORMS = {
    "instance": lambda c: nn.InstanceNorm2d(c, affine=False),
    "instanceaffine": lambda c: nn.InstanceNorm2d(c, affine=True),
    "batch": lambda c: nn.BatchNorm2d(c, affine=True),
    # SyncBatchNorm has BatchNorm2d's state-dict layout and, in eval mode, its arithmetic.
    "syncbatch": lambda c: nn.BatchNorm2d(c, affine=True),
    "sync_batch": lambda c: nn.BatchNorm2d(c, affine=True),
}


def parse_norm(norm: str) -> tuple[bool, str]:
    """'spectralinstance' -> (True, 'instance'); accepts the official names and 'none'."""
    m = re.fullmatch(r"(spectral)?(\w*)", norm)
    kind = m.group(2) if m else None
    if kind not in _PLAIN_NORMS and kind not in ("none", ""):
        raise ConfigError(f"unknown norm {norm!r}: expected [spectral]{{{', '.join(_PLAIN_NORMS)}, none}}")
    return bool(m.group(1)), kind


def conv_norm(conv: nn.Conv2d, norm: str) -> nn.Module:
    """Wrap a conv as the official `get_nonspade_norm_layer` does.

    The result is the (spectral-normed) conv alone for 'none', else `Sequential(conv, norm)` with
    the conv's bias dropped, because a bias before a normalization has no effect. Key layout
    (`N.0.weight_orig`, `N.1.running_mean`, ...) therefore matches official checkpoints.
    """
    spectral, kind = parse_norm(norm)
    if spectral:
        conv = spectral_norm(conv)
    if kind in ("none", ""):
        return conv
    if conv.bias is not None:
        del conv.bias
        conv.register_parameter("bias", None)
    return nn.Sequential(conv, _PLAIN_NORMS[kind](conv.out_channels))
