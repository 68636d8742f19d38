"""Boundary-sparse SPADE as an exportable graph: `rtgan.kernels.sparse_spade` in ONNX operators.

The math is `SparseSPADE`'s (exact): where a pixel's 5x5 label window is one class, has no instance
edge and lies inside the image, the layer's [scale | shift] is a per-class table row; only the
boundary pixels run the two 3x3 convolutions. Here every data-dependent step is an ONNX operator
that ONNX Runtime and OpenVINO run on the CPU, so the set of boundary pixels changes per input
while the graph stays fixed:

- boundary mask: MaxPool 5x5 of the label ids (max != min) | MaxPool of the edges | the border;
- the pixels that need the convolutions: NonZero on the flattened mask (S of them), and on the mask
  dilated by 3x3 (the S1 pixels whose hidden activations layer 2 reads);
- layer 1 at S1: Gather of the 3x3 neighbourhoods of the (NHWC, zero-padded) semantic map, one
  MatMul with the conv's weights (im2col restricted to S1);
- layer 2 at S: an index map (ScatterND of 1..S1 into zeros; 0 = the zero row, i.e. the conv's
  zero padding) turns each boundary pixel's 3x3 neighbours into rows of the hidden activations,
  one Gather and one MatMul;
- every pixel's row: its class id, ScatterND'ed to K + i for the i-th boundary pixel; one Gather of
  [class table; boundary results] and `x * scale + shift` (batch norm folded in as in SparseSPADE).

Everything is computed in a zero-padded (h + 2) x (w + 2) grid, so neighbour offsets are constants.
Layers below `min_pixels` pixels stay dense (`FastSPADE`): at 4x8..32x64 nearly every pixel is
near a boundary or the border. The choice is made per layer at export (the size is fixed); there
is no per-input fallback to dense, so a map dense in boundaries (a checkerboard) pays the gathers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..kernels.sparse_spade import SparseSPADE
from ..models.spade import SPADE
from .graph import GeneratorGraph
from .rewrite import DEFAULT, FastSPADE, fold_spectral_norm, frozen_copy, replace_modules

TAPS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]  # tap-major order of the weight rows


class SparseSPADEGraph(nn.Module):
    """`spade` (a SPADE layer, spectral norm folded) with boundary-sparse modulation in ONNX ops.

    `shared`: one dict for all layers of a generator, so the maps and index sets of a resolution
    are computed once per forward (in the exported graph: once per resolution)."""

    def __init__(self, spade: SPADE, num_classes: int, shared: dict, min_pixels: int = 64 * 128):
        super().__init__()
        sparse = SparseSPADE(spade, num_classes)  # the class table and the folded layer-2 weights
        self.num_classes, self.shared, self.min_pixels = num_classes, shared, min_pixels
        self.has_edge, self.fold_norm = sparse.has_edge, sparse.fold_norm
        self.norm = spade.param_free_norm
        self.dense = FastSPADE(spade, DEFAULT)
        conv1 = spade.mlp_shared[0]
        self.register_buffer("w1", conv1.weight.detach().permute(2, 3, 1, 0).reshape(-1, conv1.out_channels).clone())
        self.register_buffer("b1", sparse.b1.clone())
        self.register_buffer("w2", sparse.w2)  # (9 * hidden, 2C), tap-major
        self.register_buffer("b2", sparse.b2)
        self.register_buffer("table", sparse.table)  # (K, 2C)

    def maps(self, seg: torch.Tensor, h: int, w: int) -> dict:
        """The padded semantic rows, boundary / ring positions and index maps at h x w (cached)."""
        shared = self.shared
        if shared.get("seg") is not seg:
            shared.clear()
            shared["seg"] = seg
        if (h, w) in shared:
            return shared[(h, w)]
        k, wp = self.num_classes, w + 2
        s = seg.shape[2] // h  # nearest resizing by an integer factor is a strided slice
        seg = seg[:, :, ::s, ::s] if s > 1 else seg
        lab = seg[:, :k].argmax(1, keepdim=True).float()
        mask = F.max_pool2d(lab, 5, 1, 2) != -F.max_pool2d(-lab, 5, 1, 2)
        if self.has_edge:
            mask = mask | (F.max_pool2d(seg[:, k : k + 1], 5, 1, 2) > 0)
        border = torch.ones(h, w, dtype=torch.bool)
        border[2:-2, 2:-2] = False  # a constant of the graph
        mask = (mask | border).float()
        ring = F.max_pool2d(mask, 3, 1, 1)
        # positions in the zero-padded grid, flattened over (batch, h + 2, w + 2)
        at = F.pad(mask, (1, 1, 1, 1)).flatten().nonzero()[:, 0]  # (S,)
        at1 = F.pad(ring, (1, 1, 1, 1)).flatten().nonzero()[:, 0]  # (S1,)
        offsets = torch.tensor([dy * wp + dx for dy, dx in TAPS])
        # index map: S1 pixel i -> hidden row i + 1; row 0 is zero (outside the ring and the image)
        hidden_row = torch.zeros_like(F.pad(lab, (1, 1, 1, 1)).flatten(), dtype=torch.long)
        hidden_row = hidden_row.index_put((at1,), torch.ones_like(at1).cumsum(0))
        # every pixel's row of [class table; boundary results]: its class, or K + i for boundary pixel i
        rows = F.pad(lab, (1, 1, 1, 1)).flatten().long().index_put((at,), torch.ones_like(at).cumsum(0) + (k - 1))
        seg_rows = F.pad(seg, (1, 1, 1, 1)).permute(0, 2, 3, 1).reshape(-1, seg.shape[1])  # NHWC, zero-padded
        shared[(h, w)] = m = {
            "patches1": seg_rows[at1[:, None] + offsets].flatten(1),  # (S1, 9 * semantic_nc)
            "taps2": hidden_row[at[:, None] + offsets],  # (S, 9) rows of the hidden activations
            "rows": rows.view(-1, h + 2, wp)[:, 1:-1, 1:-1],  # (B, h, w)
        }
        return m

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        if h * w < self.min_pixels:
            return self.dense(x, seg)
        m = self.maps(seg, h, w)
        hidden = torch.relu(m["patches1"] @ self.w1 + self.b1)
        hidden = torch.cat([hidden.new_zeros(1, hidden.shape[1]), hidden])
        boundary = hidden[m["taps2"]].flatten(1) @ self.w2 + self.b2  # (S, 2C)
        scale_shift = torch.cat([self.table, boundary])[m["rows"]].permute(0, 3, 1, 2)  # (B, 2C, h, w)
        x = x if self.fold_norm else self.norm(x)
        return x * scale_shift[:, :c] + scale_shift[:, c:]


def sparse_inference_graph(model: nn.Module, height: int, width: int, min_pixels: int = 64 * 128) -> GeneratorGraph:
    """The engine graph of a SPADE generator with boundary-sparse modulation (label ids -> uint8 image)."""
    if getattr(model.config, "noise_nc", 0):
        raise ConfigError("the sparse graph needs flat label regions; a noise_nc model's input varies at every pixel")
    model.config.check_size(height, width)
    model = fold_spectral_norm(frozen_copy(model))
    k, shared = model.config.num_classes, {}
    replace_modules(model, lambda m: SparseSPADEGraph(m, k, shared, min_pixels) if isinstance(m, SPADE) else None)
    return GeneratorGraph(model, height, width).eval()
