"""The recipe each bundled model was trained with, so `python -m rtgan.train --recipe NAME` trains it.

`--preset NAME` alone gives the model options only, with the generic training defaults (SPADE's
4-layer ndf 64 discriminator, no L1, no texture loss): not what the shipped models had. A recipe is
the preset plus the flags of its run (training/NAME/checkpoint, whose train_config a test compares
with this table). Explicit flags still win over a recipe's. Torch-free: read before PyTorch loads.

What a recipe cannot replay is a run's history: each bundled run changed its loss weights along
the way and pix2pixHD's had its upsampling replaced (the model cards list every change and the
command that made it); a recipe is the final one, from step 0.
"""

from __future__ import annotations

# the discriminator and loss weights all three CPU runs settled on
_LANDSCAPE = {"count": 2000, "ndf": 32, "n_layers_D": 3, "num_D": 2, "lambda_l1": 1.0, "lambda_texture": 20.0}

# bundled model -> flags (argparse dests of `python -m rtgan.train`) over the defaults
RECIPES: dict[str, dict] = {
    "landscape-asapnet": {**_LANDSCAPE, "batch_size": 4},
    "landscape-spade": {**_LANDSCAPE, "batch_size": 2, "lambda_kld": 0.01},
    "landscape-pix2pixhd": {**_LANDSCAPE, "batch_size": 2},
    # pix2pix's own recipe (batch 1, L1 x100, Adam lr 2e-4 betas (0.5, 0.999) for both nets, a 70x70
    # PatchGAN: one scale, 3 stride-2 layers, at half width) with LSGAN, which is steadier than its BCE at batch 1,
    # and feature matching, which sharpens textures sooner on a CPU budget; 4 drawing styles per scene
    "sketch2landscape-pix2pix": {
        "data": "sketches",
        "count": 2000,
        "variants": 4,
        "batch_size": 1,
        "no_TTUR": True,
        "gan_mode": "lsgan",
        "lambda_l1": 100.0,
        "lambda_feat": 10.0,
        "ndf": 32,  # half pix2pix's 64: a quarter of the discriminator's cost, most of a CPU step's
        "n_layers_D": 4,
        "num_D": 1,
    },
}
