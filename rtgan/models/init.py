"""Weight initialisation as the official `BaseNetwork.init_weights` (SPADE, ASAPNet)."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def init_weights(model: nn.Module, kind: str = "xavier", gain: float = 0.02) -> nn.Module:
    """Conv/Linear weights ~ `kind`(gain), biases 0; batch-norm scales ~ N(1, gain), shifts 0.

    PyTorch's default init saturates the final tanh of these deep generators; this one does not.
    A spectral-normed layer's `weight_orig` is initialised in place of `weight`.
    """
    inits = {
        "xavier": lambda w: nn.init.xavier_normal_(w, gain=gain),
        "xavier_uniform": lambda w: nn.init.xavier_uniform_(w, gain=1.0),
        "kaiming": lambda w: nn.init.kaiming_normal_(w, a=0, mode="fan_in"),
        "orthogonal": lambda w: nn.init.orthogonal_(w, gain=gain),
        "normal": lambda w: nn.init.normal_(w, 0.0, gain),
    }
    if kind not in inits:
        raise ValueError(f"unknown init {kind!r}; choose one of {list(inits)}")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            inits[kind](getattr(m, "weight_orig", m.weight))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model
