"""Paint one image from a label map: `python -m rtgan.generate [--preset P | --model DIR] [--labels PNG]`.

With no weights the preset's generator has random weights: the result shows the pipeline runs
end to end, not a painting. Trained weights come from `--model` (our format) or `--official`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .scenes import CITYSCAPES_PALETTE, blob_scene, colorize, street_scene
from .utils.cli import parse_sets


def _cv2():
    try:
        import cv2
    except ImportError:
        sys.exit("rtgan.generate writes PNGs with OpenCV: pip install 'rtgan[demo]'")
    return cv2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rtgan.generate", description=__doc__)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--preset", default="asapnet-cityscapes", help="preset name (random weights unless --official)")
    src.add_argument("--model", help="directory written by rtgan.models.save")
    ap.add_argument("--official", help="official latest_net_G.pth for --preset")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an option")
    ap.add_argument("--labels", help="label-id PNG (single channel); default: a built-in scene")
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/generate")
    args = ap.parse_args(argv)

    import torch

    from . import models

    torch.manual_seed(args.seed)
    overrides = parse_sets(args.set)
    if args.model:
        model, source = models.load(args.model), args.model
    elif args.official:
        preset = models.get_preset(args.preset)
        model = models.load_official(preset.arch, args.official, preset=args.preset, **overrides)
        source = args.official
    else:
        model = models.init_weights(models.get_model(args.preset, **overrides))
        source = "random weights (no --model/--official given)"
    c = model.config
    cv2 = _cv2()
    if args.labels:
        labels = cv2.imread(args.labels, cv2.IMREAD_UNCHANGED)
        if labels is None or labels.ndim != 2:
            sys.exit(f"{args.labels}: not a single-channel label-id PNG")
        instance = labels.astype(np.int32)
    elif c.num_classes == 35:  # Cityscapes ids
        labels, instance = street_scene(args.height, args.width)
    else:
        labels = blob_scene(args.height, args.width, c.num_classes, args.seed)
        instance = labels.astype(np.int32)

    t0 = time.perf_counter()
    with torch.inference_mode():
        lab = torch.from_numpy(labels.astype(np.int64))[None]
        inst = torch.from_numpy(instance)[None] if c.semantic_nc > c.num_classes else None
        image = model(model.prepare(lab, inst))[0]
    ms = (time.perf_counter() - t0) * 1e3
    rgb = ((image.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).round().astype(np.uint8)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shown = colorize(labels, CITYSCAPES_PALETTE if c.num_classes == 35 else None)
    cv2.imwrite(str(out / "labels.png"), labels)
    cv2.imwrite(str(out / "image.png"), rgb[..., ::-1])
    cv2.imwrite(str(out / "side_by_side.png"), np.concatenate([shown, rgb], 1)[..., ::-1])
    print(f"{c.arch} ({source}): {labels.shape[0]}x{labels.shape[1]} in {ms:.0f} ms (eager PyTorch, first call)")
    print(f"wrote {out / 'side_by_side.png'} (labels | image), {out / 'image.png'}, {out / 'labels.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
