"""MUNIT training (Huang et al., ECCV 2018) on unpaired sketches (domain a) and photos (domain b).

    python -m rtgan.train.munit --out runs/munit --steps 20000                   # resumes when it exists
    python -m rtgan.train.munit --out /tmp/mu --steps 5 --size 64x64 --dim 8 --mlp-dim 16 --dis-dim 8

    trainer = train(MUNITTrainConfig(out="runs/mu", steps=100, size=(64, 64), dim=8))
    trainer.model      # a `munit` MUNITGenerator (a2b: sketch -> photo); OUT/generator is it saved

The recipe is NVlabs/MUNIT's `MUNIT_Trainer` and `configs/edges2shoes_folder.yaml`, by their
option names (the YAML's `dis:` block is prefixed `dis_` where a name is also one of `gen:`'s):
- two AdaINGen auto-encoders (`rtgan.models.munit`, exact to the official code) and two MsImageDis
  (built here as the official one: per scale, n_layer 4x4 stride-2 Conv2dBlocks, the first without
  norm, then a 1x1 conv; 3x3 average pooling between scales; keys as `dis_*.pt`);
- init: every Conv2d / Linear by `init` (kaiming, fan_in), then the discriminators' by gaussian
  N(0, 0.02), biases 0; Adam(lr, (beta1, beta2), weight_decay) for both sides; lr halves every
  `step_size` iterations (`lr_policy step`, stepped before each iteration as train.py does);
- each iteration is train.py's `dis_update` then `gen_update`:
  - dis_update: styles s_a, s_b ~ N(0, I); x_ba = gen_a.decode(c_b, s_a), x_ab = gen_b.decode(c_a,
    s_b), detached (computed without a graph here: the same values); gan_w * (dis_a's loss on
    (x_ba, x_a) + dis_b's on (x_ab, x_b)), LSGAN summed over scales: mean(D(fake)^2) + mean((D(real) - 1)^2);
  - gen_update, with the discriminators frozen: fresh styles; encode both domains (c, s'); within-
    domain reconstruction x_a_recon = gen_a.decode(c_a, s_a'); the translations x_ba, x_ab; encode
    them again (c_b_recon, s_a_recon = gen_a.encode(x_ba) ...); loss = gan_w * (adv a + adv b) +
    recon_x_w * |x_recon - x| + recon_s_w * |s_recon - s| + recon_c_w * |c_recon - c| per domain
    (+ recon_x_cyc_w * |x_aba - x_a| ..., off at 0 as edges2shoes; vgg_w is not offered: it needs
    downloaded VGG16 weights, and edges2shoes has it at 0).

The official gen_update leaves the discriminators trainable and clears their gradients before
their own step; freezing them is the same update without that wasted work. Each iteration's styles
come from a generator seeded by (seed, step), so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError
from ..models import build, make_config
from ..models import io as model_io
from ..models.munit import ACTIVATIONS, PAD_TYPES, STYLE_DOWNSAMPLE, Conv2dBlock
from ..utils import cli
from .cyclegan import UnpairedRunConfig, UnpairedTrainer, add_run_options, cli_main, grid, run_fields, run_training

PROG = "python -m rtgan.train.munit"
GAN_TYPES = ("lsgan", "nsgan")
DIS_NORMS = ("none", "in", "ln")  # Conv2dBlock's; the official "bn" is not offered
INITS = ("kaiming", "gaussian", "xavier", "orthogonal")
LR_POLICIES = ("step", "constant")


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclasses.dataclass
class MUNITTrainConfig(UnpairedRunConfig):
    """edges2shoes_folder.yaml's options by their names (`dis_*`: the YAML's `dis:` block)."""

    # gen:
    dim: int = 64
    mlp_dim: int = 256
    style_dim: int = 8
    activ: str = "relu"
    n_downsample: int = 2
    n_res: int = 4
    pad_type: str = "reflect"
    # dis:
    dis_dim: int = 64
    dis_norm: str = "none"
    dis_activ: str = "lrelu"
    n_layer: int = 4
    gan_type: str = "lsgan"
    num_scales: int = 3
    dis_pad_type: str = "reflect"
    # loss weights
    gan_w: float = 1.0
    recon_x_w: float = 10.0
    recon_s_w: float = 1.0
    recon_c_w: float = 1.0
    recon_x_cyc_w: float = 0.0
    # optimization
    lr: float = 0.0001
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0001
    init: str = "kaiming"
    lr_policy: str = "step"
    step_size: int = 100000
    gamma: float = 0.5

    def validate(self) -> None:
        super().validate()
        for k in ("dim", "mlp_dim", "style_dim", "n_res", "dis_dim", "n_layer", "num_scales", "lr", "step_size"):
            _need(getattr(self, k) > 0, f"{k} must be positive, got {getattr(self, k)}")
        for k in ("n_downsample", "gan_w", "recon_x_w", "recon_s_w", "recon_c_w", "recon_x_cyc_w", "weight_decay"):
            _need(getattr(self, k) >= 0, f"{k} must be >= 0, got {getattr(self, k)}")
        for k in ("beta1", "beta2"):
            _need(0 <= getattr(self, k) < 1, f"{k} must be in [0, 1), got {getattr(self, k)}")
        _need(self.gamma > 0, f"gamma must be positive, got {self.gamma}")
        for k, allowed in (("activ", ACTIVATIONS), ("dis_activ", ACTIVATIONS), ("pad_type", PAD_TYPES),
                           ("dis_pad_type", PAD_TYPES), ("dis_norm", DIS_NORMS), ("gan_type", GAN_TYPES),
                           ("init", INITS), ("lr_policy", LR_POLICIES)):  # fmt: skip
            _need(getattr(self, k) in allowed, f"{k} must be one of {', '.join(allowed)}, got {getattr(self, k)!r}")
        self._check_size()

    def _check_size(self) -> None:
        h, w = self.size
        try:
            self.generator_config().check_size(h, w)
        except InputError as e:
            raise ConfigError(f"size {h}x{w}: {e}") from None
        side = 2**STYLE_DOWNSAMPLE
        _need(min(h, w) >= side, f"size {h}x{w}: the style encoder needs sides of at least {side}")
        side = 2 ** (self.num_scales - 1 + self.n_layer)  # its last conv's reflection pad needs 2 pixels
        _need(min(h, w) >= side, f"size {h}x{w}: {self.num_scales} scales of {self.n_layer} stride-2 convs need sides "
              f"of at least {side}")  # fmt: skip

    def generator_config(self):
        names = ("dim", "mlp_dim", "style_dim", "activ", "n_downsample", "n_res", "pad_type")
        return make_config("munit", **{k: getattr(self, k) for k in names}, new_size=self.size[0])


class MsImageDis(nn.Module):
    """The official multi-scale discriminator: `cnns.N` scales of n_layer 4x4 stride-2 Conv2dBlocks
    (widths dim, 2 dim, ...) and a 1x1 score conv; each next scale sees the input average-pooled by 2."""

    def __init__(self, input_dim: int, dim: int, n_layer: int, norm: str, activ: str, num_scales: int, pad: str):
        super().__init__()
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.cnns = nn.ModuleList(self._net(input_dim, dim, n_layer, norm, activ, pad) for _ in range(num_scales))

    @staticmethod
    def _net(input_dim: int, dim: int, n_layer: int, norm: str, activ: str, pad: str) -> nn.Sequential:
        layers = [Conv2dBlock(input_dim, dim, 4, 2, 1, "none", activ, pad)]
        for _ in range(n_layer - 1):
            layers.append(Conv2dBlock(dim, dim * 2, 4, 2, 1, norm, activ, pad))
            dim *= 2
        return nn.Sequential(*layers, nn.Conv2d(dim, 1, 1, 1, 0))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for cnn in self.cnns:
            outputs.append(cnn(x))
            x = self.downsample(x)
        return outputs


def dis_loss(gan_type: str, fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """`calc_dis_loss`: summed (not averaged) over scales, no 0.5 factor, as the official."""
    if gan_type == "lsgan":
        return sum(f.square().mean() + (r - 1).square().mean() for f, r in zip(fake, real))
    bce = F.binary_cross_entropy_with_logits  # = BCE(sigmoid(out)), without its saturation
    return sum(bce(f, torch.zeros_like(f)) + bce(r, torch.ones_like(r)) for f, r in zip(fake, real))


def gen_loss(gan_type: str, fake: list[torch.Tensor]) -> torch.Tensor:
    """`calc_gen_loss`: the translations scored as real, summed over scales."""
    if gan_type == "lsgan":
        return sum((f - 1).square().mean() for f in fake)
    return sum(F.binary_cross_entropy_with_logits(f, torch.ones_like(f)) for f in fake)


@torch.no_grad()
def official_init(module: nn.Module, kind: str) -> nn.Module:
    """utils.weights_init: Conv*/Linear weights by `kind`, biases 0; everything else as built."""
    inits = {
        "gaussian": lambda w: nn.init.normal_(w, 0.0, 0.02),
        "kaiming": lambda w: nn.init.kaiming_normal_(w, a=0, mode="fan_in"),
        "xavier": lambda w: nn.init.xavier_normal_(w, gain=2**0.5),
        "orthogonal": lambda w: nn.init.orthogonal_(w, gain=2**0.5),
    }
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            inits[kind](m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def _l1(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (x - target).abs().mean()  # recon_criterion


class MUNITTrainer(UnpairedTrainer):
    recipe = "munit"
    cfg: MUNITTrainConfig

    def __init__(self, cfg: MUNITTrainConfig):
        super().__init__(cfg)
        torch.manual_seed(cfg.seed)
        self.model = official_init(build(cfg.generator_config()), cfg.init).to(self.device).train()
        self.gen_a, self.gen_b = self.model.gen_a, self.model.gen_b

        def dis(input_dim: int) -> MsImageDis:
            d = MsImageDis(input_dim, cfg.dis_dim, cfg.n_layer, cfg.dis_norm, cfg.dis_activ, cfg.num_scales,
                           cfg.dis_pad_type)  # fmt: skip
            official_init(d, cfg.init)  # the official applies `init` to all, then gaussian to the Ds
            return official_init(d, "gaussian").to(self.device).train()

        self.dis_a, self.dis_b = dis(self.model.config.input_dim_a), dis(self.model.config.input_dim_b)
        adam = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay)
        self.dis_opt = torch.optim.Adam([*self.dis_a.parameters(), *self.dis_b.parameters()], **adam)
        self.gen_opt = torch.optim.Adam([*self.gen_a.parameters(), *self.gen_b.parameters()], **adam)

    # -- what the checkpoint holds -------------------------------------------------------------
    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.model}  # both AdaINGens, as one rtgan `munit` model

    def nets(self) -> dict[str, nn.Module]:
        return {"dis_a": self.dis_a, "dis_b": self.dis_b}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"gen_opt": self.gen_opt, "dis_opt": self.dis_opt}

    # -- one iteration ---------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """StepLR as train.py steps it: once before each iteration, so iteration i runs at
        lr * gamma ** ((i + 1) // step_size)."""
        cfg = self.cfg
        return cfg.lr if cfg.lr_policy == "constant" else cfg.lr * cfg.gamma ** ((step + 1) // cfg.step_size)

    def _styles(self, g: torch.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (batch, self.cfg.style_dim, 1, 1)
        return torch.randn(shape, generator=g).to(self.device), torch.randn(shape, generator=g).to(self.device)

    def train_step(self, x_a: torch.Tensor, x_b: torch.Tensor) -> dict[str, float]:
        g = torch.Generator().manual_seed(self.step_seed())
        for opt in (self.gen_opt, self.dis_opt):
            for group in opt.param_groups:
                group["lr"] = self.lr_at(self.step)
        losses = self.dis_update(x_a, x_b, g)
        losses.update(self.gen_update(x_a, x_b, g))
        out = self.check_finite(self.step, losses)
        self.step += 1
        return out

    def dis_update(self, x_a: torch.Tensor, x_b: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        s_a, s_b = self._styles(g, len(x_a))
        with torch.no_grad():  # the official detaches them: no gradient reaches the generators
            x_ba = self.gen_a.decode(self.gen_b.enc_content(x_b), s_a)
            x_ab = self.gen_b.decode(self.gen_a.enc_content(x_a), s_b)
        loss_a = dis_loss(cfg.gan_type, self.dis_a(x_ba), self.dis_a(x_a))
        loss_b = dis_loss(cfg.gan_type, self.dis_b(x_ab), self.dis_b(x_b))
        self.dis_opt.zero_grad(set_to_none=True)
        (cfg.gan_w * loss_a + cfg.gan_w * loss_b).backward()
        self.dis_opt.step()
        return {"D_a": loss_a, "D_b": loss_b}

    def gen_update(self, x_a: torch.Tensor, x_b: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        s_a, s_b = self._styles(g, len(x_a))
        c_a, s_a_prime = self.gen_a.encode(x_a)
        c_b, s_b_prime = self.gen_b.encode(x_b)
        x_a_recon, x_b_recon = self.gen_a.decode(c_a, s_a_prime), self.gen_b.decode(c_b, s_b_prime)
        x_ba, x_ab = self.gen_a.decode(c_b, s_a), self.gen_b.decode(c_a, s_b)
        c_b_recon, s_a_recon = self.gen_a.encode(x_ba)
        c_a_recon, s_b_recon = self.gen_b.encode(x_ab)
        for d in (self.dis_a, self.dis_b):
            d.requires_grad_(False)
        losses = {
            "adv_a": gen_loss(cfg.gan_type, self.dis_a(x_ba)),
            "adv_b": gen_loss(cfg.gan_type, self.dis_b(x_ab)),
            "recon_x_a": _l1(x_a_recon, x_a),
            "recon_x_b": _l1(x_b_recon, x_b),
            "recon_s_a": _l1(s_a_recon, s_a),
            "recon_s_b": _l1(s_b_recon, s_b),
            "recon_c_a": _l1(c_a_recon, c_a),
            "recon_c_b": _l1(c_b_recon, c_b),
        }
        weights = {"adv": cfg.gan_w, "recon_x": cfg.recon_x_w, "recon_s": cfg.recon_s_w, "recon_c": cfg.recon_c_w}
        if cfg.recon_x_cyc_w > 0:  # the explicit cycle through the translation, with the images' own styles
            losses["cycrecon_x_a"] = _l1(self.gen_a.decode(c_a_recon, s_a_prime), x_a)
            losses["cycrecon_x_b"] = _l1(self.gen_b.decode(c_b_recon, s_b_prime), x_b)
            weights["cycrecon_x"] = cfg.recon_x_cyc_w
        total = sum(weights[k.rsplit("_", 1)[0]] * v for k, v in losses.items())
        self.gen_opt.zero_grad(set_to_none=True)
        total.backward()
        self.gen_opt.step()
        for d in (self.dis_a, self.dis_b):
            d.requires_grad_(True)
        return {**losses, "G": total}

    # -- what a run shows and leaves -----------------------------------------------------------
    @torch.no_grad()
    def samples(self) -> np.ndarray:
        """As `MUNIT_Trainer.sample`: x_a | x_a_recon | x_ab (fixed style) | x_ab (another fixed
        style) rows above the same for b; the styles are drawn from the run's seed."""
        x_a, x_b = (x.to(self.device) for x in self.data.display())
        g = torch.Generator().manual_seed(self.cfg.seed)
        s1_a, s1_b = self._styles(g, len(x_a))
        s2_a, s2_b = self._styles(g, len(x_a))
        c_a, s_a = self.gen_a.encode(x_a)
        c_b, s_b = self.gen_b.encode(x_b)
        row_a = [x_a, self.gen_a.decode(c_a, s_a), self.gen_b.decode(c_a, s1_b), self.gen_b.decode(c_a, s2_b)]
        row_b = [x_b, self.gen_b.decode(c_b, s_b), self.gen_a.decode(c_b, s1_a), self.gen_a.decode(c_b, s2_a)]
        return grid([row_a, row_b])

    def export(self) -> None:
        """OUT/generator: the MUNITGenerator (a2b: sketch -> photo; both directions inside)."""
        training = {"recipe": self.recipe, "steps": self.step, "train_config": self.cfg.to_dict()}
        model_io.save(self.model, self.out / "generator", extra={"training": training})


def train(cfg: MUNITTrainConfig) -> MUNITTrainer:
    """Train (or resume from OUT/checkpoint) and export OUT/generator; see the module docstring."""
    return run_training(MUNITTrainer, cfg)


# ---------------------------------------------------------------------------------------------
# command line

_OPTIONS = {  # dest -> (type, help); defaults come from MUNITTrainConfig
    "dim": (int, "gen: width of the first conv"),
    "mlp_dim": (int, "gen: width of the style MLP"),
    "style_dim": (int, "gen: length of a style code"),
    "activ": (str, f"gen: {' | '.join(ACTIVATIONS)}"),
    "n_downsample": (int, "gen: strided convs of the content encoder"),
    "n_res": (int, "gen: residual blocks of the content encoder and decoder"),
    "pad_type": (str, f"gen: {' | '.join(PAD_TYPES)}"),
    "dis_dim": (int, "dis: width of the first conv"),
    "dis_norm": (str, f"dis: {' | '.join(DIS_NORMS)}"),
    "dis_activ": (str, f"dis: {' | '.join(ACTIVATIONS)}"),
    "n_layer": (int, "dis: stride-2 convs per scale"),
    "gan_type": (str, f"dis: {' | '.join(GAN_TYPES)}"),
    "num_scales": (int, "dis: scales"),
    "dis_pad_type": (str, f"dis: {' | '.join(PAD_TYPES)}"),
    "gan_w": (float, "adversarial loss weight"),
    "recon_x_w": (float, "image reconstruction weight"),
    "recon_s_w": (float, "style reconstruction weight"),
    "recon_c_w": (float, "content reconstruction weight"),
    "recon_x_cyc_w": (float, "explicit cycle-consistency weight (0 in edges2shoes)"),
    "lr": (float, "Adam learning rate"),
    "beta1": (float, "Adam beta1"),
    "beta2": (float, "Adam beta2"),
    "weight_decay": (float, "Adam weight decay"),
    "init": (str, f"{' | '.join(INITS)}"),
    "lr_policy": (str, f"{' | '.join(LR_POLICIES)}"),
    "step_size": (int, "iterations between lr halvings (lr_policy step)"),
    "gamma": (float, "lr factor every step_size iterations"),
}


def parser() -> cli.Parser:
    p = cli.Parser(PROG, __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1])
    defaults = MUNITTrainConfig(out="")
    o = p.add_argument_group("recipe (edges2shoes_folder.yaml's option names)")
    for dest, (kind, text) in _OPTIONS.items():
        o.add_argument("--" + dest.replace("_", "-"), dest=dest, type=kind, default=getattr(defaults, dest), help=text)
    add_run_options(p)
    return p


def config_of(args) -> MUNITTrainConfig:
    return MUNITTrainConfig(**run_fields(args), **{k: getattr(args, k) for k in _OPTIONS})


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, PROG, parser, config_of, MUNITTrainer)


if __name__ == "__main__":
    sys.exit(main())
