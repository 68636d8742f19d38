"""Exact boundary-sparse SPADE modulation (CPU path, plain PyTorch).

SPADE's gamma and beta at a pixel depend only on the semantic map in the 5x5 window around it
(two 3x3 convolutions). Where that window lies inside the image and holds one class and no
instance edge, gamma and beta are a function of the class alone: a per-class table computed once
from the weights. Only the pixels near label boundaries, instance edges and the image border run
the convolutions, and those run as gathers: the first convolution's input is one-hot, so its
output at a pixel is a sum of 9 weight columns picked by the labels around it; the second is one
matmul over the boundary pixels' 3x3 neighbourhoods. Equal to the dense path up to float rounding.

`SparseSPADE` wraps a `SPADE` layer; `sparsify(model)` swaps every SPADE layer of a generator.
Each call measures the boundary density and falls back to the dense layer above `max_density`,
where the gathers cost more than the convolutions they replace.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SparseSPADE(nn.Module):
    def __init__(self, spade: nn.Module, num_classes: int, max_density: float = 0.5):
        super().__init__()
        self.spade, self.num_classes, self.max_density = spade, num_classes, max_density
        conv1 = spade.mlp_shared[0]
        if conv1.kernel_size != (3, 3) or spade.mlp_gamma.kernel_size != (3, 3):
            raise ValueError("boundary-sparse SPADE is written for 3x3 modulation convolutions")
        self.has_edge = conv1.in_channels == num_classes + 1
        w1 = conv1.weight.detach()  # (hidden, K[+1], 3, 3)
        hidden = w1.shape[0]
        # per tap, per input channel: the hidden-layer contribution; one extra zero row for outside the image
        self.w1 = torch.cat([w1.permute(2, 3, 1, 0).reshape(9, -1, hidden), w1.new_zeros(9, 1, hidden)], 1)
        self.b1 = conv1.bias.detach()
        wg, wb = spade.mlp_gamma.weight.detach(), spade.mlp_beta.weight.detach()
        # (9 * hidden, 2C): gamma and beta in one matmul, rows ordered tap-major as the gathered patches
        self.w2 = torch.cat([wg, wb], 0).permute(2, 3, 1, 0).reshape(9 * hidden, -1)
        self.b2 = torch.cat([spade.mlp_gamma.bias.detach(), spade.mlp_beta.bias.detach()])
        # the tables: a pixel whose whole 5x5 window is class k sees 9 copies of the same column per layer
        pure = torch.relu(self.w1[:, :num_classes].sum(0) + self.b1)  # (K, hidden)
        self.table = pure @ self.w2.view(9, hidden, -1).sum(0) + self.b2  # (K, 2C)

    def modulation(self, labels: torch.Tensor, edges: torch.Tensor | None, boundary: torch.Tensor | None = None):
        """labels (B, H, W) class indices [, edges (B, H, W) 0/1] -> gamma, beta (B, C, H, W) (channels-last views)."""
        b, h, w = labels.shape
        c2 = self.table.shape[1]
        if boundary is None:
            boundary = self.boundary(labels, edges)
        # (2C, B*H*W): every pixel from the table, gathered straight into channel-major order
        out = torch.index_select(self.table.T, 1, labels.flatten())
        at = boundary.nonzero()  # (S, 3): b, y, x of the pixels that need the convolutions
        if len(at):
            out[:, (at[:, 0] * h + at[:, 1]) * w + at[:, 2]] = self._convolved(labels, edges, boundary, at).T
        out = out.view(c2, b, h, w).transpose(0, 1)
        return out[:, : c2 // 2], out[:, c2 // 2 :]

    def boundary(self, labels: torch.Tensor, edges: torch.Tensor | None) -> torch.Tensor:
        """(B, H, W) bool: pixels whose 5x5 window is not one class without edges, inside the image."""
        lab = labels.float()[:, None]
        mask = (F.max_pool2d(lab, 5, 1, 2) != -F.max_pool2d(-lab, 5, 1, 2))[:, 0]
        if edges is not None:
            mask |= F.max_pool2d(edges.float()[:, None], 5, 1, 2)[:, 0] > 0
        mask[:, :2], mask[:, -2:], mask[:, :, :2], mask[:, :, -2:] = True, True, True, True
        return mask

    def _convolved(self, labels, edges, boundary, at: torch.Tensor) -> torch.Tensor:
        b, h, w = labels.shape
        hid = self.w1.shape[2]
        zero_row = self.w1.shape[1] - 1  # index of the all-zero weight row: outside the image
        # layer 1 once per pixel of S1 = the boundary pixels' 3x3 neighbourhoods (inside the image)
        ring = F.max_pool2d(boundary.float()[:, None], 3, 1, 1)[:, 0] > 0
        s1 = ring.nonzero()
        bb, y, x = s1[:, 0], s1[:, 1] + 2, s1[:, 2] + 2
        pad_lab = F.pad(labels, (2, 2, 2, 2), value=zero_row)
        pad_edge = F.pad(edges.float(), (2, 2, 2, 2)) if edges is not None else None
        acc = self.b1.expand(len(s1), hid).clone()
        for t in range(9):
            dy, dx = t // 3 - 1, t % 3 - 1
            acc += self.w1[t][pad_lab[bb, y + dy, x + dx]]
            if pad_edge is not None:
                acc += pad_edge[bb, y + dy, x + dx][:, None] * self.w1[t, zero_row - 1]
        hidden = torch.cat([torch.relu(acc), acc.new_zeros(1, hid)])  # last row: zero padding of layer 2
        # where each S1 pixel's activations sit; everything else (incl. outside the image) -> the zero row
        row = torch.full((b, h + 2, w + 2), len(s1), dtype=torch.long, device=labels.device)
        row[s1[:, 0], s1[:, 1] + 1, s1[:, 2] + 1] = torch.arange(len(s1), device=labels.device)
        # layer 2: one matmul of each boundary pixel's 3x3 patch of hidden activations (tap-major)
        bb, y, x = at[:, 0], at[:, 1] + 1, at[:, 2] + 1
        taps = torch.stack([row[bb, y + t // 3 - 1, x + t % 3 - 1] for t in range(9)], 1)  # (S, 9)
        return hidden[taps].view(len(at), 9 * hid) @ self.w2 + self.b2

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        seg = F.interpolate(seg, size=x.shape[2:], mode="nearest")
        labels = seg[:, : self.num_classes].argmax(1)
        edges = seg[:, self.num_classes] if self.has_edge else None
        boundary = self.boundary(labels, edges)
        if boundary.float().mean() > self.max_density:  # too many boundaries: dense convolutions are cheaper
            return self.spade(x, seg)
        gamma, beta = self.modulation(labels, edges, boundary)
        return torch.addcmul(beta, self.spade.param_free_norm(x), gamma.add_(1))


def sparsify(model: nn.Module, max_density: float = 0.5) -> nn.Module:
    """Swap every SPADE layer of a SPADE generator for its boundary-sparse form (in place)."""
    from ..models.spade import SPADE

    k = model.config.num_classes
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, SPADE):
                setattr(module, child_name, SparseSPADE(child, k, max_density))
    return model
