"""Architecture name -> (config class, module class), and building a model from either."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from ..utils.names import lookup
from .asapnet import ASAPNetConfig, ASAPNetGenerator
from .classic import (
    CGANConfig,
    CGANGenerator,
    DCGANConfig,
    DCGANGenerator,
    InfoGANConfig,
    InfoGANGenerator,
    PyTorchGANDCGANConfig,
    PyTorchGANDCGANGenerator,
)
from .config import GeneratorConfig
from .munit import MUNITConfig, MUNITGenerator
from .oasis import OASISConfig, OASISGenerator
from .pix2pix import CycleGANConfig, Pix2PixConfig, Pix2PixGenerator
from .pix2pixhd import Pix2PixHDConfig, Pix2PixHDGenerator
from .sean import SEANConfig, SEANGenerator
from .spade import SPADEConfig, SPADEGenerator
from .stylegan import StyleGANConfig, StyleGANGenerator

# config class, and the module class (or builder) that takes it
ARCHITECTURES: dict[str, tuple[type[GeneratorConfig], Callable[..., nn.Module]]] = {
    "spade": (SPADEConfig, SPADEGenerator),
    "asapnet": (ASAPNetConfig, ASAPNetGenerator),
    "pix2pixhd": (Pix2PixHDConfig, Pix2PixHDGenerator),
    # image -> image (rtgan/models/pix2pix.py): the same generators, different defaults
    "pix2pix": (Pix2PixConfig, Pix2PixGenerator),
    "cyclegan": (CycleGANConfig, Pix2PixGenerator),
    "munit": (MUNITConfig, MUNITGenerator),  # NVlabs/MUNIT: the AdaINGen pair of a gen_*.pt file
    # noise -> image (rtgan/models/classic.py); the two DCGANs are different architectures
    "dcgan": (DCGANConfig, DCGANGenerator),  # pytorch/examples
    "dcgan-pytorch-gan": (PyTorchGANDCGANConfig, PyTorchGANDCGANGenerator),  # eriklindernoren/PyTorch-GAN
    "cgan": (CGANConfig, CGANGenerator),
    "infogan": (InfoGANConfig, InfoGANGenerator),
    "stylegan": (StyleGANConfig, StyleGANGenerator),  # rosinality/style-based-gan-pytorch StyledGenerator
    "oasis": (OASISConfig, OASISGenerator),  # boschresearch/OASIS OASIS_Generator (best_EMA.pth)
    "sean": (SEANConfig, SEANGenerator),  # ZPdesu/SEAN SPADEGenerator with its Zencoder (latest_net_G.pth)
}


def check_arch(arch: str) -> str:
    lookup(arch, ARCHITECTURES, "architecture")
    return arch


def make_config(arch: str, **options: Any) -> GeneratorConfig:
    """Official option names -> the architecture's config (unknown names are an error)."""
    return ARCHITECTURES[check_arch(arch)][0].from_options(**options)


def build(config: GeneratorConfig) -> nn.Module:
    """A freshly initialised generator for `config`, in eval mode."""
    return ARCHITECTURES[check_arch(config.arch)][1](config).eval()
