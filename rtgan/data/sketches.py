"""Pencil sketches of the procedural landscapes: what a drawing held up to a webcam looks like.

A sketch of scene `seed` is drawn from that scene's label map and photo: the outlines of its
regions (sky line, ridges, shores, tree crowns), some detail strokes where the photo has strong
edges, optionally hatching in its dark parts, on paper under uneven light, with a hand's wobble.
The style (line weight, graphite tone, paper, light, wobble) is drawn from a second seed, so one
scene gives many different sketches and a model learns the drawing, not one renderer's lines.

    labels, photo = landscapes.render(3)
    drawing = sketch(labels, photo, style=0)         # uint8 (H, W, 3), grey graphite on paper
    python -m rtgan.data.sketches --out data/sketches --count 8     # sketches/ and images/ PNGs

NumPy only, deterministic per (scene, style), a few milliseconds per 256x256 sketch.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .noise import fbm, value_noise


@dataclasses.dataclass(frozen=True)
class Style:
    """How one sketch is drawn; every field is drawn per style seed by `Style.draw`."""

    outline: float  # darkness of region outlines, 0..1
    detail: float  # darkness of detail strokes from the photo's edges, 0..1
    detail_share: float  # fraction of pixels that become detail strokes
    hatch: float  # darkness of hatching in shadows (0: none)
    hatch_period: float  # pixels between hatch lines
    width: int  # extra outline thickness in pixels (0: one pixel)
    wobble: float  # hand tremor, pixels of displacement
    graphite: float  # pencil grey value, 0..255
    paper: tuple[float, float, float]  # paper colour, RGB
    light: float  # strength of the uneven illumination, 0..1
    grain: float  # sensor / paper grain, grey levels
    blur: bool  # a soft camera focus

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "Style":
        tone = rng.uniform(205, 250)
        tint = rng.normal(0, 4, 3)
        tint[2] -= abs(rng.normal(0, 5))  # paper under room light is warm more often than cool
        return cls(
            outline=rng.uniform(0.55, 1.0),
            detail=rng.uniform(0.15, 0.6),
            detail_share=rng.uniform(0.0, 0.08),
            hatch=rng.uniform(0.15, 0.45) if rng.random() < 0.4 else 0.0,
            hatch_period=rng.uniform(3.0, 6.0),
            width=int(rng.choice([0, 0, 1, 1, 2])),
            wobble=rng.uniform(0.0, 2.5),
            graphite=rng.uniform(25, 110),
            paper=tuple(np.clip(tone + tint, 0, 255)),
            light=rng.uniform(0.0, 0.35),
            grain=rng.uniform(1.0, 6.0),
            blur=bool(rng.random() < 0.5),
        )


def outlines(labels: np.ndarray) -> np.ndarray:
    """bool (H, W): pixels whose right or lower neighbour has another label."""
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return edge


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _gradient(luma: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(luma)
    return np.hypot(gx, gy)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Max filter of a float (H, W) map over a (2r+1)^2 square, by shifted maxima."""
    out = mask.copy()
    for _ in range(radius):
        grown = out.copy()
        grown[1:] = np.maximum(grown[1:], out[:-1])
        grown[:-1] = np.maximum(grown[:-1], out[1:])
        wide = grown.copy()
        wide[:, 1:] = np.maximum(wide[:, 1:], grown[:, :-1])
        wide[:, :-1] = np.maximum(wide[:, :-1], grown[:, 1:])
        out = wide
    return out


def _box3(x: np.ndarray) -> np.ndarray:
    """3x3 mean with edge replication, on (H, W) or (H, W, C)."""
    p = np.pad(x, [(1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 2), mode="edge")
    h, w = x.shape[:2]
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9


def _warp(ink: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Displace the strokes by a smooth random field of up to `amount` pixels (nearest sample)."""
    h, w = ink.shape
    if amount <= 0:
        return ink
    dy = (value_noise(rng, h, w, 6, 6) - 0.5) * 2 * amount
    dx = (value_noise(rng, h, w, 6, 6) - 0.5) * 2 * amount
    ys = np.clip(np.rint(np.arange(h)[:, None] + dy), 0, h - 1).astype(np.intp)
    xs = np.clip(np.rint(np.arange(w)[None, :] + dx), 0, w - 1).astype(np.intp)
    return ink[ys, xs]


def sketch(labels: np.ndarray, image: np.ndarray, style: int | Style = 0) -> np.ndarray:
    """uint8 (H, W) label map + uint8 (H, W, 3) photo -> uint8 (H, W, 3) pencil sketch of them.

    `style` is a seed (the style is drawn from it) or a `Style`; the same arguments give the same
    sketch."""
    if labels.shape != image.shape[:2] or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"labels {labels.shape} and image {image.shape} must be (H, W) and (H, W, 3)")
    h, w = labels.shape
    rng = np.random.default_rng([int(style) if not isinstance(style, Style) else 0, h, w, 0x5E7C])
    s = style if isinstance(style, Style) else Style.draw(rng)

    ink = outlines(labels).astype(np.float32) * s.outline
    ink = _dilate(ink, s.width)
    luma = _luma(image)
    if s.detail_share > 0:
        grad = _gradient(luma)
        grad[outlines(labels)] = 0  # region edges are drawn already
        cut = np.quantile(grad, 1 - s.detail_share)
        ink = np.maximum(ink, (grad > cut) * s.detail * np.clip(grad / max(cut, 1e-3) - 0.5, 0, 1))
    if s.hatch > 0:
        y, x = np.mgrid[:h, :w].astype(np.float32)
        lines = (np.sin((x + y) * (2 * np.pi / s.hatch_period)) > 0.6).astype(np.float32)
        dark = np.clip((np.quantile(luma, 0.35) - luma) / 40.0, 0, 1)
        ink = np.maximum(ink, lines * dark * s.hatch)
    ink = _warp(ink, rng, s.wobble)
    # pencil strokes are uneven: pressure varies along a line
    ink *= 0.7 + 0.3 * fbm(rng, h, w, cells=8, octaves=3)
    if s.blur:
        ink = _box3(ink)

    paper = np.asarray(s.paper, np.float32)[None, None, :]
    light = 1 - s.light * fbm(rng, h, w, cells=1.5, octaves=2)[..., None]
    graphite = np.float32(s.graphite)
    out = (paper * (1 - ink[..., None]) + graphite * ink[..., None]) * light
    out = out + rng.normal(0, s.grain, (h, w, 1)).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def drawing(labels: np.ndarray, paper: int = 238, graphite: int = 70) -> np.ndarray:
    """uint8 (H, W) label map -> uint8 (H, W, 3): its region outlines in pencil on plain paper.

    The fast, plain cousin of `sketch` (about a millisecond at 256x256, no photo needed): what the
    demo hands a sketch-to-image model when its source is a label map (the scene, the paint canvas)."""
    ink = _dilate(outlines(labels).astype(np.uint8), 1)
    grey = np.where(ink > 0, np.uint8(graphite), np.uint8(paper))
    return np.repeat(grey[..., None], 3, axis=2)


def render(seed: int, height: int = 256, width: int = 256, style: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(sketch, photo) of landscape `seed`; the sketch's style seed defaults to the scene's."""
    from . import landscapes

    labels, photo = landscapes.render(seed, height, width)
    return sketch(labels, photo, seed if style is None else style), photo


def write_folder(out, count: int, height: int = 256, width: int = 256, seed: int = 0, progress: bool = True) -> None:
    """Write `count` pairs: out/sketches/*.png (the drawings) and out/images/*.png (the photos), the
    layout `python -m rtgan.train --data sketch-folder` reads."""
    from pathlib import Path

    from PIL import Image

    from ..utils.atomic import atomic_dir

    scenes = range(count)
    if progress:
        from rich.progress import track

        scenes = track(scenes, description="sketching landscapes")
    with atomic_dir(Path(out)) as tmp:
        (tmp / "sketches").mkdir()
        (tmp / "images").mkdir()
        for i in scenes:
            drawing, photo = render(seed + i, height, width)
            Image.fromarray(drawing).save(tmp / "sketches" / f"{seed + i:06d}.png")
            Image.fromarray(photo).save(tmp / "images" / f"{seed + i:06d}.png")


PROG = "python -m rtgan.data.sketches"


def main(argv: list[str] | None = None) -> int:
    from ..utils import cli

    return cli.run(lambda: _write(argv), PROG)


def _write(argv: list[str] | None) -> None:
    from ..errors import ConfigError
    from ..utils import cli
    from ..utils.extras import require

    p = cli.Parser(PROG, __doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write: sketches/ and images/")
    p.add_argument("--count", type=int, default=16, help="number of scenes")
    cli.add_size(p, "256x256", "size HxW")
    p.add_argument("--seed", type=int, default=0, help="first scene's seed (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    if a.count <= 0:
        raise ConfigError(f"--count must be positive, got {a.count}")
    require("PIL", "train", "writing the sketch dataset", package="pillow")
    if not a.no_progress:
        require("rich", "train", "the progress bar (or pass --no-progress)")
    h, w = cli.size_of(a)
    write_folder(a.out, a.count, h, w, a.seed, progress=not a.no_progress)
    print(f"{a.out}: {a.count} sketches of {h}x{w} in sketches/ and images/")


if __name__ == "__main__":
    import sys

    sys.exit(main())
