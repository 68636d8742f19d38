"""Inference graphs: a generator's declared inputs in, uint8 RGB image out.

The graph wraps the model's own forward: `prepare_inputs` (label ids -> one-hot and instance
edges, class ids -> one-hot, ...) before it, the uint8 conversion after it, and the inference
rewrites (`rewrite.apply_rewrites`) as module replacements inside it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .rewrite import DEFAULT, Rewrites, apply_rewrites, fold_spectral_norm, frozen_copy, to_uint8


class GeneratorGraph(nn.Module):
    """The engine's inputs, in signature order -> `prepare_inputs` -> the model's forward -> uint8 image."""

    def __init__(self, model: nn.Module, height: int, width: int):
        super().__init__()
        self.model = model
        self.signature = model.signature()
        self.height, self.width = height, width

    def input_names(self) -> list[str]:
        return [i.name for i in self.signature.inputs]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        image = self.model(*self.model.prepare_inputs(**dict(zip(self.input_names(), inputs))))
        return image if image.dtype == torch.uint8 else to_uint8(image)  # a fused kernel may write uint8 itself


def inference_graph(model: nn.Module, height: int, width: int, rewrites: Rewrites = DEFAULT) -> GeneratorGraph:
    """The exportable inputs -> uint8-image module for `model` at a fixed size."""
    if not (hasattr(model, "signature") and hasattr(model, "prepare_inputs")):
        raise ConfigError(
            f"{type(model).__name__} cannot be exported: declare signature() (rtgan.signature.Signature) "
            "and prepare_inputs(**inputs) -> the tensors its forward takes"
        )
    check = getattr(getattr(model, "config", None), "check_size", None) or model.signature().check_size
    check(height, width)
    return GeneratorGraph(apply_rewrites(frozen_copy(model), rewrites), height, width).eval()


class StyleEncoderGraph(nn.Module):
    """SPADE's VAE encoder on a uint8 RGB style image (B, H, W, 3), any size -> mu (B, z_dim).

    The mean is the style code: sampling around it is the caller's choice (`Engine.run(z=...)`).
    """

    def __init__(self, model: nn.Module, fold_spectral: bool = True):
        super().__init__()
        if getattr(model, "encoder", None) is None:
            raise ConfigError("this model has no style encoder (use_vae=False, or loaded without latest_net_E.pth)")
        self.encoder = frozen_copy(model).encoder
        if fold_spectral:
            fold_spectral_norm(self.encoder)

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        x = style.float().permute(0, 3, 1, 2) / 127.5 - 1
        # the encoder resizes to 256x256 only when needed; a traced graph must always resize
        # (bilinear to the same size is the identity, so 256x256 inputs are unchanged)
        x = F.interpolate(x, size=(256, 256), mode="bilinear")
        return self.encoder(x)[0]
