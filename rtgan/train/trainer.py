"""The GAN training loop: one generator step, then one discriminator step, as SPADE trains.

    cfg = TrainConfig(arch="asapnet", model={...}, data="landscapes", steps=20000, out="runs/asap")
    train(cfg)            # resumes from runs/asap/checkpoint when it exists

Runs on one device or under `torchrun` (DDP: NCCL on GPUs, gloo on CPU). Only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConfigError
from ..models import build, make_config
from ..models.init import init_weights
from ..models.labels import draw_noise
from .checkpoint import load_checkpoint, read_meta, save_checkpoint
from .discriminator import DiscriminatorConfig, MultiscaleDiscriminator
from .losses import VGGLoss, feature_matching, gan_d, gan_g, kld
from .runs import CHECKPOINT
from .texture import RegionTextureLoss


@dataclasses.dataclass
class TrainConfig:
    arch: str
    model: dict[str, Any]
    out: str
    data: str = "landscapes"  # "landscapes", "sketches", or a dataset layout name for `root`
    root: str | None = None
    split: str = "train"
    size: tuple[int, int] = (256, 256)
    count: int = 2000  # landscapes: number of distinct scenes
    data_seed: int = 0
    variants: int = 1  # sketches: styles drawn per scene
    steps: int = 10000
    batch_size: int = 4
    lr: float = 0.0002
    no_TTUR: bool = False  # TTUR (default): G at lr/2, D at lr*2, Adam betas (0, 0.9)
    beta1: float = 0.5  # used only with no_TTUR, as in SPADE
    beta2: float = 0.999
    # the adversarial loss: "hinge" (SPADE, pix2pixHD's successors), "lsgan" (CycleGAN, pix2pixHD),
    # "vanilla" (pix2pix's BCE)
    gan_mode: str = "hinge"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_kld: float = 0.05
    # L1 to the real image, as pix2pix: off in SPADE's recipe, which relies on VGG instead; with no
    # VGG weights at hand it anchors colours and suppresses periodic artifacts early in training
    lambda_l1: float = 0.0
    # per-class statistics of a random filter bank (rtgan.train.texture): teaches texture without
    # downloaded weights; off in SPADE's recipe
    lambda_texture: float = 0.0
    vgg_weights: str | None = None
    # a fresh run starts from this saved generator (rtgan format; noise inputs it lacks are added
    # with zero weights) at its trained step count; discriminator and optimizers start fresh
    init_from: str | None = None
    discriminator: DiscriminatorConfig = dataclasses.field(default_factory=DiscriminatorConfig)
    seed: int = 0
    amp: bool = False  # fp16 autocast + loss scaling; CUDA only
    device: str = "cpu"
    workers: int = 0
    save_every: int = 500
    sample_every: int = 500
    log_every: int = 10
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        d["size"] = tuple(d["size"])
        d["discriminator"] = DiscriminatorConfig(**d["discriminator"])
        return cls(**d)

    # fields a resumed run may change; anything else must match the checkpoint. Changes to the
    # recipe ones (loss weights) are appended to OUT/recipe_changes.jsonl and listed in model cards.
    resumable = (
        "steps",
        "save_every",
        "sample_every",
        "log_every",
        "progress",
        "workers",
        "device",
        "out",
        "init_from",
    )
    recipe = ("lambda_feat", "lambda_vgg", "lambda_kld", "lambda_l1", "lambda_texture")


def image_in(generator: nn.Module) -> bool:
    """Whether the generator translates an image (pix2pix, CycleGAN) rather than painting a label map."""
    return generator.signature().inputs[0].kind == "image"


class GeneratorStep(nn.Module):
    """The generator's training forward as one module, so DDP sees every parameter through forward()."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, semantics, image):
        g = self.generator
        if image_in(g):
            return g(semantics), None, None
        k = getattr(g.config, "noise_nc", 0)
        # fresh noise every step (from the step's seed), so the generator learns noise -> texture
        # statistics rather than one fixed pattern; inference paints with the fixed map
        extra = {}
        if k:
            octaves = getattr(g, "noise_octaves", False)
            extra["noise"] = draw_noise(len(semantics), k, *semantics.shape[2:], octaves, device=semantics.device)
        if getattr(g, "encoder", None) is not None:
            mu, logvar = g.encode(image)
            return g(semantics, g.reparameterize(mu, logvar), **extra), mu, logvar
        return g(semantics, **extra), None, None


def _step_seed(seed: int, rank: int, step: int) -> int:
    return (seed * 1_000_003 + rank * 7919 + step) % (2**63)


class StepBatches(torch.utils.data.Sampler):
    """Index batches for steps start..steps-1: a fresh permutation per epoch from (seed, epoch), each
    rank taking its slice, so the data order depends on the step alone and resumes exactly."""

    def __init__(self, n: int, batch: int, start: int, steps: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch, self.start, self.steps, self.seed, self.rank, self.world = (
            n,
            batch,
            start,
            steps,
            seed,
            rank,
            world,
        )
        self.per_epoch = n // (batch * world)
        if self.per_epoch == 0:
            raise ConfigError(f"dataset of {n} samples is smaller than one global batch ({batch} x {world})")

    def __len__(self) -> int:
        return max(self.steps - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        perm, epoch = None, -1
        for step in range(self.start, self.steps):
            e, k = divmod(step, self.per_epoch)
            if e != epoch:
                g = torch.Generator().manual_seed(self.seed * 10007 + e)
                perm, epoch = torch.randperm(self.n, generator=g).tolist(), e
            first = (k * self.world + self.rank) * self.batch
            yield perm[first : first + self.batch]


def make_dataset(cfg: TrainConfig):
    h, w = cfg.size
    if cfg.data == "sketches":
        from ..data.synthetic import SketchDataset

        dataset = SketchDataset(cfg.count, h, w, seed=cfg.data_seed, variants=cfg.variants)
        if cfg.workers > 0:
            dataset.prerender(cfg.workers)
        return dataset
    if cfg.data == "landscapes":
        from ..data.synthetic import LandscapeDataset

        dataset = LandscapeDataset(cfg.count, h, w, seed=cfg.data_seed)
        if cfg.workers > 0:  # render up front; forked workers then share the cache
            dataset.prerender(cfg.workers)
        return dataset
    from ..data.folders import make_dataset as make_layout

    kwargs: dict[str, Any] = {"preprocess": _preprocess(cfg)}
    if cfg.data == "folder":  # the custom layout has no class count of its own: it is the model's
        config = make_config(cfg.arch, **cfg.model)
        if config.label_ids:  # any id passes here; the generator names one that is not among its classes
            kwargs.update(label_nc=255, contain_dontcare_label=True)
        else:
            kwargs.update(label_nc=config.label_nc, contain_dontcare_label=config.num_classes > config.label_nc)
    return make_layout(cfg.data, cfg.root, cfg.split, **kwargs)


def _preprocess(cfg: TrainConfig):
    """The official preprocessing at the training size: SPADE's resize to 286/256 of the crop then a
    random crop for square sizes (its ADE20K, COCO and custom default at 256), a fixed resize for others
    (its Cityscapes default at 256x512); without this a layout would train at its default size."""
    from ..data.folders import Preprocess

    h, w = cfg.size
    train = cfg.split == "train"
    if h == w:
        return Preprocess("resize_and_crop", round(w * 286 / 256) if train else w, w, train=train)
    return Preprocess("fixed", w, w, aspect_ratio=w / h, train=train)


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """A TrainConfig dict as the flags that set it: model options and discriminator fields at top
    level (ndf, ngf...), the size as HxW; JSON-normalised (a tuple and its saved list are equal)."""
    config = json.loads(json.dumps(config))
    flat = {k: v for k, v in config.items() if k not in ("model", "discriminator")}
    flat["size"] = "x".join(map(str, config["size"]))
    for part in ("discriminator", "model"):  # a name taken already keeps its part's prefix
        flat |= {k if k not in flat else f"{part}.{k}": v for k, v in config.get(part, {}).items()}
    return flat


def check_resumable(cfg: TrainConfig) -> dict[str, Any] | None:
    """The meta of cfg.out's checkpoint when cfg may resume it (None: no checkpoint), read before
    anything loads: a run resumed with another flag would fail on mismatched weights, or worse,
    silently change its recipe. Only `TrainConfig.resumable` and `recipe` fields may change."""
    path = Path(cfg.out) / CHECKPOINT
    if not (path / "train_state.json").is_file():
        return None
    meta = read_meta(path)
    saved = _flat(TrainConfig.from_dict(meta["train_config"]).to_dict())  # fields added since take defaults
    now = _flat(cfg.to_dict())
    free = TrainConfig.resumable + TrainConfig.recipe
    changed = [k for k in dict.fromkeys([*saved, *now]) if k not in free and saved.get(k) != now.get(k)]
    if changed:
        show = lambda v: "unset" if v is None else v  # noqa: E731
        diff = ", ".join(f"{k}={show(saved.get(k))} (now {show(now.get(k))})" for k in changed)
        raise ConfigError(f"{cfg.out} was started with {diff}: use the same flags to resume, or a new --out")
    return meta


def _collate(items: list[dict]) -> dict:
    out = {k: torch.stack([it[k] for it in items]) for k in ("labels", "image", "instance", "source") if k in items[0]}
    return out


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.rank, self.world = 0, 1
        self._owns_group = False  # a process group this trainer started, and so must end (fit's end)
        if dist.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            if not dist.is_initialized():
                dist.init_process_group("nccl" if cfg.device.startswith("cuda") else "gloo")
                self._owns_group = True
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        if cfg.amp and self.device.type != "cuda":
            raise ConfigError("amp (mixed precision) needs a CUDA device")
        self.out = Path(cfg.out)

        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        config = make_config(cfg.arch, **cfg.model)
        h, w = cfg.size
        config.check_size(h, w)
        self.generator = init_weights(build(config)).to(self.device).train()
        self.image_in = image_in(self.generator)
        if self.image_in != (cfg.data == "sketches"):
            what = "an image-to-image generator" if self.image_in else "a label-map generator"
            raise ConfigError(f"--data {cfg.data} cannot train {what} ({cfg.arch})")
        if self.image_in and cfg.lambda_texture:
            raise ConfigError("the texture loss is per class of a label map; image-to-image runs take lambda_texture=0")
        # D judges the pairing: the condition (one-hot labels or the source image) beside the image
        cond_nc = config.input_nc if self.image_in else config.semantic_nc
        self.discriminator = MultiscaleDiscriminator(cond_nc + 3, cfg.discriminator).to(self.device).train()
        init_weights(self.discriminator)
        if cfg.no_TTUR:
            g_lr, d_lr, betas = cfg.lr, cfg.lr, (cfg.beta1, cfg.beta2)
        else:
            g_lr, d_lr, betas = cfg.lr / 2, cfg.lr * 2, (0.0, 0.9)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=g_lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=d_lr, betas=betas)
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=cfg.amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=cfg.amp)
        self.vgg = VGGLoss(cfg.vgg_weights).to(self.device) if cfg.vgg_weights else None
        self.texture = RegionTextureLoss().to(self.device) if cfg.lambda_texture else None
        self.g_step, self.d_model = GeneratorStep(self.generator), self.discriminator
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_step = nn.parallel.DistributedDataParallel(self.g_step, device_ids=ids)
            self.d_model = nn.parallel.DistributedDataParallel(self.discriminator, device_ids=ids)
        self.step = 0
        self.stop_requested = False  # set by SIGTERM; the loop stops after the current step
        self.interrupted: str | None = None  # "SIGINT" / "SIGTERM" once train() stopped early for it
        self.dataset = make_dataset(cfg)
        self.history: list[dict[str, float]] = []
        self.elapsed = 0.0  # training seconds over all pieces of the run
        self.optimizer_restarts: list[int] = []  # steps where a carried run resumed with fresh optimizers
        self.initialized_from: dict | None = None  # set by init_from

    # -- checkpoints -------------------------------------------------------------------------
    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_G": self.opt_g, "opt_D": self.opt_d}

    def save(self) -> None:
        if self.rank != 0:
            return
        meta = {
            "step": self.step,
            "elapsed_s": round(self.elapsed, 1),
            "train_config": self.cfg.to_dict(),
            "world_size": self.world,
            "scalers": {"G": self.scaler_g.state_dict(), "D": self.scaler_d.state_dict()},
            "last_losses": self.history[-1] if self.history else None,
            "optimizer_restarts": self.optimizer_restarts,
            "initialized_from": self.initialized_from,
        }
        save_checkpoint(self.out / CHECKPOINT, self.generator, self.discriminator, self._optimizers(), meta)

    def resume(self) -> bool:
        path = self.out / CHECKPOINT
        if check_resumable(self.cfg) is None:
            return False
        meta = load_checkpoint(path, self.generator, self.discriminator, self._optimizers())
        saved, now = TrainConfig.from_dict(meta["train_config"]).to_dict(), self.cfg.to_dict()
        if meta.get("scalers"):
            self.scaler_g.load_state_dict(meta["scalers"]["G"])
            self.scaler_d.load_state_dict(meta["scalers"]["D"])
        self.step, self.elapsed = meta["step"], meta.get("elapsed_s", 0.0)
        self.optimizer_restarts = list(meta.get("optimizer_restarts", []))
        self.initialized_from = meta.get("initialized_from")
        if "optimizers" not in meta:
            self.optimizer_restarts.append(self.step)
            if self.rank == 0:
                print(f"{path} carries no optimizer state: Adam restarts at step {self.step}")
        recipe = {k: [saved[k], now[k]] for k in TrainConfig.recipe if saved[k] != now[k]}
        if recipe and self.rank == 0:
            with open(self.out / "recipe_changes.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, "changed": recipe}) + "\n")
            changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in recipe.items())
            print(f"recipe changed at step {self.step}: {changes}")
        self.generator.train()
        return True

    def init_from(self, model: str) -> None:
        """Start this fresh run from a saved generator (a bundled model's name or a model directory):
        its weights (widened to this run's noise inputs, which paints the same), its step count and
        training time."""
        from ..catalog import resolve
        from ..models import io as model_io
        from .widen import widened_state

        ref = resolve(model)
        if ref.kind != "model":
            raise ConfigError(f"init_from {model} is an {ref.kind} artifact, not an rtgan model (bundled or saved)")
        path = ref.path
        source = model_io.load(path)
        self.generator.load_state_dict(widened_state(source, self.generator.config))
        self.generator.train()
        saved = model_io.read_config(Path(path))
        trained = saved.get("trained") or {}
        self.step, self.elapsed = int(trained.get("steps", 0)), float(trained.get("elapsed_s") or 0.0)
        noise = [source.config.noise_nc, self.generator.config.noise_nc] if hasattr(source.config, "noise_nc") else None
        digest = saved.get("sha256", {}).get(model_io.WEIGHTS)  # which weights, should the file change
        # as given (a bundled name stays a name): model cards print it in their command
        self.initialized_from = {"model": str(model), "sha256": digest, "step": self.step, "noise_nc": noise}

    # -- one iteration -----------------------------------------------------------------------
    def _discriminate(self, semantics, fake, real):
        """D on fake and real in one batch (one spectral-norm update, as SPADE); -> (fake preds, real preds)."""
        preds = self.d_model(torch.cat([semantics, semantics]), torch.cat([fake, real]))
        n = len(fake)
        return [[t[:n] for t in p] for p in preds], [[t[n:] for t in p] for p in preds]

    def train_step(self, batch: dict) -> dict[str, float]:
        cfg, dev = self.cfg, self.device
        torch.manual_seed(_step_seed(cfg.seed, self.rank, self.step))
        image = batch["image"].to(dev)
        if self.image_in:
            semantics = batch["source"].to(dev)
        else:
            instance = batch["instance"].to(dev) if "instance" in batch else None
            semantics = self.generator.prepare(batch["labels"].to(dev), instance)
        autocast = torch.autocast(dev.type, dtype=torch.float16, enabled=cfg.amp)

        # D's weights need no gradient in the G step; toggling them would stall DDP's reducer
        if self.world == 1:
            self.discriminator.requires_grad_(False)
        with autocast:
            fake, mu, logvar = self.g_step(semantics, image)
            pred_fake, pred_real = self._discriminate(semantics, fake, image)
            losses = {"G_gan": gan_g(cfg.gan_mode, pred_fake)}
            if cfg.lambda_feat:
                losses["G_feat"] = cfg.lambda_feat * feature_matching(pred_real, pred_fake)
            if self.vgg is not None:
                losses["G_vgg"] = cfg.lambda_vgg * self.vgg(fake.float(), image)
            if self.texture is not None:
                classes = semantics[:, : self.generator.config.num_classes]
                losses["G_tex"] = cfg.lambda_texture * self.texture(fake.float(), image, classes)
            if cfg.lambda_l1:
                losses["G_l1"] = cfg.lambda_l1 * (fake.float() - image).abs().mean()
            if mu is not None:
                losses["G_kld"] = cfg.lambda_kld * kld(mu.float(), logvar.float())
            loss_g = sum(losses.values())
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.discriminator.requires_grad_(True)

        # D on the fake of this step, detached: SPADE regenerates it after the G update, which
        # costs a third more generator work for no measurable gain
        with autocast:
            pred_fake, pred_real = self._discriminate(semantics, fake.detach(), image)
            loss_d = gan_d(cfg.gan_mode, pred_real, pred_fake)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss_d).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()

        losses["D"] = loss_d
        out = {k: float(v.detach()) for k, v in losses.items()}
        bad = [k for k, v in out.items() if v != v or abs(v) == float("inf")]
        if bad:
            raise FloatingPointError(f"step {self.step}: loss {bad[0]} is {out[bad[0]]}; lower --lr or check the data")
        self.step += 1
        return out

    # -- the loop ------------------------------------------------------------------------------
    def batches(self) -> torch.utils.data.DataLoader:
        cfg = self.cfg
        sampler = StepBatches(len(self.dataset), cfg.batch_size, self.step, cfg.steps, cfg.seed, self.rank, self.world)
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=sampler, num_workers=cfg.workers, collate_fn=_collate
        )

    def fit(self) -> list[dict[str, float]]:
        from .report import LossLog, Progress, write_samples

        cfg = self.cfg
        main = self.rank == 0
        log = LossLog(self.out, enabled=main)
        with Progress(cfg.steps, self.step, enabled=main and cfg.progress) as bar:
            tick = time.perf_counter()
            for batch in self.batches():
                losses = self.train_step(batch)
                now = time.perf_counter()
                self.elapsed += now - tick
                tick = now
                self.history.append(losses)
                bar.update(self.step, losses)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    log.write(self.step, losses, self.elapsed)
                if main and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                    write_samples(self, self.out / "samples")
                if self.step % cfg.save_every == 0 or self.step == cfg.steps:
                    self.save()
                    tick = time.perf_counter()  # saving is not training time
                if self._stop_agreed():  # SIGTERM: stop between steps, with the logs closed properly
                    break
        log.close()
        self._end_group()
        return self.history

    def _stop_agreed(self) -> bool:
        """Whether any rank was asked to stop: every rank stops after the same step, so none is left
        waiting in an all-reduce for a peer that has gone (a SIGTERM may reach one rank only)."""
        if self.world == 1:
            return self.stop_requested
        flag = torch.tensor([float(self.stop_requested)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.stop_requested = bool(flag.item())
        return self.stop_requested

    def _end_group(self) -> None:
        # A gloo group left to the interpreter's exit is torn down while its threads still run
        # ("terminate called without an active exception" on a rank that exits first): end it here,
        # after every rank (rank 0 writing its last checkpoint included) has arrived.
        if self._owns_group and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
            self._owns_group = False


def train(cfg: TrainConfig) -> Trainer:
    """Train (or resume) per `cfg`; the checkpoint lives in `cfg.out/checkpoint`.

    Ctrl-C saves a checkpoint, then raises KeyboardInterrupt on (the caller stops too, and the CLI
    exits 130); SIGTERM saves and returns, with `trainer.interrupted` set to "SIGTERM".
    """
    check_resumable(cfg)  # before the dataset renders and the models build
    trainer = Trainer(cfg)
    resumed = trainer.resume()
    if not resumed and cfg.init_from:
        trainer.init_from(cfg.init_from)
    if trainer.rank == 0:
        trainer.out.mkdir(parents=True, exist_ok=True)
        (trainer.out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        if resumed:
            ignored = f" (its checkpoint, not --init-from {cfg.init_from})" if cfg.init_from else ""
            print(f"resuming {trainer.out} at step {trainer.step}/{cfg.steps}{ignored}")
        elif trainer.initialized_from:
            print(f"starting {trainer.out} from {cfg.init_from} at step {trainer.step}/{cfg.steps}")
        if cfg.vgg_weights is None and cfg.lambda_vgg:
            print("VGG perceptual loss off: pass --vgg-weights PATH (torchvision vgg19 weights) to use it")
    # SIGTERM (schedulers, `kill`, preemption) saves like Ctrl-C; jobs started with `nohup ... &`
    # from a script ignore SIGINT, so SIGTERM is often the only way to stop them cleanly
    # SIGTERM only sets a flag that the loop checks between steps: an exception raised at an
    # arbitrary point could leave the TensorBoard writer's lock held and hang the exit
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: setattr(trainer, "stop_requested", True))
    try:
        trainer.fit()
        trainer.interrupted = "SIGTERM" if trainer.stop_requested else None
    except KeyboardInterrupt:
        trainer.interrupted = "SIGINT"
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if trainer.interrupted:
        trainer.save()  # keep the work done since the last checkpoint
        if trainer.rank == 0:
            print(f"interrupted: saved {trainer.out / CHECKPOINT} at step {trainer.step}", flush=True)
        if trainer.interrupted == "SIGINT":
            # saved, and still a Ctrl-C: a script calling train() must not carry on as if it had finished
            raise KeyboardInterrupt
    return trainer
