"""Training recipes of the classic noise-to-image GANs, after their reference scripts.

    run = train_classic("cgan-pytorch-gan", steps=500, batch_size=64, seed=0, out="runs/cgan")
    run.history[-1]        # {"step": 500, "d_loss": ..., "g_loss": ...}
    run.generator          # trained, in eval mode; out/generator is it saved by rtgan.models.save

| arch (preset)                    | discriminator (as the reference's)                 | adversarial    | order      |
|----------------------------------|----------------------------------------------------|----------------|------------|
| `dcgan` (dcgan-pytorch-examples) | pytorch/examples `netD`: 4x4 s2 convs ndf..8ndf    | non-saturating | D, G       |
| `dcgan-pytorch-gan` (same name)  | PyTorch-GAN: 3x3 s2 convs 16-32-64-128, Linear     | non-saturating | G, D       |
| `cgan` (cgan-pytorch-gan)        | PyTorch-GAN: MLP on (flat image, label embedding)  | least squares  | G, D       |
| `infogan` (infogan-pytorch-gan)  | PyTorch-GAN: that conv body + adv/class/code heads | least squares  | G, D, info |

All four use Adam(lr 2e-4, betas (0.5, 0.999)) for G and for D, as both references do.

What follows the references, and where this differs:
- BCE: the references end D in a Sigmoid and use BCELoss; here D returns the logit and the loss is
  BCE-with-logits, the same loss without the saturation of log(sigmoid). G's loss is BCE against
  ones (the non-saturating loss). pytorch/examples sums D's real and fake terms; PyTorch-GAN
  averages them; each recipe does as its reference.
- CGAN and InfoGAN: PyTorch-GAN trains both with `MSELoss` against 1 (real) / 0 (fake), an
  LSGAN loss, not the paper's BCE; the recipes follow the reference (`adversarial="bce"` swaps in
  the non-saturating loss).
- InfoGAN's information step, as the reference: fresh z, class and code through G, then
  lambda_cat * CE(class head, class) + lambda_con * MSE(code head, code) (1 and 0.1), minimised by a
  third Adam over all of G's and D's parameters (the shared body, the class and code heads, and G:
  the heads' Q and G's mutual information are optimised together). The reference's class head ends
  in a Softmax that it feeds to CrossEntropyLoss (a softmax of a softmax); here CE takes the head's
  logits, the loss the reference means.
- Initialisation: the references' `weights_init(_normal)` (conv weights ~ N(0, 0.02), batch-norm
  scales ~ N(1, 0.02) and shifts 0; Linear layers and conv biases keep PyTorch's defaults) on G and
  D for the DCGANs and InfoGAN; the CGAN script initialises nothing, and neither does its recipe.
- The references draw fresh batches from a shuffled MNIST/LSUN loader; here `data` (a tensor
  dataset in [-1, 1]; by default `rtgan.data.shapes.blobs` at the model's size) is reshuffled each
  pass, full batches only (the generators' batch norms need more than one sample).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from ..errors import ConfigError, InputError

ARCHS = ("dcgan", "dcgan-pytorch-gan", "cgan", "infogan")


# ---------------------------------------------------------------------------- discriminators


class ExamplesDCGANDiscriminator(nn.Module):
    """pytorch/examples DCGAN `netD`: (nc, 64, 64) -> five 4x4 convs -> one logit (no Sigmoid)."""

    def __init__(self, nc: int = 3, ndf: int = 64):
        super().__init__()
        layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for fin, fout in ((ndf, ndf * 2), (ndf * 2, ndf * 4), (ndf * 4, ndf * 8)):
            layers += [nn.Conv2d(fin, fout, 4, 2, 1, bias=False), nn.BatchNorm2d(fout), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(*layers)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.main(img).view(-1, 1)


class PyTorchGANDiscriminator(nn.Module):
    """PyTorch-GAN DCGAN `Discriminator` (heads off: one logit) or InfoGAN's (class and code heads).

    Four (3x3 stride-2 conv, LeakyReLU 0.2, Dropout2d 0.25[, BatchNorm eps 0.8]) blocks, 16-32-64-128,
    then Linear heads on the flattened (128, s/16, s/16) features. With `n_classes` the forward
    returns (validity, class logits, code) as InfoGAN's; without, validity alone.
    """

    def __init__(self, channels: int, img_size: int, n_classes: int = 0, code_dim: int = 0):
        super().__init__()
        if img_size < 16:
            raise ConfigError(
                f"the PyTorch-GAN discriminator needs img_size >= 16 (four stride-2 convs), got {img_size}"
            )

        def block(fin: int, fout: int, bn: bool = True) -> list[nn.Module]:
            layers = [nn.Conv2d(fin, fout, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
            return layers + ([nn.BatchNorm2d(fout, eps=0.8)] if bn else [])  # the reference's BatchNorm2d(n, 0.8)

        self.conv_blocks = nn.Sequential(
            *block(channels, 16, bn=False), *block(16, 32), *block(32, 64), *block(64, 128)
        )
        features = 128 * (img_size // 16) ** 2
        self.adv_layer = nn.Linear(features, 1)
        self.aux_layer = nn.Linear(features, n_classes) if n_classes else None
        self.latent_layer = nn.Linear(features, code_dim) if n_classes else None

    def forward(self, img: torch.Tensor):
        out = self.conv_blocks(img).flatten(1)
        if self.aux_layer is None:
            return self.adv_layer(out)
        return self.adv_layer(out), self.aux_layer(out), self.latent_layer(out)


class CGANDiscriminator(nn.Module):
    """PyTorch-GAN CGAN `Discriminator`: cat(flat image, label embedding) -> MLP 512-512-512 -> 1."""

    def __init__(self, channels: int, img_size: int, n_classes: int):
        super().__init__()
        self.label_embedding = nn.Embedding(n_classes, n_classes)
        self.model = nn.Sequential(
            nn.Linear(n_classes + channels * img_size**2, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1),
        )

    def forward(self, img: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat((img.flatten(1), self.label_embedding(labels)), -1))


def build_discriminator(config, ndf: int = 64) -> nn.Module:
    """The discriminator of the generator config's reference script (`ndf`: pytorch/examples only)."""
    arch = config.arch
    if arch == "dcgan":
        return ExamplesDCGANDiscriminator(config.nc, ndf)
    if arch == "dcgan-pytorch-gan":
        return PyTorchGANDiscriminator(config.channels, config.img_size)
    if arch == "cgan":
        return CGANDiscriminator(config.channels, config.img_size, config.n_classes)
    if arch == "infogan":
        return PyTorchGANDiscriminator(config.channels, config.img_size, config.n_classes, config.code_dim)
    raise ConfigError(f"no classic training recipe for arch {arch!r}; these have one: {list(ARCHS)}")


@torch.no_grad()
def reference_init(model: nn.Module) -> nn.Module:
    """The references' `weights_init(_normal)`: Conv*/ConvTranspose* weights ~ N(0, 0.02), BatchNorm*
    scales ~ N(1, 0.02) and shifts 0; everything else (Linear, conv biases) keeps PyTorch's init."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return model


# ---------------------------------------------------------------------------- losses


def _adversarial(kind: str):
    """loss(D output, target 0/1) for 'bce' (with logits) or 'mse' (least squares)."""
    if kind == "bce":
        return lambda out, target: F.binary_cross_entropy_with_logits(out, torch.full_like(out, target))
    if kind == "mse":
        return lambda out, target: F.mse_loss(out, torch.full_like(out, target))
    raise ConfigError(f"adversarial must be 'bce' or 'mse', got {kind!r}")


# ---------------------------------------------------------------------------- the run


@dataclasses.dataclass
class ClassicRun:
    """What `train_classic` returns: the trained nets and one dict of losses per step."""

    recipe: str
    generator: nn.Module
    discriminator: nn.Module
    history: list[dict]

    def losses(self, key: str) -> list[float]:
        """One loss over the steps: 'd_loss', 'g_loss' or, for InfoGAN, 'info_loss', 'info_cat', 'info_con'."""
        return [h[key] for h in self.history]


class _Latents:
    """Draws the generator's inputs as the reference does: z ~ N(0, 1), class ~ U{0..n-1}, code ~ U(-1, 1)."""

    def __init__(self, config, generator: torch.Generator, device: torch.device):
        self.c, self.g, self.device = config, generator, device

    def __call__(self, b: int) -> tuple[tuple[torch.Tensor, ...], torch.Tensor | None, torch.Tensor | None]:
        """(G's forward args, class ids or None, code or None)."""
        c, g = self.c, self.g
        z = torch.randn(b, getattr(c, "nz", None) or c.latent_dim, generator=g)
        if c.arch == "dcgan":
            return (z[:, :, None, None].to(self.device),), None, None  # the reference's (B, nz, 1, 1)
        if c.arch == "dcgan-pytorch-gan":
            return (z.to(self.device),), None, None
        labels = torch.randint(0, c.n_classes, (b,), generator=g)
        if c.arch == "cgan":
            return (z.to(self.device), labels.to(self.device)), labels.to(self.device), None
        code = torch.rand(b, c.code_dim, generator=g) * 2 - 1
        onehot = F.one_hot(labels, c.n_classes).float()
        args = tuple(t.to(self.device) for t in (z, onehot, code))
        return args, labels.to(self.device), args[2]


def _dataset(data, config, n_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    if data is None:
        from ..data.shapes import blobs

        data = blobs(n_per_class=64, n_classes=n_classes or 10, size=config.image_size,
                     channels=config.image_channels, seed=seed)  # fmt: skip
    if isinstance(data, torch.Tensor):
        data = (data,)
    tensors = data.tensors if isinstance(data, TensorDataset) else tuple(data)
    images, labels = tensors[0], (tensors[1] if len(tensors) > 1 else None)
    want = (config.image_channels, config.image_size, config.image_size)
    if images.dim() != 4 or tuple(images.shape[1:]) != want or not images.is_floating_point():
        raise InputError(f"{config.arch} trains on float images (N, {', '.join(map(str, want))}), got "
                         f"{tuple(images.shape)} {images.dtype}")  # fmt: skip
    if images.numel() and (images.min() < -1.001 or images.max() > 1.001):
        raise InputError(f"training images must be in [-1, 1] (the generator ends in tanh), got "
                         f"[{images.min():.3g}, {images.max():.3g}]")  # fmt: skip
    if config.arch == "cgan":
        if labels is None or labels.shape != images.shape[:1] or labels.is_floating_point():
            raise InputError("cgan trains on (images, int64 labels (N,)): its discriminator judges the pair")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
            raise InputError(
                f"labels must be class ids 0..{n_classes - 1}, got {int(labels.min())}..{int(labels.max())}"
            )
    return images, (labels.long() if labels is not None else None)


def _batches(n: int, batch_size: int, g: torch.Generator):
    """Index batches of a fresh permutation each pass; the ragged tail of a pass is dropped."""
    if batch_size < 2 or batch_size > n:
        raise ConfigError(f"batch_size must be in 2..{n} (the dataset's size), got {batch_size}")
    while True:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - batch_size + 1, batch_size):
            yield perm[i : i + batch_size]


def _adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=betas)


def train_classic(
    model: str | nn.Module,
    data=None,
    steps: int = 200,
    batch_size: int = 64,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    *,
    ndf: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    adversarial: str | None = None,
    lambda_cat: float = 1.0,
    lambda_con: float = 0.1,
    init: bool = True,
    device: str | torch.device = "cpu",
    **overrides,
) -> ClassicRun:
    """Train a DCGAN / CGAN / InfoGAN generator with its reference recipe; see the module docstring.

    model: a preset name (built with `overrides`, e.g. ngf=16) or a generator of one of these archs
    (trained in place). data: a TensorDataset / (images, labels) / images tensor, images float
    (N, C, S, S) in [-1, 1], labels int64 class ids (required for cgan); None draws
    `rtgan.data.shapes.blobs` at the model's size. ndf: the pytorch/examples discriminator's width.
    adversarial: 'bce' or 'mse', else the reference's. init: apply the reference's weight init
    (CGAN: none). Seeds the RNGs it uses without touching the caller's (`torch.random.fork_rng`).
    out: writes out/losses.jsonl (one JSON line per step, as it goes) and, at the end,
    out/generator (`rtgan.models.save`, with the recipe under "training").
    """
    from ..models import get_model, save

    device = torch.device(device)
    if steps < 0:
        raise ConfigError(f"steps must be >= 0, got {steps}")
    forked = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(seed)  # model init and dropout; the data and latents below have their own generator
        if isinstance(model, str):
            G = get_model(model, **overrides)
        elif overrides:
            raise ConfigError(f"overrides {sorted(overrides)} apply to a preset name, not a built model")
        else:
            G = model
        c = getattr(G, "config", None)
        if getattr(c, "arch", None) not in ARCHS:
            raise ConfigError(f"no classic training recipe for {getattr(c, 'arch', type(G).__name__)!r}; "
                              f"these archs have one: {list(ARCHS)}")  # fmt: skip
        arch, n_classes = c.arch, getattr(c, "n_classes", 0)
        D = build_discriminator(c, ndf)
        if init and arch != "cgan":  # the CGAN script keeps PyTorch's init
            reference_init(G), reference_init(D)
        G.to(device).train()
        D.to(device).train()
        images, labels = _dataset(data, c, n_classes, seed)
        g = torch.Generator().manual_seed(seed)
        latents = _Latents(c, g, device)
        batches = _batches(len(images), batch_size, g)
        adv = _adversarial(adversarial or ("bce" if arch.startswith("dcgan") else "mse"))
        opt_g, opt_d = _adam(G.parameters(), lr, betas), _adam(D.parameters(), lr, betas)
        opt_info = _adam(itertools.chain(G.parameters(), D.parameters()), lr, betas) if arch == "infogan" else None

        def judge(img, cls):  # D's validity (the adversarial head)
            if arch == "cgan":
                return D(img, cls)
            return D(img)[0] if arch == "infogan" else D(img)

        log = None
        if out is not None:
            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)
            log = open(out / "losses.jsonl", "w")
        history: list[dict] = []
        try:
            for step in range(1, steps + 1):
                idx = next(batches)
                real = images[idx].to(device)
                real_cls = labels[idx].to(device) if labels is not None else None
                args, cls, code = latents(len(idx))
                if arch == "dcgan":  # pytorch/examples: D on real + fake (summed), then G on the same fake
                    fake = G(*args)
                    opt_d.zero_grad()
                    d_loss = adv(judge(real, None), 1.0) + adv(judge(fake.detach(), None), 0.0)
                    d_loss.backward()
                    opt_d.step()
                    opt_g.zero_grad()
                    g_loss = adv(judge(fake, None), 1.0)
                    g_loss.backward()
                    opt_g.step()
                else:  # PyTorch-GAN: G, then D on real and the same fake (averaged)
                    opt_g.zero_grad()
                    fake = G(*args)
                    g_loss = adv(judge(fake, cls), 1.0)
                    g_loss.backward()
                    opt_g.step()
                    opt_d.zero_grad()
                    d_loss = (adv(judge(real, real_cls), 1.0) + adv(judge(fake.detach(), cls), 0.0)) / 2
                    d_loss.backward()
                    opt_d.step()
                row = {"step": step, "d_loss": d_loss.item(), "g_loss": g_loss.item()}
                if opt_info is not None:  # InfoGAN's information step on fresh latents
                    opt_info.zero_grad()
                    args, cls, code = latents(len(idx))
                    _, cls_logits, code_pred = D(G(*args))
                    cat, con = F.cross_entropy(cls_logits, cls), F.mse_loss(code_pred, code)
                    info = lambda_cat * cat + lambda_con * con
                    info.backward()
                    opt_info.step()
                    row.update(info_loss=info.item(), info_cat=cat.item(), info_con=con.item())
                history.append(row)
                if log is not None:
                    log.write(json.dumps(row) + "\n")
                    log.flush()
        finally:
            if log is not None:
                log.close()
        G.eval()
        D.eval()
        if out is not None:
            kind = adversarial or ("bce" if arch.startswith("dcgan") else "mse")
            training = {"recipe": arch, "steps": steps, "batch_size": batch_size, "seed": seed, "lr": lr,
                        "betas": list(betas), "adversarial": kind}  # fmt: skip
            if arch == "dcgan":
                training["ndf"] = ndf
            if arch == "infogan":
                training.update(lambda_cat=lambda_cat, lambda_con=lambda_con)
            save(G, out / "generator", extra={"training": training})
    return ClassicRun(arch, G, D, history)
