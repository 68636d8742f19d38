"""Quality with no download: a segmenter trained on real landscape renders judges generated images.

The SPADE papers score a generator by segmenting its outputs with a network trained on real
photos and reporting mIoU against the input label map. Here the "real photos" are the procedural
renders, so the score says how recognisably each class is painted. A per-class colour-statistics
distance (mean and spread of RGB inside each class, generated vs real) complements it.

    python -m rtgan.train.quality --models rtgan/weights/landscape-* --out benchmarks/results/quality
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..catalog import resolve
from ..data.landscapes import LABEL_IDS, NAMES, render
from ..errors import ConfigError
from ..models.labels import label_lut
from ..utils import cli
from ..utils.atomic import atomic_write_bytes


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Segmenter(nn.Module):
    """A small FCN: 1/8-resolution context (dilated) fused with 1/2-resolution detail."""

    def __init__(self, num_classes: int = len(LABEL_IDS), width: int = 32):
        super().__init__()
        w = width
        self.stem = nn.Sequential(_block(3, w, 2), _block(w, w))
        self.down = nn.Sequential(_block(w, 2 * w, 2), _block(2 * w, 4 * w, 2), _block(4 * w, 4 * w, dilation=2))
        self.context = _block(4 * w, 4 * w, dilation=4)
        self.head = nn.Sequential(_block(5 * w, w), nn.Conv2d(w, num_classes, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, classes, H, W) logits."""
        detail = self.stem(image)
        ctx = self.context(self.down(detail))
        ctx = F.interpolate(ctx, size=detail.shape[2:], mode="bilinear", align_corners=False)
        return F.interpolate(self.head(torch.cat([detail, ctx], 1)), size=image.shape[2:], mode="bilinear")


_CHANNELS = label_lut(LABEL_IDS).numpy()


def to_channels(labels: np.ndarray) -> np.ndarray:
    """Landscape COCO-Stuff ids -> class-channel indices."""
    return _CHANNELS[labels]


def _batch(seeds, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [render(int(s), size, size) for s in seeds]
    labels = torch.from_numpy(np.stack([to_channels(p[0]) for p in pairs]))
    image = torch.from_numpy(np.stack([p[1] for p in pairs])).permute(0, 3, 1, 2).float() / 127.5 - 1
    return image, labels


def train_segmenter(
    steps: int = 1500, size: int = 128, batch: int = 8, scenes: int = 800, seed: int = 10_000_000, progress=True
) -> Segmenter:
    """Fit the segmenter on `scenes` renders whose seeds are far from the GAN training seeds."""
    from rich.progress import track

    torch.manual_seed(0)
    net = Segmenter().train()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps)
    cache: dict[int, tuple] = {}
    rng = np.random.default_rng(0)
    for _ in track(range(steps), description="segmenter", disable=not progress):
        idx = rng.integers(0, scenes, batch)
        for i in idx:
            if i not in cache:
                cache[i] = _batch([seed + i], size)
        image = torch.cat([cache[i][0] for i in idx])
        labels = torch.cat([cache[i][1] for i in idx])
        flip = torch.rand(()) < 0.5
        if flip:
            image, labels = image.flip(-1), labels.flip(-1)
        loss = F.cross_entropy(net(image), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def confusion(pred: np.ndarray, target: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(target.ravel() * n + pred.ravel(), minlength=n * n).reshape(n, n)


def miou(conf: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean IoU over the classes present in the targets, and per-class IoU (NaN when absent)."""
    tp = np.diag(conf).astype(float)
    union = conf.sum(0) + conf.sum(1) - tp
    iou = np.where(conf.sum(1) > 0, tp / np.maximum(union, 1), np.nan)
    return float(np.nanmean(iou)), iou


def colour_distance(fake: np.ndarray, real: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per class: |mean RGB diff| + |std RGB diff| (0-255 scale, averaged over channels); NaN when absent."""
    out = np.full(len(LABEL_IDS), np.nan)
    for c in range(len(LABEL_IDS)):
        m = labels == c
        if m.sum() < 16:
            continue
        f, r = fake[m].astype(float), real[m].astype(float)
        out[c] = np.abs(f.mean(0) - r.mean(0)).mean() + np.abs(f.std(0) - r.std(0)).mean()
    return out


@torch.no_grad()
def segment(net: Segmenter, images: np.ndarray, size: int = 128) -> np.ndarray:
    """uint8 (B, H, W, 3) -> class channels (B, H, W), segmented at `size` and resized back."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    h, w = x.shape[2:]
    logits = net(F.interpolate(x, size=(size, size), mode="area"))
    return F.interpolate(logits, size=(h, w), mode="bilinear").argmax(1).numpy()


def paint(model, labels: np.ndarray, seed: int = 0, photos: np.ndarray | None = None) -> np.ndarray:
    """The model's uint8 images for COCO-id label maps (B, H, W); VAE models get a seeded random style.

    An image-to-image (sketch) model paints the pencil sketches of the scenes instead, drawn from
    the maps and their `photos` (B, H, W, 3) in styles seed, seed + 1, ... (`rtgan.data.sketches`)."""
    from ..export import reference_image

    if model.signature().inputs[0].kind == "image":
        from ..data.sketches import sketch

        if photos is None:
            raise ConfigError(f"{model.config.arch} paints sketches of scenes: give their photos too")
        drawings = np.stack([sketch(m, p, style=seed + i) for i, (m, p) in enumerate(zip(labels, photos))])
        return reference_image(model, {"source": drawings})
    feeds = {"labels": labels.astype(np.int32)}
    if getattr(model.config, "use_vae", False):
        g = np.random.default_rng(seed)
        feeds["z"] = g.standard_normal((len(labels), model.config.z_dim)).astype(np.float32)
    return reference_image(model, feeds)


def evaluate(painter, net: Segmenter, seeds, size: int = 256) -> dict:
    """`painter(labels (B, H, W) COCO ids, photos (B, H, W, 3)) -> uint8 images` (the photos are for
    sketch models, which paint a drawing of the scene); mIoU and colour distance over `seeds`."""
    n = len(LABEL_IDS)
    conf, dist = np.zeros((n, n), np.int64), []
    for s in seeds:
        labels, real = render(int(s), size, size)
        fake = painter(labels[None], real[None])[0]
        target = to_channels(labels)
        conf += confusion(segment(net, fake[None])[0], target, n)
        dist.append(colour_distance(fake, real, target))
    m, iou = miou(conf)
    d = np.nanmean(np.stack(dist), 0)
    return {
        "miou": m,
        "pixel_accuracy": float(np.diag(conf).sum() / conf.sum()),
        "iou": {NAMES[i]: None if np.isnan(v) else float(v) for i, v in zip(LABEL_IDS, iou)},
        "colour_distance": {NAMES[i]: None if np.isnan(v) else float(v) for i, v in zip(LABEL_IDS, d)},
        "mean_colour_distance": float(np.nanmean(d)),
    }


PROG = "python -m rtgan.train.quality"


def parser() -> cli.Parser:
    p = cli.Parser(PROG, __doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", required=True, metavar="MODEL", help="bundled model names or model folders")
    p.add_argument("--out", required=True, help="folder for quality.json and the cached segmenter")
    p.add_argument("--scenes", type=int, default=60, help="held-out scenes to score")
    p.add_argument("--segmenter-steps", type=int, default=1500, help="segmenter training steps (cached per count)")
    return p


def main(argv: list[str] | None = None) -> int:
    return cli.run(lambda: _score(argv), PROG)


def _score(argv: list[str] | None) -> None:
    a = parser().parse_args(argv)
    if a.scenes <= 0 or a.segmenter_steps <= 0:
        raise ConfigError(f"--scenes and --segmenter-steps must be positive (got {a.scenes}, {a.segmenter_steps})")
    refs = [resolve(m) for m in a.models]  # every model checked before the segmenter trains
    for name, ref in zip(a.models, refs):
        if ref.kind != "model":
            raise ConfigError(f"--models {name} is an {ref.kind} artifact; scoring paints with an rtgan model")

    from safetensors.torch import load_file, save

    from ..models import load

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"segmenter-{a.segmenter_steps}.safetensors"
    net = Segmenter()
    if weights.is_file():
        net.load_state_dict(load_file(str(weights)))
    else:
        net = train_segmenter(a.segmenter_steps)
        atomic_write_bytes(weights, save(net.state_dict()))
    net.eval()
    seeds = range(20_000_000, 20_000_000 + a.scenes)  # held out from GAN and segmenter training
    # the segmenter on the real renders themselves: the ceiling a generator can reach
    order = iter(seeds)
    results = {"real renders": evaluate(lambda labels, _: render(next(order), 256, 256)[1][None], net, seeds)}
    for ref in refs:
        model = load(ref.path)
        results[ref.path.name] = evaluate(lambda labels, photos, m=model: paint(m, labels, photos=photos), net, seeds)
    atomic_write_bytes(out / "quality.json", (json.dumps(results, indent=2) + "\n").encode())
    for name, r in results.items():
        print(
            f"{name:28s} mIoU {r['miou']:.3f}  pixel acc {r['pixel_accuracy']:.3f}  "
            f"colour dist {r['mean_colour_distance']:.1f}"
        )


if __name__ == "__main__":
    import sys

    sys.exit(main())
