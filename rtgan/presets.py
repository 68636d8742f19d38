"""Presets: the options of each released official checkpoint / official dataset mode.

The options are those the official test scripts run with, which is not always the dataset
mode's default: the ASAPNet facades checkpoints were trained with `--reflection_pad`, and SPADE's
Cityscapes mode uses `more` upsampling, which no key in the checkpoint reveals.

The table is torch-free, so every command can check a preset name before PyTorch loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .data.landscapes import LABEL_IDS as LANDSCAPE_IDS
from .utils.names import lookup

# Every architecture name `rtgan.models.registry.ARCHITECTURES` builds, in its order (a test keeps
# the two equal): here, torch-free, so that a command checks --arch before PyTorch loads.
ARCHS = ("spade", "asapnet", "pix2pixhd", "pix2pix", "cyclegan", "munit", "dcgan", "dcgan-pytorch-gan", "cgan",
         "infogan", "stylegan", "oasis", "sean")  # fmt: skip


def check_arch(arch: str) -> str:
    """`arch` if the model registry builds it; else a ConfigError naming the closest one."""
    lookup(arch, dict.fromkeys(ARCHS), "architecture")
    return arch


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    arch: str
    options: dict[str, Any]
    description: str
    source: str
    notes: str = ""  # what a user of the checkpoint should know, for the README's table

    def config(self, **overrides: Any):
        from .models.registry import make_config  # PyTorch: the table itself is read without it

        return make_config(self.arch, **{**self.options, **overrides})


_SPADE_COCO = dict(
    label_nc=182,
    contain_dontcare_label=True,
    no_instance=False,
    crop_size=256,
    aspect_ratio=1.0,
    num_upsampling_layers="normal",
    norm_G="spectralspadesyncbatch3x3",
)
_ASAP_FACADES = dict(
    label_nc=13,
    contain_dontcare_label=False,
    no_instance_edge=True,
    no_instance_dist=True,
    lr_instance=False,
    aspect_ratio=1.0,
    reflection_pad=True,
)
# The bundled models: slim configurations on the procedural landscapes' 15 COCO-Stuff classes at
# 256x256, sized for real time on two CPU cores (see rtgan/weights/*/MODEL_CARD.md).
_LANDSCAPE = dict(label_nc=len(LANDSCAPE_IDS), label_ids=LANDSCAPE_IDS)
_LANDSCAPE_SIZE = dict(crop_size=256, aspect_ratio=1.0)
_P2PHD_CITY = dict(label_nc=35, no_instance=False, n_downsample_global=4, n_blocks_global=9, norm="instance")
# Released pix2pix / CycleGAN generators (scripts/download_{pix2pix,cyclegan}_model.sh of
# junyanz/pytorch-CycleGAN-and-pix2pix): every CycleGAN one is resnet_9blocks + instance norm
# without dropout (`test.py --model test --no_dropout`); every pix2pix one unet_256 + batch norm +
# dropout, run by the default test.py with per-image batch statistics (and random dropout, off here).
_CYCLEGAN = dict(netG="resnet_9blocks", norm="instance", no_dropout=True)
_PIX2PIX = dict(netG="unet_256", norm="batch", no_dropout=False, bn_mode="per_image")
_CYCLEGAN_RELEASES = {
    "style-monet": ("style_monet", "photo -> Monet painting"),
    "style-vangogh": ("style_vangogh", "photo -> Van Gogh painting"),
    "style-ukiyoe": ("style_ukiyoe", "photo -> Ukiyo-e print"),
    "style-cezanne": ("style_cezanne", "photo -> Cezanne painting"),
    "monet2photo": ("monet2photo", "Monet painting -> photo"),
    "horse2zebra": ("horse2zebra", "horse -> zebra"),
    "zebra2horse": ("zebra2horse", "zebra -> horse"),
}
_PIX2PIX_RELEASES = {
    "facades-label2photo": ("facades_label2photo", "CMP Facades label rendering -> facade photo"),
    "edges2shoes": ("edges2shoes", "edge map -> shoe photo"),
    "map2sat": ("map2sat", "Google map -> aerial photo"),
    "sat2map": ("sat2map", "aerial photo -> Google map"),
}
# rosinality StyleGAN's Generator.progression widths, 4 to 1024 px (the same at every released size)
_STYLEGAN_CHANNELS = (512, 512, 512, 512, 256, 128, 64, 32, 16)
# OASIS_Generator at the dataset modes' settings (dataloaders/*.py set label_nc, crop_size, aspect_ratio)
_OASIS = dict(contain_dontcare_label=True, channels_G=64, num_res_blocks=6, z_dim=64, no_3dnoise=False,
              param_free_norm="syncbatch", spade_ks=3, no_spectral_norm=False)  # fmt: skip
_OASIS_RELEASES = (
    ("ade20k", "ADE20K", "256x256", dict(label_nc=150, crop_size=256, aspect_ratio=1.0), "ids 0..150, 0 = unknown"),
    ("cityscapes", "Cityscapes", "256x512", dict(label_nc=34, crop_size=512, aspect_ratio=2.0),
     "labelIds 0..33 (channel 34 unused), no instance edges"),
    ("coco", "COCO-Stuff", "256x256", dict(label_nc=182, crop_size=256, aspect_ratio=1.0),
     "COCO-Stuff ids + 1, 0 = unlabelled (`dataset_labels`)"),
)  # fmt: skip

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "spade-cityscapes",
            "spade",
            dict(
                label_nc=35,
                contain_dontcare_label=False,
                no_instance=False,
                crop_size=512,
                aspect_ratio=2.0,
                num_upsampling_layers="more",
                norm_G="spectralspadesyncbatch3x3",
            ),
            "SPADE on Cityscapes, 256x512, 35 labels + instance edges",
            "NVlabs/SPADE cityscapes_pretrained",
            notes="`more` upsampling (not visible in the checkpoint keys)",
        ),
        Preset(
            "spade-ade20k",
            "spade",
            dict(
                label_nc=150,
                contain_dontcare_label=True,
                no_instance=True,
                crop_size=256,
                aspect_ratio=1.0,
                num_upsampling_layers="normal",
                norm_G="spectralspadesyncbatch3x3",
            ),
            "SPADE on ADE20K, 256x256, 150 labels + don't-care",
            "NVlabs/SPADE ade20k_pretrained",
        ),
        Preset(
            "spade-coco",
            "spade",
            _SPADE_COCO,
            "SPADE on COCO-Stuff, 256x256, 182 labels + don't-care + instance edges",
            "NVlabs/SPADE coco_pretrained",
        ),
        Preset(
            "spade-coco-vae",
            "spade",
            {**_SPADE_COCO, "use_vae": True},
            "SPADE on COCO-Stuff with the VAE style encoder (multi-modal synthesis)",
            "trained with --use_vae",
            notes=(
                "with `encoder=latest_net_E.pth`: `model.encode(image) -> (mu, logvar)`, `model(sem, z=...)`; "
                "engines take `z` or a `style` image"
            ),
        ),
        Preset(
            "asapnet-cityscapes",
            "asapnet",
            dict(
                label_nc=35,
                contain_dontcare_label=False,
                no_instance_edge=False,
                no_instance_dist=True,
                lr_instance=True,
                crop_size=512,
                aspect_ratio=2.0,
                reflection_pad=False,
            ),
            "ASAPNet on Cityscapes, 256x512, tile 16",
            "tamarott/ASAPNet cityscapes",
            notes="tile 16; instance edges to the low-res stream only",
        ),
        Preset(
            "asapnet-facades512",
            "asapnet",
            {**_ASAP_FACADES, "crop_size": 512},
            "ASAPNet on CMP Facades, 512x512, tile 32 (tent pre-downsample x2)",
            "tamarott/ASAPNet facades512",
            notes="tile 32; reflection padding (as the official test script)",
        ),
        Preset(
            "asapnet-facades1024",
            "asapnet",
            {**_ASAP_FACADES, "crop_size": 1024},
            "ASAPNet on CMP Facades, 1024x1024, tile 64 (tent pre-downsample x4)",
            "tamarott/ASAPNet facades1024",
            notes="tile 64; reflection padding, tent pre-downsample ×4",
        ),
        Preset(
            "pix2pixhd-label2city-512p",
            "pix2pixhd",
            {**_P2PHD_CITY, "netG": "global", "ngf": 64},
            "pix2pixHD global generator on Cityscapes, 512x1024",
            "NVIDIA/pix2pixHD label2city_512p",
            notes="global generator; trained at 512×1024",
        ),
        Preset(
            "pix2pixhd-label2city-1024p",
            "pix2pixhd",
            {**_P2PHD_CITY, "netG": "local", "ngf": 32, "n_local_enhancers": 1, "n_blocks_local": 3},
            "pix2pixHD local enhancer on Cityscapes, 1024x2048",
            "NVIDIA/pix2pixHD label2city_1024p",
            notes="local enhancer; trained at 1024×2048",
        ),
        Preset(
            "landscape-asapnet",
            "asapnet",
            {
                **_LANDSCAPE,
                **_LANDSCAPE_SIZE,
                "contain_dontcare_label": False,
                "no_instance_edge": True,
                "lr_instance": False,
                "lr_width": 16,
                "lr_max_width": 128,
                "lr_depth": 5,
                "hr_width": 32,
                "hr_depth": 4,
                "noise_nc": 4,  # octave noise into the MLPs: texture instead of a tile-periodic plaid
            },
            "slim ASAPNet for the procedural landscapes, 256x256: the real-time demo default",
            "rtgan (trained here)",
            notes="the demo default; octave noise into the MLPs",
        ),
        Preset(
            "landscape-spade",
            "spade",
            {
                **_LANDSCAPE,
                **_LANDSCAPE_SIZE,
                "contain_dontcare_label": False,
                "no_instance": True,
                "ngf": 16,
                "spade_hidden": 32,
                "norm_G": "spectralspadeinstance3x3",
                "use_vae": True,
                "z_dim": 64,
                "noise_nc": 4,  # a texture source inside flat label regions (labels.with_noise)
            },
            "slim SPADE with its VAE style encoder for the procedural landscapes, 256x256",
            "rtgan (trained here)",
            notes="with its VAE style encoder",
        ),
        Preset(
            "landscape-pix2pixhd",
            "pix2pixhd",
            {
                **_LANDSCAPE,
                "no_instance": True,
                "ngf": 16,
                "netG": "global",
                "n_downsample_global": 3,
                "n_blocks_global": 4,
                "noise_nc": 4,
                "noise_decoder": True,
                "upsample": "bilinear",  # transposed convs painted a stride checkerboard, nearest blocks
            },
            "slim pix2pixHD global generator for the procedural landscapes, 256x256",
            "rtgan (trained here)",
            notes="bilinear resize-conv decoder; trained at 256×256",
        ),
        Preset(
            "sketch2landscape-pix2pix",
            "pix2pix",
            # slim (ngf 16: ~0.4 GMAC at 256x256, real time on two CPU cores); no dropout, so that a
            # webcam frame paints the same every time; batch norm with per-image statistics, which
            # at batch 1 is what training saw (rtgan.train's recipe of the same name)
            {"netG": "unet_256", "ngf": 16, "norm": "batch", "no_dropout": True, "bn_mode": "per_image"},
            "slim pix2pix U-Net: a pencil sketch of a landscape (rtgan.data.sketches) -> a painted landscape, 256x256",
            "rtgan (trained here)",
            notes="hold a drawing up to the camera; trained on rendered sketches",
        ),
        # image -> image (rtgan/models/pix2pix.py), 256x256 like the releases
        *(
            Preset(
                f"cyclegan-{name}",
                "cyclegan",
                _CYCLEGAN,
                f"CycleGAN {domains}, 256x256 RGB (ResNet 9 blocks)",
                f"junyanz/pytorch-CycleGAN-and-pix2pix {release} (latest_net_G.pth)",
                notes=domains,
            )
            for name, (release, domains) in _CYCLEGAN_RELEASES.items()
        ),
        *(
            Preset(
                f"pix2pix-{name}",
                "pix2pix",
                _PIX2PIX,
                f"pix2pix {domains}, 256x256 RGB (U-Net 256)",
                f"junyanz/pytorch-CycleGAN-and-pix2pix {release} (latest_net_G.pth)",
                notes=f"{domains}; per-image batch norm as test.py; dropout off unless `dropout_seed`",
            )
            for name, (release, domains) in _PIX2PIX_RELEASES.items()
        ),
        Preset(
            "munit-edges2shoes",
            "munit",
            dict(
                dim=64,
                mlp_dim=256,
                style_dim=8,
                activ="relu",
                n_downsample=2,
                n_res=4,
                pad_type="reflect",
                input_dim_a=3,
                input_dim_b=3,
                new_size=256,
                a2b=True,
            ),  # fmt: skip
            "MUNIT on edges2shoes: edge map -> shoe photo, 256x256, style code sampled N(0, I) or from a shoe",
            "NVlabs/MUNIT configs/edges2shoes_folder.yaml (gen_*.pt)",
            notes="`a2b=False` paints edges from shoes; sides multiples of 4",
        ),
        # noise -> image (rtgan/models/classic.py), at the reference scripts' defaults
        Preset(
            "dcgan-pytorch-examples",
            "dcgan",
            dict(nz=100, ngf=64, nc=3, imageSize=64),
            "DCGAN (pytorch/examples), 64x64 RGB from a 100-d z",
            "pytorch/examples dcgan/main.py (netG_epoch_N.pth)",
            notes="`netG_epoch_N.pth`; options `nz`, `ngf`, `nc`, `imageSize`",
        ),
        Preset(
            "dcgan-pytorch-gan",
            "dcgan-pytorch-gan",
            dict(latent_dim=100, img_size=32, channels=1),
            "DCGAN (PyTorch-GAN: Linear + upsampling convs), 32x32 grayscale from a 100-d z",
            "eriklindernoren/PyTorch-GAN implementations/dcgan",
            notes="options `latent_dim`, `img_size`, `channels`",
        ),
        Preset(
            "cgan-pytorch-gan",
            "cgan",
            dict(latent_dim=100, n_classes=10, img_size=32, channels=1),
            "conditional GAN (PyTorch-GAN MLP), 32x32 grayscale, 10 classes",
            "eriklindernoren/PyTorch-GAN implementations/cgan",
            notes="`model(z, labels)`",
        ),
        Preset(
            "infogan-pytorch-gan",
            "infogan",
            dict(latent_dim=62, code_dim=2, n_classes=10, img_size=32, channels=1),
            "InfoGAN (PyTorch-GAN), 32x32 grayscale, 10 classes + 2 continuous codes",
            "eriklindernoren/PyTorch-GAN implementations/infogan",
            notes="`model(z, label_onehot, code)`",
        ),
        # rosinality/style-based-gan-pytorch: the same keys at every size (the resolution is `step`)
        *(
            Preset(
                f"stylegan-ffhq-{size}",
                "stylegan",
                dict(code_dim=512, n_mlp=8, channels=_STYLEGAN_CHANNELS, fused=True, size=size),
                f"StyleGAN (rosinality) on FFHQ, {size}x{size}, from a 512-d z and per-resolution noise",
                f"rosinality/style-based-gan-pytorch README: the {size}px checkpoint (its 'g_running' entry)",
                notes=f"step {size.bit_length() - 3}; `model(z, step=, alpha=, mean_style=, style_weight=, "
                "mixing_range=)`",
            )
            for size in (256, 512, 1024)
        ),
        # boschresearch/OASIS pretrained checkpoints (models/best_EMA.pth); labels are the dataloaders' channel indices
        *(
            Preset(
                f"oasis-{mode}",
                "oasis",
                {**_OASIS, **options},
                f"OASIS on {name}, {size}, from label ids and a 64-d z (3D noise)",
                f"boschresearch/OASIS README: oasis_{mode}_pretrained (models/best_EMA.pth)",
                notes=f"{ids}; `model(model.prepare(labels), z=z)`",
            )
            for mode, name, size, options, ids in _OASIS_RELEASES
        ),
        Preset(
            "sean-celebahq",
            "sean",
            dict(
                label_nc=19,
                contain_dontcare_label=False,
                no_instance=True,
                crop_size=256,
                aspect_ratio=1.0,
                ngf=64,
                norm_G="spectralspadesyncbatch3x3",
                num_upsampling_layers="normal",
                style_length=512,
            ),
            "SEAN on CelebAMask-HQ, 256x256, 19 face-part labels and a 512-d style code per part",
            "ZPdesu/SEAN README: CelebA-HQ_pretrained (checkpoints/CelebA-HQ_pretrained/latest_net_G.pth)",
            notes="`model(semantics, style=model.encode(image, semantics))`; engines take the codes "
            "(`style_input='image'`: a style image)",
        ),
    ]
}


def get_preset(name: str) -> Preset:
    return lookup(name, PRESETS, "preset")


def list_presets() -> list[str]:
    return list(PRESETS)
