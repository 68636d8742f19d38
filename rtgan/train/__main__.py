"""`python -m rtgan.train`: train a generator, resuming from OUT/checkpoint when it exists.

python -m rtgan.train --preset landscape-asapnet --data landscapes --steps 20000 --out runs/asapnet
torchrun --nproc_per_node 2 -m rtgan.train ...        # DDP (NCCL on GPUs, gloo on CPU)
"""

from __future__ import annotations

import argparse

import torch

from ..models import get_preset
from ..utils.cli import parse_sets, parse_size
from .discriminator import DiscriminatorConfig
from .trainer import TrainConfig, train


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m rtgan.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", help="spade | asapnet | pix2pixhd (or take it from --preset)")
    p.add_argument("--preset", help="start from a preset's model options, e.g. landscape-asapnet")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model options (official names)")
    p.add_argument("--data", default="landscapes", help="landscapes | folder | cityscapes | ade20k | coco")
    p.add_argument("--root", help="dataset directory (all but landscapes)")
    p.add_argument("--split", default="train")
    p.add_argument("--size", default="256x256", help="training size HxW (landscapes render at it)")
    p.add_argument("--count", type=int, default=2000, help="landscapes: number of distinct scenes")
    p.add_argument("--out", required=True, help="run directory: checkpoint/, samples/, losses.jsonl, tensorboard/")
    p.add_argument("--steps", type=int, default=10000, help="total steps (a resumed run continues to it)")
    p.add_argument("--batch_size", type=int, default=4, help="per process")
    p.add_argument("--lr", type=float, default=0.0002)
    p.add_argument("--no_TTUR", action="store_true", help="same lr for G and D, Adam betas (0.5, 0.999)")
    p.add_argument("--lambda_feat", type=float, default=10.0)
    p.add_argument("--lambda_vgg", type=float, default=10.0)
    p.add_argument("--lambda_kld", type=float, default=0.05)
    p.add_argument("--lambda_l1", type=float, default=0.0, help="L1 to the real image (pix2pix); 0: SPADE's recipe")
    p.add_argument(
        "--lambda_texture", type=float, default=0.0, help="per-class random-filter texture statistics (no download)"
    )
    p.add_argument("--init_from", help="start a new run from a saved generator (e.g. rtgan/weights/NAME)")
    p.add_argument("--vgg_weights", help="torchvision vgg19 weights (.pth/.safetensors) for the perceptual loss")
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--n_layers_D", type=int, default=4)
    p.add_argument("--num_D", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="CPU threads per process")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--save_every", type=int, default=500)
    p.add_argument("--sample_every", type=int, default=500)
    p.add_argument("--log_every", type=int, default=10)
    p.add_argument("--no_progress", action="store_true")
    a = p.parse_args(argv)

    options: dict = {}
    arch = a.arch
    if a.preset:
        preset = get_preset(a.preset)
        if arch and arch != preset.arch:
            p.error(f"--arch {arch} disagrees with --preset {a.preset} ({preset.arch})")
        arch, options = preset.arch, dict(preset.options)
    if not arch:
        p.error("give --arch or --preset")
    options.update(parse_sets(a.set))
    if "label_ids" in options:
        options["label_ids"] = list(options["label_ids"])  # JSON-friendly in the run's config
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = TrainConfig(
        arch=arch,
        model=options,
        out=a.out,
        data=a.data,
        root=a.root,
        split=a.split,
        size=parse_size(a.size),
        count=a.count,
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        no_TTUR=a.no_TTUR,
        lambda_feat=a.lambda_feat,
        lambda_vgg=a.lambda_vgg,
        lambda_kld=a.lambda_kld,
        lambda_l1=a.lambda_l1,
        lambda_texture=a.lambda_texture,
        vgg_weights=a.vgg_weights,
        init_from=a.init_from,
        discriminator=DiscriminatorConfig(ndf=a.ndf, n_layers_D=a.n_layers_D, num_D=a.num_D),
        seed=a.seed,
        amp=a.amp,
        device=a.device,
        workers=a.workers,
        save_every=a.save_every,
        sample_every=a.sample_every,
        log_every=a.log_every,
        progress=not a.no_progress,
    )
    train(cfg)


if __name__ == "__main__":
    main()
