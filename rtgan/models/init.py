"""Weight initialisation as the official `BaseNetwork.init_weights` (SPADE, ASAPNet)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


@torch.no_grad()
def init_weights(model: nn.Module, kind: str = "xavier", gain: float = 0.02) -> nn.Module:
    """Conv/Linear weights ~ `kind`(gain), biases 0; batch-norm scales ~ N(1, gain), shifts 0.

    PyTorch's default init saturates the final tanh of these deep generators; this one does not.
    A spectral-normed layer's `weight_orig` is initialised in place of `weight`.
    """
    inits = {
        "xavier": lambda w: nn.init.xavier_normal_(w, gain=gain),
        "xavier_uniform": lambda w: nn.init.xavier_uniform_(w, gain=1.0),
        "kaiming": lambda w: nn.init.kaiming_normal_(w, a=0, mode="fan_in"),
        "orthogonal": lambda w: nn.init.orthogonal_(w, gain=gain),
        "normal": lambda w: nn.init.normal_(w, 0.0, gain),
    }
    if kind not in inits:
        raise ValueError(f"unknown init {kind!r}; choose one of {list(inits)}")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            inits[kind](getattr(m, "weight_orig", m.weight))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def random_inputs(model: nn.Module, height: int, width: int, batch: int = 1, generator: torch.Generator | None = None):
    """Blocky random label ids (8x8 cells, so instance edges are sparse as in real maps), instance ids
    when the model takes them, and the prepared semantics: (labels, instance, semantics)."""
    c = model.config
    coarse = torch.randint(0, c.num_classes, (batch, 1, -(-height // 8), -(-width // 8)), generator=generator)
    labels = coarse.repeat_interleave(8, 2).repeat_interleave(8, 3)[:, :, :height, :width].contiguous()
    if getattr(c, "label_ids", None):  # a model of named classes (e.g. COCO-Stuff ids) takes those ids
        labels = torch.tensor(c.label_ids)[labels]
    instance = None
    if c.semantic_nc > c.num_classes + getattr(c, "extra_nc", 0):
        split = torch.randint(0, 2, (batch, 1, height, width), generator=generator) * (labels == 1)
        instance = labels * 10 + split
    kwargs = {}
    if getattr(c, "extra_nc", 0):
        kwargs["features"] = torch.randn(batch, c.extra_nc, height, width, generator=generator)
    # OASIS's prepare takes the labels alone (it has no instance edges in any mode)
    given = (labels,) if instance is None else (labels, instance)
    return labels, instance, model.prepare(*given, **kwargs)


IMAGE_ARCHS = ("pix2pix", "cyclegan", "munit")  # image -> image: rtgan/models/pix2pix.py, munit.py


def takes_images(model: nn.Module) -> bool:
    """Whether the model translates images (pix2pix, CycleGAN, MUNIT) rather than painting label maps."""
    return getattr(getattr(model, "config", None), "arch", None) in IMAGE_ARCHS


def random_images(model: nn.Module, height: int, width: int, batch: int = 1, generator: torch.Generator | None = None):
    """`forward`'s arguments for an image-in model: smooth random images in [-1, 1] (coarse noise at
    1/32 and 1/8 of the size, upsampled bilinearly, plus a little pixel noise: regions, gradients and
    edges, as in photos, not white noise), and for MUNIT a style code ~ N(0, 1)."""
    import torch.nn.functional as F

    c = model.config
    channels = c.source_dim if c.arch == "munit" else c.input_nc
    image = torch.zeros(batch, channels, height, width)
    for cell, amplitude in ((32, 0.6), (8, 0.3)):
        coarse = torch.rand(batch, channels, -(-height // cell) + 1, -(-width // cell) + 1, generator=generator)
        image += amplitude * F.interpolate(coarse * 2 - 1, size=(height, width), mode="bilinear", align_corners=True)
    image += 0.05 * torch.randn(batch, channels, height, width, generator=generator)
    image = image.clamp(-1, 1)
    if c.arch == "munit":
        return image, torch.randn(batch, c.style_dim, 1, 1, generator=generator)
    return (image,)


def _output_layer(model: nn.Module) -> nn.Module:
    if model.config.arch == "spade":
        return model.conv_img
    if model.config.arch == "munit":  # the decoder that paints (the target domain's), its final 7x7 conv
        return model.target.dec.model[-1].conv
    if model.config.arch in ("pix2pix", "cyclegan"):
        if model.config.unet:  # the outermost level's transposed conv, before the tanh
            return model.model.model[3]
        return model.model[-2]  # the ResNet's final 7x7 conv
    skip = ("encoder", "noise_decoder")  # VAE encoder, pix2pixHD's decoder-noise 1x1 convs
    return [m for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and not n.startswith(skip)][-1]


@torch.no_grad()
def randomize_like_trained(
    model: nn.Module, height: int, width: int, *, seed: int = 0, target_std: float = 0.4, iterations: int = 12
) -> nn.Module:
    """Random weights that behave like trained ones, for fidelity checks and benchmarks.

    Plain random init makes these deep generators either ignore the labels or overflow (a
    batch norm with default statistics normalises nothing). Here weights are xavier(1.0), batch-norm
    statistics are gathered on random inputs (then perturbed, so running and batch statistics
    differ), instance-norm affines are random, and the output layer is scaled by bisection so the
    image has std ~`target_std`: neither flat nor saturated. The inputs are what the model takes:
    random label maps (`random_inputs`), or smooth random images for an image-in model such as
    pix2pix, CycleGAN or MUNIT (`random_images`, with a random style code for MUNIT).
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    init_weights(model, gain=1.0)
    if takes_images(model):  # image -> image: smooth random images (and a style code) as inputs
        args, kwargs = (lambda b: random_images(model, height, width, b, g)), (lambda b: {})
    else:  # label maps (+ z for a VAE); the draws in this order, so the weights stay as they were
        z_dim = model.config.z_dim if getattr(model.config, "use_vae", False) else None
        # no z keyword for the others; per-class style codes (SEAN) drawn U(-1, 1) as an engine samples them,
        # its noise maps left to the forward, which draws them
        try:
            styles = [i for i in model.signature().inputs if i.kind == "styles"]
        except ConfigError:  # no engine signature (pix2pixHD with feature channels): labels (+ z) are all it takes
            styles = []

        def kwargs(b):
            out = {"z": torch.randn(b, z_dim, generator=g)} if z_dim else {}
            for i in styles:
                out[i.name] = torch.rand(b, i.classes, i.size, generator=g) * 2 - 1
            return out

        args = lambda b: (random_inputs(model, height, width, b, g)[2],)  # noqa: E731
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if bns:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        model.train()
        for _ in range(2):
            model(*args(2), **kwargs(2))
        for m in bns:
            m.momentum = 0.1
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.mul_(torch.empty(m.running_var.shape).uniform_(0.8, 1.25, generator=g))
    for m in model.modules():
        if isinstance(m, nn.InstanceNorm2d) and m.affine:
            m.weight.normal_(1, 0.1, generator=g)
            m.bias.normal_(0, 0.1, generator=g)
    model.eval()
    layer = _output_layer(model)
    w0, b0 = layer.weight.clone(), layer.bias.clone()
    inputs, options = args(1), kwargs(1)
    lo, hi = -24.0, 8.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        layer.weight.copy_(w0 * 2**mid)
        layer.bias.copy_(b0 * 2**mid)
        std = model(*inputs, **options).std().item()
        lo, hi = (mid, hi) if std < target_std else (lo, mid)
    return model
