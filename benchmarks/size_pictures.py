"""Each bundled model's painting of the same scene at 256x256 (its training size) and at 512x512,
side by side, with three numbers that say whether the 512 painting falls apart.

    python benchmarks/size_pictures.py --out benchmarks/results/size

One picture per model, size_512-MODEL.png (rows: scenes; columns: labels | 256 shown 2x nearest |
512), stored with a 256-colour palette (about 37 dB of the lossless picture, under 1 MB instead of
2-3), and the numbers in size_512.json. Needs the `torch`, `demo` (OpenCV) and `train` (pillow)
extras. Eager PyTorch on the CPU, no export, about a minute.

The 512 label map is the 256 map enlarged 2x nearest, so it is the same scene:
`landscapes.layout(seed, 512, 512)` seeds its generator with the size and draws another landscape.

landscape-spade is a VAE model: its `fc` maps z to a latent grid fixed at the training size (8x8),
so as shipped it refuses 512. Its 512 column enlarges that grid 2x nearest (`_spade_at`): the
smallest change that lets it paint 512, and what the demo would need to offer it there.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from rtgan import weights
from rtgan.data import landscapes
from rtgan.errors import InputError
from rtgan.export.rewrite import to_uint8
from rtgan.models import load
from rtgan.models.labels import draw_noise
from rtgan.scenes import colorize

SEEDS = (31, 26, 36)  # a meadow under mountains (precision_pictures' scene), a coast, a lake
TILE = 16  # ASAPNet's tile: its position code repeats every 16 px at either size


def _caption(image: np.ndarray, text: str) -> np.ndarray:
    """White text outlined in black. The outline is the text shifted a pixel each way: a thicker
    stroke would not do, as OpenCV's glyph advance grows with thickness (the two would drift apart)."""
    out = image.copy()
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            cv2.putText(out, text, (6 + dx, 18 + dy), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class _GridUpsample(nn.Module):
    """SPADE's `fc` followed by a 2x nearest enlargement of the latent grid it fills."""

    def __init__(self, fc: nn.Linear, channels: int, grid: tuple[int, int]):
        super().__init__()
        self.fc, self.channels, self.grid = fc, channels, grid

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.channels, *self.grid)
        return nn.functional.interpolate(x, scale_factor=2, mode="nearest").flatten(1)


def _spade_at(model: nn.Module) -> nn.Module:
    """A copy of a VAE SPADE that paints twice its training size (its config says so, and its
    latent grid is enlarged to match); the weights are shared, not copied."""
    big = copy.copy(model)  # a shallow copy: the same submodules, its own attributes
    c = model.config
    big._modules = dict(model._modules, fc=_GridUpsample(model.fc, 16 * c.ngf, c.latent_size))
    big.config = dataclasses.replace(c, crop_size=2 * c.crop_size)
    return big


def _luma(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)


def _up(image: np.ndarray, scale: int = 2) -> np.ndarray:
    return np.repeat(np.repeat(image, scale, 0), scale, 1)


def class_colour_shift(small: np.ndarray, other: np.ndarray, labels: np.ndarray) -> float:
    """Area-weighted mean RGB distance between each class's mean colour in `other` (256 or 512)
    and in `small` (256), over the 256 label map `labels`.

    A painting that holds up keeps the colour of every region (sky stays that blue, grass that
    green); a collapse (grey mush, one colour everywhere, a washed-out class) moves them by tens.
    Its yardstick is the same model at 256 with another noise map: how much colours move anyway.
    """
    other_labels = _up(labels, other.shape[0] // labels.shape[0])
    shift, total = 0.0, 0
    for k in np.unique(labels):
        a = small[labels == k].mean(0)
        b = other[other_labels == k].mean(0)
        n = int((labels == k).sum())
        shift, total = shift + n * float(np.linalg.norm(a - b)), total + n
    return shift / total


def detail(image: np.ndarray) -> float:
    """Fraction of luma power (mean removed) above half the Nyquist frequency: grain finer than 4 px.

    Measured on the 512 image itself and on it shrunk to 256 (INTER_AREA). Grain that scales with
    the scene (twice as many pixels at 512) keeps the shrunk value at the 256 painting's and halves
    the full-size one; grain of a fixed pixel size keeps the full-size value and raises the shrunk
    one (twice as fine for the scene: a lawn of 2-px grass instead of 4-px). Near 0: a flat wash.
    """
    y = _luma(image)
    p = np.abs(np.fft.fft2(y - y.mean())) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(y.shape[0]), np.fft.fftfreq(y.shape[1]), indexing="ij")
    return float(p[np.hypot(fy, fx) > 0.25].sum() / p.sum())


def grid_peak(image: np.ndarray, period: int = TILE) -> float:
    """Power at the harmonics of a `period`-px grid over that of the frequencies around them.

    Row and column spectra of the luma, averaged; at each harmonic k*N/period the power is divided
    by the median of the 6 neighbouring bins. About 1: no grid; well above 1: the painting has a
    visible period of `period` px (ASAPNet's tiles, pix2pixHD's 8-px upsampling stages).
    """
    y = _luma(image)
    ratios = []
    for rows in (y, y.T):
        p = (np.abs(np.fft.rfft(rows - rows.mean(1, keepdims=True), axis=1)) ** 2).mean(0)
        n = rows.shape[1]
        for k in range(n // period, n // 2, n // period):
            around = np.r_[p[k - 3 : k], p[k + 1 : k + 4]]
            ratios.append(p[k] / np.median(around))
    return float(np.mean(ratios))


def paint(
    model: nn.Module, labels: np.ndarray, z: torch.Tensor | None, noise: torch.Tensor | None = None
) -> np.ndarray:
    """(H, W) ids -> (H, W, 3) uint8; `noise` None: the fixed map the engines and demo paint with."""
    with torch.inference_mode():
        semantics = model.prepare(torch.from_numpy(labels[None].astype(np.int32)))
        return to_uint8(model(semantics, z, noise))[0].numpy()


def other_noise(model: nn.Module, size: int, seed: int) -> torch.Tensor | None:
    """A noise map other than the fixed one, drawn as the model's own (octaves for ASAPNet)."""
    n = model.config.noise_nc
    g = torch.Generator().manual_seed(seed)
    return draw_noise(1, n, size, size, getattr(model, "noise_octaves", False), generator=g) if n else None


def save_png(file: Path, image: np.ndarray) -> None:
    """RGB as a 256-colour PNG (median cut): painted textures make a lossless one 2-3 MB a model."""
    from PIL import Image

    Image.fromarray(image).quantize(256, method=Image.Quantize.MEDIANCUT).save(file, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/size")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="the landscape layouts painted")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {}
    for name in weights.BUNDLED:
        model = load(weights.path(name))
        c = model.config
        z_dim = c.z_dim if getattr(c, "use_vae", False) else None
        big_model = model
        try:
            c.check_size(512, 512)
        except InputError as e:
            print(f"{name} refuses 512 as shipped ({e}); painting it with the latent grid enlarged 2x")
            big_model = _spade_at(model)
        rows, scores = [], []
        for seed in args.seeds:
            labels = landscapes.layout(seed, 256, 256)
            big_labels = _up(labels)  # the same scene at 512
            z = torch.from_numpy(np.random.default_rng(seed).standard_normal((1, z_dim), np.float32)) if z_dim else None
            small, big = paint(model, labels, z), paint(big_model, big_labels, z)
            reseeded = paint(model, labels, z, other_noise(model, 256, seed))
            shrunk = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
            s = {
                "colour_shift": class_colour_shift(small, big, labels),
                "colour_shift_noise_256": class_colour_shift(small, reseeded, labels),
                "detail_256": detail(small),
                "detail_512": detail(big),
                "detail_512_shrunk": detail(shrunk),
                "grid_256": grid_peak(small),
                "grid_512": grid_peak(big),
            }
            scores.append(s)
            rows.append(
                np.concatenate(
                    [
                        _caption(colorize(big_labels, landscapes.PALETTE), f"{name} seed {seed}"),
                        _caption(_up(small), "256 (shown 2x)"),
                        _caption(big, "512" + (" (latent grid 2x)" if big_model is not model else "")),
                    ],
                    1,
                )
            )
        report[name] = {k: round(float(np.mean([s[k] for s in scores])), 3) for k in scores[0]}
        report[name]["per_seed"] = {seed: {k: round(v, 3) for k, v in s.items()} for seed, s in zip(args.seeds, scores)}
        print(name, {k: v for k, v in report[name].items() if k != "per_seed"}, flush=True)
        file = out / f"size_512-{name}.png"
        save_png(file, np.concatenate(rows, 0))
        print(f"wrote {file} ({file.stat().st_size / 1e6:.2f} MB)")
    (out / "size_512.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
