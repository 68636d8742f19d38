"""CycleGAN training (Zhu et al., ICCV 2017) on unpaired sketches and photos the project draws.

    python -m rtgan.train.cyclegan --out runs/cyclegan --steps 20000            # resumes when it exists
    python -m rtgan.train.cyclegan --out /tmp/cg --steps 5 --size 64x64 --ngf 8 --ndf 8

    trainer = train(CycleGANTrainConfig(out="runs/cg", steps=100, size=(64, 64), ngf=8))
    trainer.G_A        # sketch -> photo, a `cyclegan` ResnetGenerator; OUT/generator is it saved

The recipe is the official `cycle_gan_model.py`, with its option names and defaults:
- two ResNet generators, G_A: A -> B and G_B: B -> A, and two 70x70 PatchGANs (`NLayerDiscriminator`,
  n_layers_D 3), D_A judging B images and D_B judging A images; weights ~ N(0, 0.02) (`init_type
  normal`); one Adam(lr, (beta1, 0.999)) over both generators and one over both discriminators;
- each step is `optimize_parameters`: the four translations (fake_B = G_A(A), rec_A = G_B(fake_B),
  fake_A = G_B(B), rec_B = G_A(fake_A)); then, with the discriminators frozen, one generator step on
  GAN A + GAN B (LSGAN: MSE of D's score maps to 1) + lambda_A |rec_A - A| + lambda_B |rec_B - B| +
  the identity terms lambda_B lambda_identity |G_A(B) - B| + lambda_A lambda_identity |G_B(A) - A|;
  then one discriminator step on real images and on fakes drawn from a 50-image pool each
  (`rtgan.train.pool`), (loss_real + loss_fake) * 0.5 per discriminator;
- the learning rate is constant, then decays linearly to zero over the last `n_steps_decay` steps
  (the official `linear` policy, counted in steps rather than epochs; 0 keeps it constant).

The data: domain A is the pencil sketches of `SketchDataset`, domain B the landscape photos, each
drawn in its own shuffled order (`UnpairedSketches`), so the sketch and photo of one scene are not
shown together (they coincide by chance, at rate 1/count, with no more signal than any other pair).

What `rtgan.train.munit` shares is here too: the unpaired data, the checkpoint of several networks
(`save_run` / `load_run`: rtgan model directories for the generators, safetensors for the rest,
written atomically) and the loop (`UnpairedTrainer`). Each step seeds itself from (seed, step) and
the pools' state is saved, so a resumed run repeats an uninterrupted one bit for bit on CPU.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, InputError
from ..models import io as model_io
from ..models import make_config
from ..models.init import init_weights
from ..models.pix2pix import NET_G, NORMS, norm_layer
from ..utils import cli
from ..utils.atomic import atomic_dir
from .checkpoint import _mismatch, _optimizer_join, _optimizer_split, read_state
from .losses import GAN_MODES, gan_d, gan_g
from .pool import ImagePool
from .runs import CHECKPOINT, META, STATE

PROG = "python -m rtgan.train.cyclegan"

# ---------------------------------------------------------------------------------------------
# what both unpaired recipes share: config fields, data, checkpoints, the loop


@dataclasses.dataclass
class UnpairedRunConfig:
    """The fields of a run that are not the recipe: where, how long, which data, how often to write."""

    out: str
    steps: int = 10000
    size: tuple[int, int] = (256, 256)
    count: int = 2000  # distinct scenes
    variants: int = 1  # drawing styles per scene (domain A holds count * variants sketches)
    data_seed: int = 0
    batch_size: int = 1
    seed: int = 0  # initial weights, data order, each step's randomness
    device: str = "cpu"
    save_every: int = 500
    sample_every: int = 500
    log_every: int = 10
    progress: bool = True

    # fields a resumed run may change; anything else must match the checkpoint
    resumable: ClassVar[tuple[str, ...]] = ("steps", "save_every", "sample_every", "log_every", "progress", "device")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        return cls(**{**d, "size": tuple(d["size"])})

    def validate(self) -> None:
        """ConfigError naming the option, for every value the run cannot take."""
        positive = ("steps", "count", "variants", "batch_size", "save_every", "sample_every", "log_every")
        for k in positive:
            _need(getattr(self, k) > 0, f"{k} must be positive, got {getattr(self, k)}")
        for k in ("seed", "data_seed"):
            _need(getattr(self, k) >= 0, f"{k} must be >= 0, got {getattr(self, k)}")
        _need(len(self.size) == 2 and min(self.size) > 0, f"size must be two positive sides (H, W), got {self.size}")
        _need(self.batch_size <= self.count, f"batch_size {self.batch_size} is more than the {self.count} scenes")
        kind = self.device.split(":")[0]
        _need(kind in ("cpu", "cuda", "mps", "xpu"), f"device must be cpu, cuda, cuda:N or mps, got {self.device!r}")


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _order(n: int, batch: int, step: int, seed: int) -> list[int]:
    """The indices of `step`'s batch: a fresh permutation of range(n) per epoch, from (seed, epoch)
    alone, so that the order depends on the step and a resumed run draws what it would have."""
    e, k = divmod(step, n // batch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 10007 + e))
    return perm[k * batch : (k + 1) * batch].tolist()


class UnpairedSketches:
    """Domain A: `SketchDataset`'s sketches; domain B: the scenes' photos; each in its own order."""

    def __init__(self, cfg: UnpairedRunConfig):
        from ..data.synthetic import SketchDataset

        h, w = cfg.size
        self.dataset = SketchDataset(cfg.count, h, w, seed=cfg.data_seed, variants=cfg.variants)
        self.count, self.seed = cfg.count, cfg.seed

    def sketch(self, index: int) -> torch.Tensor:
        return self.dataset[index]["source"]

    def photo(self, scene: int) -> torch.Tensor:
        return self.dataset.scenes[scene]["image"]  # the scene alone: no sketch drawn for nothing

    def batch(self, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(A, B) of `step`, each (size, 3, H, W) in [-1, 1]; B's order has another seed than A's."""
        a = _order(len(self.dataset), size, step, 2 * self.seed)
        b = _order(self.count, size, step, 2 * self.seed + 1)
        return torch.stack([self.sketch(i) for i in a]), torch.stack([self.photo(j) for j in b])

    def display(self, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed sample-grid inputs: n sketches of distinct scenes, and photos of other scenes."""
        n = min(n, self.count)
        scenes = [i * self.count // n for i in range(n)]
        a = torch.stack([self.sketch(s * self.dataset.variants) for s in scenes])
        b = torch.stack([self.photo((s + self.count // 2) % self.count) for s in scenes])
        return a, b


def save_run(
    directory: str | os.PathLike,
    generators: dict[str, nn.Module],
    nets: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> Path:
    """One atomic checkpoint directory: each generator as an rtgan model directory (loadable by
    `rtgan.models.load`), the other nets' and optimizers' tensors plus `tensors` in one safetensors
    file, and `meta` with the optimizers' scalars as JSON; a run killed mid-save keeps the last one."""
    from safetensors.torch import save_file

    state = {
        f"{name}.{k}": v.detach().cpu().contiguous() for name, net in nets.items() for k, v in net.state_dict().items()
    }
    opt_meta = {}
    for name, opt in optimizers.items():
        t, opt_meta[name] = _optimizer_split(opt, name)
        state.update(t)
    state.update(tensors)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        for name, g in generators.items():
            model_io.save(g, tmp / name)
        save_file(state, str(tmp / STATE))
        (tmp / META).write_text(json.dumps({**meta, "optimizers": opt_meta}, indent=2) + "\n")
    return directory


def load_run(
    directory: str | os.PathLike,
    generators: dict[str, nn.Module],
    nets: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore what `save_run` wrote, in place; -> (meta, every stored tensor) for the caller's extras."""
    directory = Path(directory)
    meta, tensors = read_state(directory)
    for name, g in generators.items():
        try:
            g.load_state_dict(model_io.load(directory / name).state_dict())
        except RuntimeError as e:
            raise _mismatch(directory, name, e) from e
    for name, net in nets.items():
        try:
            net.load_state_dict(part(tensors, name))
        except RuntimeError as e:
            raise _mismatch(directory, name, e) from e
    for name, opt in optimizers.items():
        opt.load_state_dict(_optimizer_join(name, tensors, meta["optimizers"][name]))
    return meta, tensors


def part(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The tensors saved under `name.`, without the prefix."""
    return {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}


def _rgb(x: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> (B, H, W, 3) uint8 (gray repeated)."""
    x = x.detach().float().clamp(-1, 1).cpu()
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return ((x + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def grid(rows: list[list[torch.Tensor]]) -> np.ndarray:
    """Blocks of columns -> one image: each block is a list of (B, C, H, W) columns, blocks stacked."""
    blocks = [np.concatenate([np.concatenate(list(_rgb(col)), 0) for col in block], 1) for block in rows]
    return np.concatenate(blocks, 0)


class UnpairedTrainer:
    """The loop around a recipe's `train_step(a, b)`: logs, sample grids, checkpoints, resume.

    A recipe defines `recipe` (its name), `generators()`, `nets()`, `optimizers()` (what the
    checkpoint holds), `extra_state()` / `load_extra_state()`, `train_step`, `samples()` and
    `export()` (the finished models, written to OUT).
    """

    recipe = ""

    def __init__(self, cfg: UnpairedRunConfig):
        cfg.validate()
        self.cfg, self.out, self.device = cfg, Path(cfg.out), torch.device(cfg.device)
        self.step, self.elapsed = 0, 0.0
        self.history: list[dict[str, float]] = []
        self.data = UnpairedSketches(cfg)

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self) -> Path:
        meta = {
            "recipe": self.recipe,
            "step": self.step,
            "elapsed_s": round(self.elapsed, 1),
            "train_config": self.cfg.to_dict(),
            "last_losses": self.history[-1] if self.history else None,
        }
        tensors = self.extra_state()
        return save_run(self.out / CHECKPOINT, self.generators(), self.nets(), self.optimizers(), tensors, meta)

    def resume(self) -> bool:
        """Continue from OUT/checkpoint when it exists (False when there is none)."""
        if check_resumable(self.cfg, self.recipe) is None:
            return False
        meta, tensors = load_run(self.out / CHECKPOINT, self.generators(), self.nets(), self.optimizers())
        self.load_extra_state(tensors)
        self.step, self.elapsed = meta["step"], meta.get("elapsed_s", 0.0)
        return True

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    # -- the loop ------------------------------------------------------------------------------
    def step_seed(self) -> int:
        return (self.cfg.seed * 1_000_003 + self.step) % (2**63)

    def fit(self) -> list[dict[str, float]]:
        from .report import LossLog, Progress

        cfg = self.cfg
        log = LossLog(self.out)
        try:
            with Progress(cfg.steps, self.step, enabled=cfg.progress) as bar:
                while self.step < cfg.steps:
                    a, b = self.data.batch(self.step, cfg.batch_size)
                    tick = time.perf_counter()
                    losses = self.train_step(a.to(self.device), b.to(self.device))
                    self.elapsed += time.perf_counter() - tick
                    self.history.append(losses)
                    bar.update(self.step, losses)
                    self._after_step(log, losses)
        finally:
            log.close()
        return self.history

    def _after_step(self, log, losses: dict[str, float]) -> None:
        cfg, last = self.cfg, self.step == self.cfg.steps
        if self.step % cfg.log_every == 0 or last:
            log.write(self.step, losses, self.elapsed)
        if self.step % cfg.sample_every == 0 or last:
            self.write_samples()
        if self.step % cfg.save_every == 0 or last:
            self.save()

    def write_samples(self) -> Path:
        from ..utils.atomic import atomic_write_bytes
        from .report import png_bytes

        png = png_bytes(self.samples())
        directory = self.out / "samples"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"step_{self.step:07d}.png"
        atomic_write_bytes(path, png)
        atomic_write_bytes(directory / "latest.png", png)
        return path

    @staticmethod
    def check_finite(step: int, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        out = {k: float(v.detach()) for k, v in losses.items()}
        bad = [k for k, v in out.items() if v != v or abs(v) == float("inf")]
        if bad:
            raise FloatingPointError(f"step {step}: loss {bad[0]} is {out[bad[0]]}; lower --lr")
        return out


def check_resumable(cfg: UnpairedRunConfig, recipe: str) -> dict[str, Any] | None:
    """The checkpoint's meta when cfg may resume it, None when there is none; a ConfigError naming
    every differing option otherwise (a run resumed with other options would silently change)."""
    path = Path(cfg.out) / CHECKPOINT
    if not (path / META).is_file():
        return None
    meta = json.loads((path / META).read_text())
    if meta.get("recipe") != recipe:
        raise ConfigError(f"{cfg.out} holds a {meta.get('recipe') or 'python -m rtgan.train'} run, not {recipe}")
    saved, now = type(cfg).from_dict(meta["train_config"]).to_dict(), cfg.to_dict()
    changed = [k for k in now if k not in (*cfg.resumable, "out") and saved.get(k) != now[k]]
    if changed:
        diff = ", ".join(f"{k}={saved.get(k)} (now {now[k]})" for k in changed)
        raise ConfigError(f"{cfg.out} was started with {diff}: use the same options to resume, or a new --out")
    return meta


def run_training(trainer_class, cfg: UnpairedRunConfig):
    """Build (or resume) and train; Ctrl-C saves a checkpoint first. -> the trainer, models exported."""
    check_resumable(cfg, trainer_class.recipe)  # before the data renders
    trainer = trainer_class(cfg)
    if trainer.resume():
        print(f"resuming {trainer.out} at step {trainer.step}/{cfg.steps}", flush=True)
    trainer.out.mkdir(parents=True, exist_ok=True)
    (trainer.out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    try:
        trainer.fit()
    except KeyboardInterrupt:
        trainer.save()
        print(f"interrupted: saved {trainer.out / CHECKPOINT} at step {trainer.step}", flush=True)
        raise
    trainer.export()
    return trainer


def add_run_options(p: cli.Parser) -> None:
    """The options of `UnpairedRunConfig`, spelled as `python -m rtgan.train`'s."""
    d = p.add_argument_group("data (domain A: sketches, domain B: photos, unpaired)")
    cli.add_size(d, "256x256", "training size HxW")
    d.add_argument("--count", type=int, default=2000, help="distinct scenes")
    d.add_argument("--variants", type=int, default=1, help="sketch styles per scene")
    d.add_argument("--data-seed", type=int, default=0, help="scene i is seed DATA_SEED + i (default: 0)")
    r = p.add_argument_group("run")
    r.add_argument("--out", required=True, help="run directory: checkpoint/, samples/, losses.jsonl, generator/")
    r.add_argument("--steps", type=int, default=10000, help="total steps (a resumed run continues to it)")
    r.add_argument("--batch-size", type=int, default=1, help="images of each domain per step")
    r.add_argument("--seed", type=int, default=0, help="initial weights, data order, each step's draws (default: 0)")
    r.add_argument("--save-every", type=int, default=500, help="steps between checkpoints")
    r.add_argument("--sample-every", type=int, default=500, help="steps between sample grids")
    r.add_argument("--log-every", type=int, default=10, help="steps between losses.jsonl lines")
    r.add_argument("--no-progress", action="store_true", help="no progress bar (logs, batch jobs)")
    h = p.add_argument_group("machine")
    h.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | mps")
    h.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's)")


def run_fields(args) -> dict[str, Any]:
    """`add_run_options`' arguments as `UnpairedRunConfig` fields."""
    keys = ("out", "steps", "count", "variants", "data_seed", "batch_size", "seed", "device")
    fields = {k: getattr(args, k) for k in keys}
    fields.update(save_every=args.save_every, sample_every=args.sample_every, log_every=args.log_every)
    return {**fields, "size": cli.size_of(args), "progress": not args.no_progress}


def cli_main(argv: list[str] | None, prog: str, parser, to_config, trainer_class) -> int:
    """Parse, check (a ConfigError is one line, exit 2), set threads, train."""

    def body() -> int:
        args = parser().parse_args(argv)
        cfg = to_config(args)
        cfg.validate()
        if args.threads is not None:
            _need(args.threads > 0, f"--threads must be positive, got {args.threads}")
            torch.set_num_threads(args.threads)
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device {cfg.device}: PyTorch sees no CUDA device here; use --device cpu")
        trainer = run_training(trainer_class, cfg)
        print(f"{trainer.out}: {trainer.step} steps; last losses {_brief(trainer.history)}; models in {trainer.out}")
        return 0

    return cli.run(body, prog)


def _brief(history: list[dict[str, float]]) -> str:
    return " ".join(f"{k} {v:.3f}" for k, v in history[-1].items()) if history else "(none: already done)"


# ---------------------------------------------------------------------------------------------
# CycleGAN


@dataclasses.dataclass
class CycleGANTrainConfig(UnpairedRunConfig):
    """The official CycleGAN training options (train_options.py, cycle_gan_model.py) by their names."""

    ngf: int = 64
    netG: str = "resnet_9blocks"
    norm: str = "instance"  # generators and discriminators, as the official --norm
    ndf: int = 64
    n_layers_D: int = 3  # netD basic: the 70x70 PatchGAN
    gan_mode: str = "lsgan"
    lambda_A: float = 10.0  # cycle A -> B -> A
    lambda_B: float = 10.0  # cycle B -> A -> B
    lambda_identity: float = 0.5  # identity terms, as a fraction of lambda_A / lambda_B
    pool_size: int = 50
    lr: float = 0.0002
    beta1: float = 0.5
    beta2: float = 0.999  # fixed in the official code
    n_steps_decay: int = 0  # the official n_epochs_decay, in steps: linear decay to 0 over the last ones
    init_gain: float = 0.02  # init_type normal

    def validate(self) -> None:
        super().validate()
        for k in ("ngf", "ndf", "n_layers_D", "lr", "init_gain"):
            _need(getattr(self, k) > 0, f"{k} must be positive, got {getattr(self, k)}")
        for k in ("lambda_A", "lambda_B", "lambda_identity", "pool_size"):
            _need(getattr(self, k) >= 0, f"{k} must be >= 0, got {getattr(self, k)}")
        for k in ("beta1", "beta2"):
            _need(0 <= getattr(self, k) < 1, f"{k} must be in [0, 1), got {getattr(self, k)}")
        _need(0 <= self.n_steps_decay <= self.steps, f"n_steps_decay must be in 0..steps, got {self.n_steps_decay}")
        _need(self.gan_mode in GAN_MODES, f"gan_mode must be one of {', '.join(GAN_MODES)}, got {self.gan_mode!r}")
        _need(self.netG in NET_G, f"netG must be one of {', '.join(NET_G)}, got {self.netG!r}")
        _need(self.norm in NORMS, f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        h, w = self.size
        try:
            self.generator_config().check_size(h, w)
        except InputError as e:
            raise ConfigError(f"size {h}x{w}: {e}") from None
        side = min(h, w) >> self.n_layers_D
        _need(side >= 3, f"size {h}x{w}: the PatchGAN's {self.n_layers_D} stride-2 convs need sides of at least "
              f"{3 << self.n_layers_D}")  # fmt: skip

    def generator_config(self):
        return make_config("cyclegan", ngf=self.ngf, netG=self.netG, norm=self.norm)


class NLayerDiscriminator(nn.Module):
    """The official PatchGAN (`networks.NLayerDiscriminator`, its `model.N` keys): n_layers 4x4
    stride-2 convs (the first without norm), a stride-1 one, a 1-channel 4x4 score conv; padding 1.

    n_layers 3 is `netD basic`, whose scores each see a 70x70 patch. Convs before a norm have a
    bias only with instance norm, as the official `use_bias`.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        make_norm, bias = norm_layer(norm), norm == "instance"
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 1 if n == n_layers else 2
            conv = nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias)
            layers += [conv, make_norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> list[list[torch.Tensor]]:
        """-> [[score map]]: one scale, as `rtgan.train.losses.gan_d` / `gan_g` take it."""
        return [[self.model(image)]]


class CycleGANTrainer(UnpairedTrainer):
    recipe = "cyclegan"
    cfg: CycleGANTrainConfig

    def __init__(self, cfg: CycleGANTrainConfig):
        super().__init__(cfg)
        torch.manual_seed(cfg.seed)
        from ..models import build

        gen = cfg.generator_config()

        def net(module: nn.Module) -> nn.Module:  # init_type normal, init_gain
            return init_weights(module, "normal", cfg.init_gain).to(self.device).train()

        self.G_A, self.G_B = net(build(gen)), net(build(gen))
        self.D_A = net(NLayerDiscriminator(gen.output_nc, cfg.ndf, cfg.n_layers_D, cfg.norm))  # judges B
        self.D_B = net(NLayerDiscriminator(gen.input_nc, cfg.ndf, cfg.n_layers_D, cfg.norm))  # judges A
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = torch.optim.Adam([*self.G_A.parameters(), *self.G_B.parameters()], lr=cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam([*self.D_A.parameters(), *self.D_B.parameters()], lr=cfg.lr, betas=betas)
        # fake_A_pool feeds D_B, fake_B_pool D_A; their own seeds, so neither depends on the other's draws
        self.pool_A = ImagePool(cfg.pool_size, seed=cfg.seed * 2 + 1)
        self.pool_B = ImagePool(cfg.pool_size, seed=cfg.seed * 2 + 2)

    # -- what the checkpoint holds -------------------------------------------------------------
    def generators(self) -> dict[str, nn.Module]:
        # "generator" is G_A, so tools reading OUT/checkpoint/generator see the A -> B model
        return {"generator": self.G_A, "G_B": self.G_B}

    def nets(self) -> dict[str, nn.Module]:
        return {"D_A": self.D_A, "D_B": self.D_B}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_G": self.opt_G, "opt_D": self.opt_D}

    def extra_state(self) -> dict[str, torch.Tensor]:
        pools = {"pool_A": self.pool_A, "pool_B": self.pool_B}
        return {f"{name}.{k}": v for name, pool in pools.items() for k, v in pool.state_dict().items()}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, pool in (("pool_A", self.pool_A), ("pool_B", self.pool_B)):
            pool.load_state_dict(
                {k[len(name) + 1 :]: v for k, v in tensors.items() if k.startswith(name + ".")}, self.device
            )

    # -- one step: the official optimize_parameters --------------------------------------------
    def lr_factor(self, step: int) -> float:
        """The official `linear` policy per step: 1 until the last n_steps_decay steps, then down to
        1 / (n_steps_decay + 1) at the last one (lambda_rule with epoch_count 1)."""
        cfg = self.cfg
        constant = cfg.steps - cfg.n_steps_decay
        return 1.0 - max(0, step + 1 - constant) / float(cfg.n_steps_decay + 1)

    def _set_lr(self) -> None:
        lr = self.cfg.lr * self.lr_factor(self.step)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr

    def train_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, float]:
        torch.manual_seed(self.step_seed())  # dropout, should a generator have it
        self._set_lr()
        losses, fake_A, fake_B = self.generator_step(real_A, real_B)
        losses.update(self.discriminator_step(real_A, real_B, fake_A, fake_B))
        out = self.check_finite(self.step, losses)
        self.step += 1
        return out

    def generator_step(self, real_A: torch.Tensor, real_B: torch.Tensor):
        """forward + backward_G with D_A and D_B frozen (no gradient reaches them), then one opt_G
        step. -> (losses, fake_A, fake_B), the fakes for the discriminator step."""
        cfg = self.cfg
        fake_B = self.G_A(real_A)
        rec_A = self.G_B(fake_B)
        fake_A = self.G_B(real_B)
        rec_B = self.G_A(fake_A)
        for d in (self.D_A, self.D_B):
            d.requires_grad_(False)
        losses = {"G_A": gan_g(cfg.gan_mode, self.D_A(fake_B)), "G_B": gan_g(cfg.gan_mode, self.D_B(fake_A))}
        losses["cycle_A"] = (rec_A - real_A).abs().mean() * cfg.lambda_A
        losses["cycle_B"] = (rec_B - real_B).abs().mean() * cfg.lambda_B
        if cfg.lambda_identity > 0:  # G_A should leave B images alone, G_B A images
            losses["idt_A"] = (self.G_A(real_B) - real_B).abs().mean() * cfg.lambda_B * cfg.lambda_identity
            losses["idt_B"] = (self.G_B(real_A) - real_A).abs().mean() * cfg.lambda_A * cfg.lambda_identity
        self.opt_G.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        self.opt_G.step()
        for d in (self.D_A, self.D_B):
            d.requires_grad_(True)
        return losses, fake_A, fake_B

    def discriminator_step(self, real_A, real_B, fake_A, fake_B) -> dict[str, torch.Tensor]:
        """backward_D_A and backward_D_B on pooled, detached fakes, then one opt_D step."""
        mode = self.cfg.gan_mode
        pooled_B, pooled_A = self.pool_B.query(fake_B), self.pool_A.query(fake_A)
        loss_A = gan_d(mode, self.D_A(real_B), self.D_A(pooled_B))  # (real + fake) * 0.5 for lsgan/vanilla
        loss_B = gan_d(mode, self.D_B(real_A), self.D_B(pooled_A))
        self.opt_D.zero_grad(set_to_none=True)
        (loss_A + loss_B).backward()
        self.opt_D.step()
        return {"D_A": loss_A, "D_B": loss_B}

    # -- what a run shows and leaves -----------------------------------------------------------
    @torch.no_grad()
    def samples(self) -> np.ndarray:
        """real A | fake B | rec A rows above real B | fake A | rec B rows (fixed display images)."""
        a, b = (x.to(self.device) for x in self.data.display())
        fake_B, fake_A = self.G_A(a), self.G_B(b)
        return grid([[a, fake_B, self.G_B(fake_B)], [b, fake_A, self.G_A(fake_A)]])

    def export(self) -> None:
        """OUT/generator: G_A (sketch -> photo); OUT/generator_B: G_B; with the recipe recorded."""
        training = {"recipe": self.recipe, "steps": self.step, "train_config": self.cfg.to_dict()}
        model_io.save(self.G_A, self.out / "generator", extra={"training": {**training, "direction": "A->B"}})
        model_io.save(self.G_B, self.out / "generator_B", extra={"training": {**training, "direction": "B->A"}})


def train(cfg: CycleGANTrainConfig) -> CycleGANTrainer:
    """Train (or resume from OUT/checkpoint) and export OUT/generator; see the module docstring."""
    return run_training(CycleGANTrainer, cfg)


# ---------------------------------------------------------------------------------------------
# command line


def parser() -> cli.Parser:
    p = cli.Parser(PROG, __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1])
    m = p.add_argument_group("networks (official option names)")
    m.add_argument("--ngf", type=int, default=64, help="generator width")
    m.add_argument("--netG", default="resnet_9blocks", help=" | ".join(NET_G))
    m.add_argument("--norm", default="instance", help=" | ".join(NORMS))
    m.add_argument("--ndf", type=int, default=64, help="discriminator width")
    m.add_argument("--n-layers-D", type=int, default=3, help="PatchGAN stride-2 convs (3: 70x70)")
    o = p.add_argument_group("losses and optimizer")
    o.add_argument("--gan-mode", default="lsgan", help=" | ".join(GAN_MODES))
    o.add_argument("--lambda-A", type=float, default=10.0, help="cycle loss A -> B -> A")
    o.add_argument("--lambda-B", type=float, default=10.0, help="cycle loss B -> A -> B")
    o.add_argument("--lambda-identity", type=float, default=0.5, help="identity loss, times lambda_A / lambda_B")
    o.add_argument("--pool-size", type=int, default=50, help="fakes kept for the discriminators (0: none)")
    o.add_argument("--lr", type=float, default=0.0002, help="Adam learning rate")
    o.add_argument("--beta1", type=float, default=0.5, help="Adam beta1")
    o.add_argument("--n-steps-decay", type=int, default=0, help="last steps over which lr decays linearly to 0")
    add_run_options(p)
    return p


def config_of(args) -> CycleGANTrainConfig:
    names = ("ngf", "netG", "norm", "ndf", "n_layers_D", "gan_mode", "lambda_A", "lambda_B", "lambda_identity",
             "pool_size", "lr", "beta1", "n_steps_decay")  # fmt: skip
    return CycleGANTrainConfig(**run_fields(args), **{k: getattr(args, k) for k in names})


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, PROG, parser, config_of, CycleGANTrainer)


__all__ = [
    "CycleGANTrainConfig",
    "CycleGANTrainer",
    "NLayerDiscriminator",
    "UnpairedRunConfig",
    "UnpairedSketches",
    "UnpairedTrainer",
    "load_run",
    "main",
    "save_run",
    "train",
]

if __name__ == "__main__":
    sys.exit(main())
