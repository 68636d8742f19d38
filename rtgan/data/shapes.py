"""A tiny labelled image set a classic GAN learns in a few hundred steps, drawn here (no download).

Class k of n is one soft blob on a circle around the centre, at the angle 2*pi*k/n; each sample
jitters the position a little and draws the blob's width from a range (a continuous factor, the
kind InfoGAN's codes pick up), adds pixel noise and, in colour, tints it by class. Pixels are in
[-1, 1] on a -1 background, as the reference scripts' `Normalize(0.5, 0.5)` leaves MNIST.

    data = blobs(n_per_class=64, n_classes=10, size=32, channels=1, seed=0)
    images, labels = data.tensors   # float32 (N, C, size, size) in [-1, 1], int64 (N,) in 0..n-1

Deterministic per seed; 640 32x32 images take a few milliseconds.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import TensorDataset


def blobs(
    n_per_class: int = 64,
    n_classes: int = 10,
    size: int = 32,
    channels: int = 1,
    seed: int = 0,
    *,
    noise: float = 0.05,
    jitter: float = 0.03,
    width: tuple[float, float] = (0.06, 0.12),
) -> TensorDataset:
    """`n_per_class` images of each class, classes interleaved (0, 1, ..., n-1, 0, 1, ...).

    `jitter` (centre offset) and `width` (the blob's sigma) are fractions of `size`.
    """
    if n_per_class < 1 or n_classes < 1 or size < 4 or channels not in (1, 3):
        raise ValueError(f"blobs: need n_per_class, n_classes >= 1, size >= 4, channels 1 or 3; got "
                         f"{n_per_class}, {n_classes}, {size}, {channels}")  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    n = n_per_class * n_classes
    labels = torch.arange(n) % n_classes
    angle = 2 * math.pi * labels.float() / n_classes
    centre = (size - 1) / 2 + 0.3 * size * torch.stack((torch.sin(angle), -torch.cos(angle)), 1)  # (n, [y, x])
    centre = centre + jitter * size * torch.randn(n, 2, generator=g)
    sigma = size * (width[0] + (width[1] - width[0]) * torch.rand(n, generator=g))
    grid = torch.arange(size, dtype=torch.float32)
    dy = grid[None, :, None] - centre[:, 0, None, None]
    dx = grid[None, None, :] - centre[:, 1, None, None]
    blob = torch.exp(-(dy**2 + dx**2) / (2 * sigma[:, None, None] ** 2))  # (n, H, W) in [0, 1]
    if channels == 3:
        phase = angle[:, None] + 2 * math.pi * torch.arange(3) / 3
        tint = 0.6 + 0.4 * torch.cos(phase)  # (n, 3): each class its own colour
        blob = blob[:, None] * tint[:, :, None, None]
    else:
        blob = blob[:, None]
    images = -1 + 2 * blob + noise * torch.randn(blob.shape, generator=g)
    return TensorDataset(images.clamp(-1, 1).contiguous(), labels)
