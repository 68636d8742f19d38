"""Training: multi-scale discriminator, SPADE's losses, checkpoints that resume, DDP."""

from .discriminator import DiscriminatorConfig, MultiscaleDiscriminator
from .trainer import TrainConfig, Trainer, train

__all__ = ["DiscriminatorConfig", "MultiscaleDiscriminator", "TrainConfig", "Trainer", "train"]
