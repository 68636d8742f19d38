"""Paint label maps into images, one file or a whole folder.

    python -m rtgan.generate                                   # the bundled default model, a built-in scene
    python -m rtgan.generate --model landscape-spade --labels map.png --out painting.png
    python -m rtgan.generate --model ENGINE_DIR --labels maps/ --out paintings/

`--model` is a bundled model, an rtgan model directory (run eagerly in PyTorch: the reference),
an exported engine directory (run on its runtime, no PyTorch), or an official checkpoint with
--preset. Label maps are single-channel id PNGs or colour PNGs in the model's class colours
(GauGAN's, as the demo's paint canvas saves them).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from . import catalog, presets, weights
from .errors import ConfigError, InputError
from .utils import cli
from .utils.atomic import atomic_write_bytes
from .utils.extras import require

PROG = "python -m rtgan.generate"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def parser() -> cli.Parser:
    ap = cli.Parser(PROG, __doc__)
    ap.add_argument(
        "--model",
        "--official",
        dest="model",
        default=weights.DEFAULT,
        metavar="NAME_OR_PATH",
        help=f"bundled model ({', '.join(weights.BUNDLED)}), model or engine directory, or official .pth",
    )
    ap.add_argument("--preset", metavar="NAME", help="options of an official .pth: " + ", ".join(presets.PRESETS))
    cli.add_set(ap, help="official option overrides for an official .pth")
    ap.add_argument("--labels", metavar="PNG_OR_DIR", help="label map(s); default: a built-in scene")
    cli.add_size(ap, help="size of the built-in scene / of the painting (default: the model's own)")
    ap.add_argument("--seed", type=int, default=0, help="scene, noise and style (VAE) seed")
    ap.add_argument("--count", type=int, default=8, help="how many samples a latent generator (DCGAN...) paints")
    ap.add_argument(
        "--out",
        default="out/generate",
        help="a .png file, or a folder (image.png, labels.png, side_by_side.png; with --labels DIR one PNG per map)",
    )
    return ap


class Painter:
    """Label ids -> uint8 RGB with an engine (no PyTorch) or a model run eagerly (the reference)."""

    def __init__(self, ref: catalog.ModelRef, preset: str | None, sets: dict, seed: int):
        self.rng, self.seed = np.random.default_rng(seed), seed
        if ref.kind == "engine":
            from .engine import Engine

            self.engine, self.model = Engine.load(ref.path, seed=seed), None
            m = self.engine.manifest
            self.label_ids, self.size, self.uses_instance = self.engine.label_ids, (m["height"], m["width"]), None
            self.what = f"{m['arch']} engine ({self.engine.backend_name})"
            return
        require("torch", "torch", f"painting {ref.name} eagerly (export it to run without PyTorch)")
        import torch

        from . import models

        torch.manual_seed(seed)
        if ref.kind == "official":
            self.model = models.load_official(presets.get_preset(preset).arch, ref.path, preset=preset, **sets)
        else:
            self.model = models.load(ref.path)
        self.engine, c = None, self.model.config
        ids = getattr(c, "label_ids", None)
        self.label_ids, self.size = (list(ids) if ids is not None else None), ref.natural_size()
        self.what = f"{c.arch} (eager PyTorch)"

    @property
    def takes_labels(self) -> bool:
        if self.engine is not None:
            return "labels" in self.engine.input_names
        return hasattr(self.model, "prepare")  # the label-map families; the others declare latents

    def samples(self, count: int, seed: int) -> np.ndarray:
        """`count` images of a latent / class / code generator, its inputs drawn from `seed`."""
        if self.engine is not None:
            return np.stack([self.engine.run() for _ in range(count)])
        from .export import model_feeds, reference_image

        size = self.model.signature().size
        return reference_image(self.model, model_feeds(self.model, *size, batch=count, seed=seed))

    def check_size(self, h: int, w: int) -> None:
        if self.engine is not None:
            if (h, w) != self.size:
                raise InputError(f"this engine paints {self.size[0]}x{self.size[1]} only, not {h}x{w}")
        else:
            self.model.config.check_size(h, w)

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        if self.engine is not None:
            return self.engine.run(labels)
        from .export import reference_image

        c = self.model.config
        feeds = {"labels": labels[None].astype(np.int32)}
        if c.semantic_nc > c.num_classes + getattr(c, "extra_nc", 0):
            feeds["instance"] = feeds["labels"]  # each connected class region one instance, as the engine
        if getattr(c, "use_vae", False):
            feeds["z"] = self.rng.standard_normal((1, c.z_dim)).astype(np.float32)
        _check_ids(labels, self.label_ids, c.num_classes)
        return reference_image(self.model, feeds)[0]


def _check_ids(labels: np.ndarray, label_ids, num_classes: int) -> None:
    from .data.landscapes import NAMES

    known = list(label_ids if label_ids is not None else range(num_classes))
    bad = np.setdiff1d(np.unique(labels), known)
    if bad.size:
        named = label_ids is not None and set(known) <= set(NAMES)
        classes = ", ".join(f"{i} {NAMES[i]}" if named else str(i) for i in known)
        raise InputError(f"label id {bad[0]} is not one of this model's classes; it takes the ids {classes}")


def _palette(label_ids):
    from .data import landscapes

    if label_ids is not None and set(label_ids) <= set(landscapes.PALETTE):
        return {i: landscapes.PALETTE[i] for i in label_ids}
    return None


def read_labels(path: Path, label_ids) -> np.ndarray:
    cv2 = _cv2()
    if not path.is_file():
        raise ConfigError(f"--labels {path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"{path}: not an image OpenCV can read")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    from .demo.segment import labels_from_png

    try:
        return labels_from_png(image, _palette(label_ids))
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def default_scene(label_ids, num_classes: int, h: int, w: int, seed: int) -> np.ndarray:
    from .data import landscapes
    from .scenes import blob_scene, street_scene

    if label_ids is not None and set(label_ids) <= set(landscapes.LABEL_IDS):
        return landscapes.layout(seed, h, w).astype(np.int32)
    if label_ids is None and num_classes == 35:  # Cityscapes ids
        return street_scene(h, w)[0].astype(np.int32)
    ids = np.asarray(label_ids if label_ids is not None else range(num_classes), np.int32)
    return ids[blob_scene(h, w, len(ids), seed)]


def _cv2():
    require("cv2", "demo", "reading and writing PNGs", package="opencv-python")
    import cv2

    return cv2


def _png(image: np.ndarray) -> bytes:
    ok, data = _cv2().imencode(".png", image[..., ::-1] if image.ndim == 3 else image)
    return data.tobytes()


def _samples(painter: Painter, out: Path, count: int) -> int:
    images = painter.samples(count, painter.seed)
    grid = np.concatenate(list(images), 1)  # one row of samples
    grid = np.repeat(grid, 3, 2) if grid.shape[2] == 1 else grid
    target = out if out.suffix.lower() in IMAGE_SUFFIXES else out / "samples.png"
    atomic_write_bytes(target, _png(grid))
    print(f"{painter.what}: {count} samples -> {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return cli.run(lambda: generate(args), PROG)


def generate(args) -> int:
    # every argument before any work
    ref = catalog.resolve(args.model)
    if ref.kind == "official" and not args.preset:
        raise ConfigError(f"{args.model} is an official checkpoint: add --preset (one of {', '.join(presets.PRESETS)})")
    if args.preset:
        presets.get_preset(args.preset)
    if ref.kind != "official" and (args.preset or args.set):
        raise ConfigError("--preset/--set apply to official checkpoints only; a model directory records its options")
    sets = cli.parse_sets(args.set)
    size = cli.size_of(args)
    labels_in = Path(args.labels) if args.labels else None
    out = Path(args.out)
    batch = labels_in is not None and labels_in.is_dir()
    if labels_in is not None and not labels_in.exists():
        raise ConfigError(f"--labels {labels_in}: no such file or folder")
    if batch and out.suffix.lower() in IMAGE_SUFFIXES:
        raise ConfigError(f"--labels {labels_in} is a folder: --out must be a folder too, not {out}")
    if out.exists() and out.is_dir() != (out.suffix.lower() not in IMAGE_SUFFIXES):
        raise ConfigError(f"--out {out} exists and is a {'folder' if out.is_dir() else 'file'}")
    inputs = sorted(p for p in labels_in.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if batch else [labels_in]
    if batch and not inputs:
        raise ConfigError(f"--labels {labels_in}: no label PNGs in this folder")
    _cv2()

    painter = Painter(ref, args.preset, sets, args.seed)
    if not painter.takes_labels:
        if labels_in is not None:
            raise ConfigError(f"{args.model} paints from latents, not label maps: drop --labels")
        return _samples(painter, out, args.count)
    ids = painter.label_ids
    num_classes = len(ids) if ids is not None else painter.model.config.num_classes
    jobs = []
    for path in inputs:
        if path is None:
            h, w = size or painter.size or (256, 512)
            labels = default_scene(ids, num_classes, h, w, args.seed)
        else:
            labels = read_labels(path, ids)
            if size is not None and labels.shape != size:
                raise InputError(f"{path} is {labels.shape[0]}x{labels.shape[1]}, not the --size {size[0]}x{size[1]}")
        painter.check_size(*labels.shape)
        jobs.append((path, labels))

    from .scenes import colorize

    for path, labels in jobs:
        t0 = time.perf_counter()
        rgb = painter(labels)
        ms = (time.perf_counter() - t0) * 1e3
        if batch:
            target = out / (path.stem + ".png")
            atomic_write_bytes(target, _png(rgb))
        elif out.suffix.lower() in IMAGE_SUFFIXES:
            target = out
            atomic_write_bytes(target, _png(rgb))
        else:
            shown = colorize(labels, _palette(ids))
            atomic_write_bytes(out / "labels.png", _png(labels.astype(np.uint8 if labels.max() < 256 else np.uint16)))
            atomic_write_bytes(out / "image.png", _png(rgb))
            atomic_write_bytes(out / "side_by_side.png", _png(np.concatenate([shown, rgb], 1)))
            target = out / "side_by_side.png"
        print(
            f"{painter.what}: {path or 'built-in scene'} {labels.shape[0]}x{labels.shape[1]} in {ms:.0f} ms -> {target}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
