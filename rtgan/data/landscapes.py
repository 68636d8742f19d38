"""Procedural landscapes: (label map, photo-like image) pairs to train and test on with no download.

Each scene is a layout (horizon, mountain ranges, water, shore, meadow, forest, trees, rocks...)
drawn as COCO-Stuff label ids, then rendered class by class with fractal textures under a random
time of day. Ids are the 0-based COCO-Stuff ids of SPADE's label maps and the colours put the id
in the red channel as GauGAN's palette does, so a GauGAN-style painting reads back as labels.

    labels, image = render(seed=3, height=256, width=256)     # uint8 (H, W) ids, uint8 (H, W, 3)
    python -m rtgan.data.landscapes --out data/landscapes --count 2000 --size 256x256

NumPy only, deterministic per seed, ~20-40 ms per 256x256 scene on one core.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .noise import fbm, profile, ridged, shade, stretch, value_noise


@dataclasses.dataclass(frozen=True)
class LabelClass:
    name: str
    id: int  # COCO-Stuff id as stored in SPADE-format label maps (0-based; 255 = unlabeled)
    green: int
    blue: int

    @property
    def color(self) -> tuple[int, int, int]:
        return (self.id, self.green, self.blue)  # GauGAN convention: red channel = id


# Red is the id (fixed); green and blue are chosen so that every pair of classes is far apart in
# CIELAB (min delta-E 76 about 29, was 11 for sky/snow), so the palette segmenter and the paint
# legend never confuse two of them (the earlier sea and mountain were near-identical purples).
CLASSES: tuple[LabelClass, ...] = (
    LabelClass("sky", 156, 200, 255),
    LabelClass("clouds", 105, 235, 255),
    LabelClass("mountain", 134, 100, 85),
    LabelClass("snow", 158, 255, 215),
    LabelClass("rock", 149, 150, 165),
    LabelClass("hill", 126, 200, 115),
    LabelClass("sea", 154, 90, 255),
    LabelClass("river", 147, 145, 255),
    LabelClass("water", 177, 100, 160),  # COCO-Stuff "water-other": lakes
    LabelClass("grass", 123, 255, 115),
    LabelClass("tree", 168, 210, 55),
    LabelClass("bush", 96, 130, 0),
    LabelClass("sand", 153, 155, 95),
    LabelClass("dirt", 110, 70, 0),
    LabelClass("flower", 118, 0, 135),
)
ID = {c.name: c.id for c in CLASSES}
LABEL_IDS: tuple[int, ...] = tuple(c.id for c in CLASSES)
PALETTE: dict[int, tuple[int, int, int]] = {c.id: c.color for c in CLASSES}
NAMES: dict[int, str] = {c.id: c.name for c in CLASSES}

# (sky top, sky horizon, sunlight, ambient level) per time of day
_TIMES = {
    "noon": ((62, 118, 196), (172, 203, 232), (255, 250, 238), 1.0),
    "afternoon": ((78, 136, 210), (196, 214, 230), (255, 240, 215), 0.95),
    "golden": ((72, 104, 170), (246, 186, 122), (255, 204, 150), 0.85),
    "dusk": ((38, 48, 104), (226, 118, 92), (255, 150, 110), 0.62),
    "overcast": ((132, 142, 154), (190, 195, 202), (222, 224, 228), 0.8),
}


@dataclasses.dataclass
class _Light:
    top: np.ndarray
    horizon: np.ndarray
    sun: np.ndarray  # sunlight colour, 0..1
    ambient: float
    sun_x: float  # -1 left .. 1 right


def _light(rng: np.random.Generator) -> _Light:
    name = rng.choice(list(_TIMES), p=[0.3, 0.25, 0.2, 0.12, 0.13])
    top, hor, sun, amb = (np.array(v, float) if isinstance(v, tuple) else v for v in _TIMES[name])
    jitter = lambda c: np.clip(c + rng.normal(0, 10, 3), 0, 255)  # noqa: E731
    return _Light(jitter(top), jitter(hor), jitter(sun) / 255, amb * rng.uniform(0.92, 1.05), rng.uniform(-1, 1))


def _layout(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, dict]:
    """Label ids (H, W) plus the geometry the renderer needs (horizon row, height fields...)."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w], float).reshape(2, 1, 1)
    labels = np.full((h, w), ID["sky"], np.uint8)
    horizon = rng.uniform(0.38, 0.62)
    geo: dict = {"horizon": horizon, "ranges": []}

    # mountain ranges, far to near, each a ridged skyline sitting on the horizon
    for i in range(rng.choice([0, 1, 1, 2, 2, 3])):
        peak = rng.uniform(0.12, 0.32) * (0.7 + 0.3 * i)
        line = horizon - peak * (0.25 + 0.75 * profile(rng, w, rng.uniform(1.5, 4), 6, ridge=True))
        line = line + rng.uniform(0, 0.04) * i
        mask = (y > line[None, :]) & (y < horizon + 0.02)
        labels[mask] = ID["mountain"]
        relief = ridged(rng, h, w, rng.uniform(3, 6), 5)
        snowline = line.min() + rng.uniform(0.03, 0.12) + 0.05 * i
        snow = mask & (y + 0.08 * relief < snowline) if rng.random() < 0.75 else np.zeros_like(mask)
        labels[snow] = ID["snow"]
        geo["ranges"].append((mask, relief, i))

    # clouds: thresholded fractal, denser for overcast-like seeds, only where the sky shows
    cover = rng.uniform(0.35, 0.75)
    clouds = stretch(fbm(rng, h, w, rng.uniform(2, 4), 5, aspect=rng.uniform(1.5, 3))) * (1.15 - 0.7 * y / horizon)
    labels[(labels == ID["sky"]) & (clouds > cover) & (y < horizon)] = ID["clouds"]
    geo["clouds"], geo["cloud_cover"] = clouds, cover

    # a green hill band in front of the mountains on some scenes
    if rng.random() < 0.4:
        line = horizon - rng.uniform(0.03, 0.12) * profile(rng, w, rng.uniform(1, 2.5), 3)
        labels[(y > line[None, :]) & (y <= horizon + 0.01)] = ID["hill"]

    # ground: coast, lake or meadow
    kind = rng.choice(["coast", "lake", "meadow"], p=[0.3, 0.3, 0.4])
    geo["kind"] = kind
    ground = y > horizon
    labels[ground] = ID["grass"]
    if kind == "coast":
        shore = horizon + rng.uniform(0.12, 0.4) * (1 - horizon) + 0.08 * (profile(rng, w, 2, 4) - 0.5)
        beach = shore + rng.uniform(0.06, 0.2) * (0.5 + profile(rng, w, 3, 4))
        labels[ground & (y < shore[None, :])] = ID["sea"]
        labels[ground & (y >= shore[None, :]) & (y < beach[None, :])] = ID["sand"]
        behind = rng.choice(["grass", "sand", "rock"], p=[0.5, 0.3, 0.2])
        labels[ground & (y >= beach[None, :])] = ID[behind]
    elif kind == "lake":
        cx, rx = rng.uniform(0.25, 0.75), rng.uniform(0.3, 0.7)
        depth = rng.uniform(0.15, 0.45) * (1 - horizon)
        edge = 1 - ((x - cx) / rx) ** 2 + 0.25 * (value_noise(rng, 1, w, 1, 6)[0][None, :] - 0.5)
        lake = ground & (y < horizon + depth * np.clip(edge, 0, None) ** 0.5)
        labels[lake] = ID["water"]
    # a river winding from the horizon to the bottom edge, wider as it comes closer
    if kind == "meadow" and rng.random() < 0.6:
        d = np.clip((y - horizon) / (1 - horizon), 0, 1)
        centre = rng.uniform(0.3, 0.7) + 0.15 * np.sin(d * rng.uniform(3, 8) + rng.uniform(0, 6)) * d
        half = 0.01 + rng.uniform(0.06, 0.16) * d
        labels[ground & (np.abs(x - centre) < half)] = ID["river"]
    # a dirt path on some meadows
    if kind == "meadow" and rng.random() < 0.35:
        d = np.clip((y - horizon) / (1 - horizon), 0, 1)
        centre = rng.uniform(0.2, 0.8) + rng.uniform(-0.3, 0.3) * d**2
        labels[ground & (np.abs(x - centre) < 0.005 + 0.07 * d) & (labels == ID["grass"])] = ID["dirt"]

    grassy = labels == ID["grass"]
    # flower patches and bare dirt patches on grass
    flowers = stretch(fbm(rng, h, w, rng.uniform(4, 9), 4))
    labels[grassy & (flowers > rng.uniform(0.72, 0.9))] = ID["flower"]
    patches = stretch(fbm(rng, h, w, rng.uniform(3, 7), 4))
    labels[grassy & (patches > rng.uniform(0.75, 0.92))] = ID["dirt"]

    # a forest along the horizon: a bumpy tree line over part of the width
    if rng.random() < 0.65:
        x0, x1 = sorted(rng.uniform(0, 1, 2))
        x0, x1 = (0.0, 1.0) if rng.random() < 0.3 else (x0 * 0.6, max(x1, x0 * 0.6 + 0.3))
        bumps = np.abs(np.sin(np.arange(w) / w * np.pi * rng.uniform(12, 30) + rng.uniform(0, 3)))
        top = horizon - rng.uniform(0.03, 0.09) * (0.4 + 0.6 * bumps * profile(rng, w, 8, 3))
        band = (x >= x0) & (x <= x1) & (y > top[None, :]) & (y < horizon + rng.uniform(0.01, 0.04))
        labels[band & ~np.isin(labels, [ID["sea"], ID["water"]])] = ID["tree"]

    # foreground objects on land, larger when closer
    land = np.isin(labels, [ID["grass"], ID["flower"], ID["dirt"], ID["sand"], ID["hill"]])
    wobble = value_noise(rng, h, w, 12, 12) - 0.5  # ragged outlines, shared by all objects
    for name, count, size in (("rock", 3, 0.05), ("bush", 6, 0.05), ("tree", 5, 0.12)):
        for _ in range(rng.integers(0, count + 1)):
            by, bx = rng.uniform(horizon + 0.03, 1.02), rng.uniform(-0.05, 1.05)
            iy, ix = min(int(by * h), h - 1), min(max(int(bx * w), 0), w - 1)
            if not land[iy, ix]:
                continue
            s = size * (0.3 + 1.2 * (by - horizon) / (1 - horizon))
            if name == "tree":  # crown above a trunk
                crown = ((x - bx) / (s * 0.5)) ** 2 + ((y - (by - s)) / (s * 0.75)) ** 2
                crown = crown + 0.5 * np.roll(wobble, int(bx * w), axis=1)
                labels[(crown < 1) | ((np.abs(x - bx) < s * 0.06) & (y < by) & (y > by - s))] = ID["tree"]
            else:
                blob = ((x - bx) / s) ** 2 + ((y - by) / (s * 0.6)) ** 2
                blob = blob + 0.6 * np.roll(wobble, int(bx * w), axis=1)
                labels[(blob < 1) & (y < by + s * 0.2)] = ID[name]
    return labels, geo


def _mix(a, b, t):
    t = np.asarray(t, np.float32)
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a + (b - a) * (t[..., None] if t.ndim else t)


def _tex(base, dark, noise, shading=None):
    """A colour between `dark` and `base` by `noise`, times a shading field."""
    c = _mix(dark, base, noise)
    return c if shading is None else c * shading[..., None]


def _render(rng: np.random.Generator, labels: np.ndarray, geo: dict, light: _Light) -> np.ndarray:
    h, w = labels.shape
    present = set(np.unique(labels).tolist())
    has = lambda *names: any(ID[n] in present for n in names)  # noqa: E731
    y = np.repeat((np.arange(h, dtype=np.float32) / h)[:, None], w, 1)
    xs = np.arange(w, dtype=np.float32)[None, :] / w
    horizon = geo["horizon"]
    haze = lambda c, t: _mix(c, light.horizon, t)  # noqa: E731  atmospheric perspective
    fine = fbm(rng, h, w, 24, 3)
    grain = fbm(rng, h, w, 64, 2)
    d = np.clip((y - horizon) / (1 - horizon), 0, 1)  # 0 at the horizon, 1 at the bottom edge
    ground_haze = np.clip(0.45 * (1 - d) ** 3, 0, 1)
    layers: dict[int, np.ndarray] = {}

    sky = _mix(light.top, light.horizon, np.clip(y / horizon, 0, 1) ** 0.8)
    glow = np.exp(-((xs - (0.5 + 0.4 * light.sun_x)) ** 2 + (y - horizon * 0.7) ** 2) / 0.03)
    layers[ID["sky"]] = sky + (light.sun * 255 - sky) * (0.35 * glow)[..., None]
    if has("clouds"):
        cloud = geo["clouds"]
        lit = np.clip(0.6 + 2.5 * (cloud - np.roll(cloud, 3, axis=0)) + 0.3 * fine, 0.35, 1.15)
        col = _mix(light.horizon * 0.7, light.sun * 255, lit.clip(0, 1))
        layers[ID["clouds"]] = col * (0.8 + 0.25 * lit)[..., None]

    if geo["ranges"]:  # per range: rock shaded by its relief, hazier further away
        mountain, snow = np.zeros((h, w, 3), np.float32), np.zeros((h, w, 3), np.float32)
        rock_base = np.array(rng.choice([(118, 106, 96), (96, 100, 108), (128, 112, 92)]), np.float32)
        for mask, relief, i in geo["ranges"]:
            s = shade(relief, light.sun_x, 5.0)
            col = haze(_tex(rock_base, rock_base * 0.45, 0.5 * relief + 0.5 * fine, s), 0.55 - 0.18 * i)
            mountain[mask] = col[mask]
            sn = _tex((250, 252, 255), (150, 165, 190), s.clip(0, 1.2) / 1.2)
            snow[mask] = haze(sn, 0.3 - 0.1 * i)[mask]
        layers[ID["mountain"]] = mountain
        layers[ID["snow"]] = snow * light.sun

    hf = fbm(rng, h, w, 10, 5, aspect=2.5)
    if has("rock"):
        rocky = ridged(rng, h, w, 8, 4)
        col = _tex((150, 140, 128), (60, 55, 52), 0.6 * rocky + 0.4 * grain, shade(rocky, light.sun_x))
        layers[ID["rock"]] = haze(col, ground_haze)
    if has("hill"):
        hill = np.array(rng.choice([(96, 128, 58), (120, 134, 66), (80, 112, 60)]), np.float32)
        layers[ID["hill"]] = haze(_tex(hill, hill * 0.55, hf, shade(hf, light.sun_x, 3)), 0.35)
    grass_base = np.array(rng.choice([(92, 148, 52), (110, 150, 60), (140, 150, 70), (70, 125, 50)]), np.float32)
    grass = None
    if has("grass", "flower"):
        blades = value_noise(rng, h, w, h / 2, w / 6)  # vertical streaks
        grass = _tex(grass_base, grass_base * 0.5, 0.5 * hf + 0.3 * blades + 0.2 * grain)
        layers[ID["grass"]] = haze(grass, ground_haze)
    if has("flower"):
        petal = np.array(rng.choice([(230, 60, 60), (240, 210, 60), (180, 90, 200), (245, 245, 240)]), np.float32)
        dots = value_noise(rng, h, w, h / 3, w / 3) > 0.62
        col = np.where(dots[..., None], petal * (0.7 + 0.3 * grain[..., None]), grass)
        layers[ID["flower"]] = haze(col, ground_haze)
    if has("dirt"):
        layers[ID["dirt"]] = haze(_tex((150, 112, 76), (86, 62, 44), 0.6 * grain + 0.4 * hf), ground_haze)
    if has("sand"):
        ripples = 0.5 + 0.5 * np.sin(y * h * 0.9 + 6 * hf)
        layers[ID["sand"]] = haze(_tex((232, 212, 168), (180, 156, 118), 0.6 * grain + 0.4 * ripples), ground_haze)
    if has("tree", "bush"):
        leaves = fbm(rng, h, w, 20, 4)
        tree = np.array(rng.choice([(46, 84, 38), (56, 92, 44), (40, 70, 46)]), np.float32)
        col = _tex(tree * 1.5, tree * 0.45, leaves, shade(leaves, light.sun_x, 8))
        layers[ID["tree"]] = haze(col, ground_haze + 0.15 * (1 - d))
        layers[ID["bush"]] = haze(_tex(tree * 1.9, tree * 0.6, leaves), ground_haze)

    img = np.zeros((h, w, 3), np.float32)
    for k, v in layers.items():
        m = labels == k
        img[m] = v[m]
    if has("sea", "water", "river"):  # a reflection of what is above the waterline, broken up by waves
        waves = fbm(rng, h, w, 6, 5, aspect=6)
        deep = np.array(rng.choice([(30, 70, 100), (24, 60, 90), (40, 90, 110)]), np.float32)
        for name, strength in (("sea", 0.35), ("water", 0.65), ("river", 0.5)):
            mask = labels == ID[name]
            if not mask.any():
                continue
            top = np.where(mask.any(0), mask.argmax(0), h)  # first water row per column
            src = np.clip(2 * top[None, :] - np.arange(h)[:, None] - 1, 0, h - 1)
            shift = ((waves - 0.5) * 12 * (0.3 + d)).astype(int)
            mirror = img[src, np.clip(np.arange(w)[None, :] + shift, 0, w - 1)]
            col = _mix(deep * (1 + 0.5 * waves[..., None]), mirror, strength * (1 - 0.5 * d))
            glint = np.clip((waves - 0.62) * 6, 0, 1) * (1 - d) * (light.ambient > 0.8)
            col = col + (light.sun * 255 - col) * (0.6 * glint)[..., None]
            img[mask] = haze(col, ground_haze * 0.5)[mask]
    img = img * (light.ambient * (0.75 + 0.25 * light.sun)).astype(np.float32)
    vignette = 1 - 0.25 * ((xs - 0.5) ** 2 + (y - 0.5) ** 2)
    img = img * vignette[..., None] + rng.normal(0, 2.0, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def render(seed: int, height: int = 256, width: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One scene: uint8 (H, W) COCO-Stuff ids and uint8 (H, W, 3) RGB, the same for the same arguments."""
    rng = np.random.default_rng([seed, height, width])
    light = _light(rng)
    labels, geo = _layout(rng, height, width)
    return labels, _render(rng, labels, geo, light)


def layout(seed: int, height: int = 256, width: int = 256) -> np.ndarray:
    """The label map of `render(seed, ...)` alone (no texture work)."""
    return layout_geometry(seed, height, width)[0]


def layout_geometry(seed: int, height: int = 256, width: int = 256) -> tuple[np.ndarray, dict]:
    """`layout` plus the fields it was cut from ("horizon", "clouds": the cloud density field), for animation."""
    rng = np.random.default_rng([seed, height, width])
    _light(rng)
    return _layout(rng, height, width)


def write_folder(out, count: int, height: int = 256, width: int = 256, seed: int = 0, progress: bool = True) -> None:
    """Write `count` scenes in SPADE's folder layout: out/labels/*.png (ids), out/images/*.png."""
    from pathlib import Path

    from PIL import Image

    from ..utils.atomic import atomic_dir

    scenes = range(count)
    if progress:  # rich only for the bar: a library call with progress=False needs PIL alone
        from rich.progress import track

        scenes = track(scenes, description="rendering landscapes")
    out = Path(out)
    with atomic_dir(out) as tmp:
        (tmp / "labels").mkdir()
        (tmp / "images").mkdir()
        for i in scenes:
            labels, image = render(seed + i, height, width)
            Image.fromarray(labels).save(tmp / "labels" / f"{seed + i:06d}.png")
            Image.fromarray(image).save(tmp / "images" / f"{seed + i:06d}.png")


PROG = "python -m rtgan.data.landscapes"


def parser():
    from ..utils import cli

    p = cli.Parser(PROG, __doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write (SPADE's custom layout: labels/, images/)")
    p.add_argument("--count", type=int, default=1000, help="number of scenes")
    cli.add_size(p, "256x256", "scene size HxW")
    p.add_argument("--seed", type=int, default=0, help="first scene's seed; scene i uses SEED + i (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..utils import cli

    return cli.run(lambda: _write(argv), PROG)


def _write(argv: list[str] | None) -> None:
    from ..errors import ConfigError
    from ..utils import cli
    from ..utils.extras import require

    a = parser().parse_args(argv)
    h, w = cli.size_of(a)
    if a.count <= 0:
        raise ConfigError(f"--count must be positive, got {a.count}")
    # before any scene renders: without pillow the last step (saving) would fail with a traceback
    require("PIL", "train", "writing the landscape dataset", package="pillow")
    if not a.no_progress:
        require("rich", "train", "the progress bar (or pass --no-progress)")
    write_folder(a.out, a.count, h, w, a.seed, progress=not a.no_progress)
    print(f"{a.out}: {a.count} scenes of {h}x{w} in labels/ and images/")


if __name__ == "__main__":
    import sys

    sys.exit(main())
