"""Generators exactly as published, configured by dataclasses, with official and own checkpoints."""

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
from .init import init_weights
from .io import load, save
from .oasis import OASISConfig, OASISGenerator
from .official import load_official, read_state_dict
from .pix2pix import CycleGANConfig, Pix2PixConfig, ResnetGenerator, UnetGenerator
from .pix2pixhd import Pix2PixHDConfig, Pix2PixHDGenerator
from .presets import PRESETS, Preset, get_model, get_preset, list_presets
from .registry import ARCHITECTURES, build, make_config
from .sean import SEANConfig, SEANGenerator
from .spade import ConvEncoder, SPADEConfig, SPADEGenerator
from .stylegan import StyleGANConfig, StyleGANGenerator

__all__ = [
    "ARCHITECTURES",
    "ASAPNetConfig",
    "ASAPNetGenerator",
    "CGANConfig",
    "CGANGenerator",
    "ConvEncoder",
    "CycleGANConfig",
    "DCGANConfig",
    "DCGANGenerator",
    "InfoGANConfig",
    "InfoGANGenerator",
    "OASISConfig",
    "OASISGenerator",
    "PRESETS",
    "Pix2PixConfig",
    "Pix2PixHDConfig",
    "Pix2PixHDGenerator",
    "Preset",
    "PyTorchGANDCGANConfig",
    "PyTorchGANDCGANGenerator",
    "ResnetGenerator",
    "SEANConfig",
    "SEANGenerator",
    "SPADEConfig",
    "SPADEGenerator",
    "StyleGANConfig",
    "StyleGANGenerator",
    "UnetGenerator",
    "build",
    "get_model",
    "get_preset",
    "init_weights",
    "list_presets",
    "load",
    "load_official",
    "make_config",
    "read_state_dict",
    "save",
]
