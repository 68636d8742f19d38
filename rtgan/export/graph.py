"""Inference graphs: label ids (and instance ids, z) in, uint8 RGB image out.

These wrap a trained generator for export. Label preparation runs inside the graph, and every
conv that reads the one-hot map becomes a gather (`LabelConv`) when the rewrite is on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..models import ASAPNetGenerator, Pix2PixHDGenerator, SPADEGenerator
from ..models.asapnet import cosine_coords
from ..models.labels import label_lut, texture_noise
from .rewrite import (
    DEFAULT,
    FastSPADE,
    Rewrites,
    fold_resize_convs,
    fold_spectral_norm,
    frozen_copy,
    instance_edges,
    label_conv,
    one_hot,
    to_uint8,
)


class _Graph(nn.Module):
    """Common I/O handling; subclasses implement `paint(labels, edges, z) -> (B, 3, H, W) in [-1, 1]`."""

    uses_instance: bool
    uses_z: bool = False

    def input_names(self) -> list[str]:
        return ["labels"] + (["instance"] if self.uses_instance else []) + (["z"] if self.uses_z else [])

    def extra_channels(self, labels: torch.Tensor, instance: torch.Tensor | None) -> torch.Tensor | None:
        """The float channels after the one-hot map: instance edges, then the fixed noise map (a
        constant of the graph), in the models' order."""
        edges = instance_edges(instance) if self.uses_instance else None
        if self.noise is None:
            return edges
        noise = self.noise.expand(labels.shape[0], -1, -1, -1)
        return noise if edges is None else torch.cat([edges, noise], 1)

    def forward(self, labels: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        args = dict(zip(self.input_names()[1:], rest))
        labels = labels.long()
        if self.label_lut is not None:  # dataset ids -> class channels; the engine has checked them
            labels = self.label_lut[labels]
        image = self.paint(labels, self.extra_channels(labels, args.get("instance")), args.get("z"))
        return image if image.dtype == torch.uint8 else to_uint8(image)  # a kernel may write uint8 itself


class _SPADEBlock(nn.Module):
    def __init__(self, block, num_classes: int, rewrites: Rewrites):
        super().__init__()
        self.learned_shortcut = block.learned_shortcut
        self.conv_0, self.conv_1 = block.conv_0, block.conv_1
        self.norm_0 = FastSPADE(block.norm_0, num_classes, rewrites)
        self.norm_1 = FastSPADE(block.norm_1, num_classes, rewrites)
        if self.learned_shortcut:
            self.conv_s, self.norm_s = block.conv_s, FastSPADE(block.norm_s, num_classes, rewrites)

    def forward(self, x, labels, edges):
        x_s = self.conv_s(self.norm_s(x, labels, edges)) if self.learned_shortcut else x
        dx = self.conv_0(self.norm_0(x, labels, edges, 0.2))
        dx = self.conv_1(self.norm_1(dx, labels, edges, 0.2))
        return x_s + dx


class SPADEGraph(_Graph):
    def __init__(self, model: SPADEGenerator, height: int, width: int, rewrites: Rewrites = DEFAULT):
        super().__init__()
        model = frozen_copy(model)
        if rewrites.fold_spectral:
            fold_spectral_norm(model)
        c = self.config = model.config
        self.uses_instance, self.uses_z = not c.no_instance, c.use_vae
        self.factor = 2**c.num_up_layers
        self.height, self.width = height, width
        if c.use_vae:
            self.fc = model.fc
            self.latent = c.latent_size
        else:
            self.fc = label_conv(model.fc, c.num_classes, 1, "zeros", rewrites.label_gather)
        names = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"]
        names += ["up_4"] if c.num_upsampling_layers == "most" else []
        self.blocks = nn.ModuleDict({n: _SPADEBlock(getattr(model, n), c.num_classes, rewrites) for n in names})
        # upsampling before each block but the head; 'normal' skips the one before G_middle_1
        self.up_before = {
            n: n != "head_0" and not (n == "G_middle_1" and c.num_upsampling_layers == "normal") for n in names
        }
        self.conv_img = model.conv_img

    def paint(self, labels, edges, z):
        b = labels.shape[0]
        h, w = labels.shape[1:]
        if self.uses_z:
            x = self.fc(z).view(b, -1, *self.latent)
        else:
            s = self.factor
            x = self.fc(labels[:, ::s, ::s], None if edges is None else edges[:, :, ::s, ::s])
        for name, block in self.blocks.items():
            if self.up_before[name]:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            s = h // x.shape[2]  # nearest resampling by an integer factor is a strided slice
            x = block(x, labels[:, ::s, ::s], None if edges is None else edges[:, :, ::s, ::s])
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


class ASAPNetGraph(_Graph):
    def __init__(self, model: ASAPNetGenerator, height: int, width: int, rewrites: Rewrites = DEFAULT):
        super().__init__()
        model = frozen_copy(model)
        if rewrites.fold_spectral:
            fold_spectral_norm(model)
        c = self.config = model.config
        self.uses_instance = not c.no_instance_edge
        self.tile, self.channels = c.tile_size, c.mlp_channels
        self.height, self.width = height, width
        self.downsample = model.downsample
        layers = list(model.lowres_stream.model)
        reflect = isinstance(layers[0], nn.ReflectionPad2d)
        first = layers[1 if reflect else 0]
        conv, norm = (first[0], first[1]) if isinstance(first, nn.Sequential) else (first, nn.Identity())
        # The first conv reads the one-hot map only without the tent pre-downsample.
        self.gather_first = rewrites.label_gather and self.downsample is None
        if self.gather_first:
            self.first = label_conv(conv, c.num_classes, 1, "reflect" if reflect else "zeros", True)
            self.first_norm, self.rest = norm, nn.Sequential(*layers[2 if reflect else 1 :])
        else:
            self.rest = nn.Sequential(*layers)
        self.gather_mlp = rewrites.label_gather
        self.kernel = rewrites.kernels
        if self.kernel:
            import rtgan.kernels.ops  # noqa: F401  (registers torch.ops.rtgan)

            if c.hr_coor != "cosine" or len(set(c.mlp_channels[1:-1])) != 1:
                raise ConfigError("the fused ASAPNet kernel needs hr_coor='cosine' and hidden layers of one width")
        self.edges_in_mlp = self.uses_instance and not c.lr_instance
        coords = cosine_coords(self.tile, self.tile, self.tile) if c.hr_coor == "cosine" else None
        # (tile*tile, n_coords): position codes repeat with the tile, so one tile's codes serve all
        self.register_buffer("coords", None if coords is None else coords[0].flatten(1).t().contiguous())

    def extra_channels(self, labels, instance):
        # the noise map feeds the MLPs only (`_mlp` reads the buffer), not the low-res stream
        return instance_edges(instance) if self.uses_instance else None

    def _semantics(self, labels, edges):
        sem = one_hot(labels, self.config.num_classes)
        return sem if edges is None else torch.cat([sem, edges], 1)

    def paint(self, labels, edges, z):
        if self.gather_first:
            params = self.rest(self.first_norm(self.first(labels, edges)))
        else:
            sem = self._semantics(labels, edges)
            params = self.rest(self.downsample(sem) if self.downsample is not None else sem)
        return self._mlp(labels, edges, params)

    def _tiles(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, hl, wl, tile*tile, C)."""
        b, c, h, w = x.shape
        k = self.tile
        return x.view(b, c, h // k, k, w // k, k).permute(0, 2, 4, 3, 5, 1).reshape(b, h // k, w // k, k * k, c)

    def _mlp(self, labels, edges, params):
        if self.kernel:  # fused: uint8 (B, H, W, 3) straight from the op
            c = self.config
            extra = [edges] if self.edges_in_mlp else []
            if self.noise is not None:
                extra.append(self.noise.expand(labels.shape[0], -1, -1, -1))
            extra = torch.cat(extra, 1) if extra else None
            return torch.ops.rtgan.asap_pixel_mlp(labels, params, c.num_classes, list(self.channels), self.tile,
                                                  extra, True)  # fmt: skip
        b, _, hl, wl = params.shape
        k, ch = self.tile, self.channels
        p = params.permute(0, 2, 3, 1)  # (B, hl, wl, P)
        idx, out = 0, None
        for layer, (cin, cout) in enumerate(zip(ch, ch[1:])):
            bias = p[..., idx : idx + cout].unsqueeze(3)
            idx += cout
            weight = p[..., idx : idx + cin * cout].reshape(b, hl, wl, cin, cout)
            idx += cin * cout
            if layer > 0:
                out = torch.matmul(out, weight) + bias
            elif self.gather_mlp:
                out = self._first_layer(labels, edges, weight, bias)
            else:  # the input built in tile order: tiling the 31-channel float map was the graph's slowest node
                x = self._tiles(labels.unsqueeze(1))  # (B, hl, wl, k*k, 1) ids
                classes = torch.arange(self.config.num_classes, device=labels.device)
                parts = [(x == classes).float()]
                if self.edges_in_mlp:
                    parts.append(self._tiles(edges))
                if self.noise is not None:
                    parts.append(self._tiles(self.noise).expand(b, -1, -1, -1, -1))
                if self.coords is not None:
                    parts.append(self.coords.expand(b, hl, wl, -1, -1))
                out = torch.matmul(torch.cat(parts, -1), weight) + bias
            out = F.leaky_relu(out, 0.01) if layer < len(ch) - 2 else torch.tanh(out)
        # (B, hl, wl, k*k, 3) -> (B, 3, H, W)
        return out.view(b, hl, wl, k, k, 3).permute(0, 5, 1, 3, 2, 4).reshape(b, 3, hl * k, wl * k)

    def _first_layer(self, labels, edges, weight, bias):
        """Row `label` of each tile's first weight matrix, plus the coordinate (and edge) part."""
        b, hl, wl, cin, cout = weight.shape
        nc = self.config.num_classes
        tiles = self._tiles(labels.unsqueeze(1)).squeeze(-1)  # (B, hl, wl, k*k)
        base = torch.arange(b * hl * wl, device=labels.device).view(b, hl, wl, 1) * cin
        out = F.embedding(base + tiles, weight.reshape(-1, cout)) + bias
        row = nc
        if self.edges_in_mlp:
            out = out + self._tiles(edges) * weight[:, :, :, row : row + 1]
            row += 1
        if self.noise is not None:
            k = self.noise.shape[1]
            out = out + torch.matmul(self._tiles(self.noise), weight[:, :, :, row : row + k])
            row += k
        if self.coords is not None:
            out = out + torch.matmul(self.coords, weight[:, :, :, row:])
        return out


class Pix2PixHDGraph(_Graph):
    def __init__(self, model: Pix2PixHDGenerator, height: int, width: int, rewrites: Rewrites = DEFAULT):
        super().__init__()
        model = frozen_copy(model)
        if rewrites.fold_resize_conv:
            fold_resize_convs(model)
        c = self.config = model.config
        if c.extra_nc:
            raise ConfigError(
                "pix2pixHD with instance/label feature channels is not exportable: its features "
                "come from a separate encoder and clustering step"
            )
        self.uses_instance = not c.no_instance
        self.height, self.width = height, width
        self.local = c.netG == "local"
        if self.local:
            self.model, self.downsample = model.model, model.downsample
            self.n_local = c.n_local_enhancers
            self.branches_1 = nn.ModuleList(getattr(model, f"model{n}_1") for n in range(1, self.n_local + 1))
            self.branches_2 = nn.ModuleList(getattr(model, f"model{n}_2") for n in range(1, self.n_local + 1))
            head = self.branches_1[-1]  # the finest branch reads the full-resolution label map
            self.head_rest = nn.Sequential(*list(head)[2:])
        else:
            head = model.model
            self.generator = model  # from layer 2 on, through global_layers: it adds decoder noise
        # head[0] is ReflectionPad2d(3), head[1] the 7x7 conv over the one-hot map
        self.first = label_conv(head[1], c.num_classes, 3, "reflect", rewrites.label_gather)

    def paint(self, labels, edges, z):
        if not self.local:
            noise = None if self.noise is None else self.noise.expand(labels.shape[0], -1, -1, -1)
            return self.generator.global_layers(self.first(labels, edges), noise, start=2)
        x = self.head_rest(self.first(labels, edges))
        sem = one_hot(labels, self.config.num_classes)
        sem = sem if edges is None else torch.cat([sem, edges], 1)
        pyramid = [sem]
        for _ in range(self.n_local):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(self.n_local):
            inp = x if n == self.n_local - 1 else self.branches_1[n](pyramid[self.n_local - 1 - n])
            out = self.branches_2[n](inp + out)
        return out


class SignatureGraph(nn.Module):
    """Any generator that declares `signature()` and `prepare_inputs(**inputs)`: the engine's inputs
    -> `prepare_inputs` -> the model's own forward -> uint8 image. No rewrites: the model as it is."""

    uses_instance = False

    def __init__(self, model: nn.Module, height: int, width: int):
        super().__init__()
        self.model = frozen_copy(model)
        self.signature = model.signature()
        self.height, self.width = height, width
        self.uses_z = self.signature.input("z") is not None

    def input_names(self) -> list[str]:
        return [i.name for i in self.signature.inputs]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.input_names(), inputs))
        return to_uint8(self.model(*self.model.prepare_inputs(**named)))


GRAPHS = {"spade": SPADEGraph, "asapnet": ASAPNetGraph, "pix2pixhd": Pix2PixHDGraph}


def inference_graph(model: nn.Module, height: int, width: int, rewrites: Rewrites = DEFAULT) -> nn.Module:
    """The exportable inputs -> uint8-image module for `model` at a fixed size."""
    arch = getattr(getattr(model, "config", None), "arch", None)
    if arch not in GRAPHS:
        if not (hasattr(model, "signature") and hasattr(model, "prepare_inputs")):
            raise ConfigError(
                f"{type(model).__name__} cannot be exported: declare signature() (rtgan.signature.Signature) "
                "and prepare_inputs(**inputs) -> the tensors its forward takes"
            )
        check = getattr(getattr(model, "config", None), "check_size", None) or model.signature().check_size
        check(height, width)
        return SignatureGraph(model, height, width).eval()
    model.config.check_size(height, width)
    graph = GRAPHS[arch](model, height, width, rewrites)
    ids = model.config.label_ids
    graph.register_buffer("label_lut", label_lut(ids).clamp(min=0) if ids is not None else None)
    k = getattr(model.config, "noise_nc", 0)
    octaves = getattr(model, "noise_octaves", False)
    graph.register_buffer("noise", texture_noise(k, height, width, octaves) if k else None)
    return graph.eval()


class StyleEncoderGraph(nn.Module):
    """SPADE's VAE encoder on a uint8 RGB style image (B, H, W, 3), any size -> mu (B, z_dim).

    The mean is the style code: sampling around it is the caller's choice (`Engine.run(z=...)`).
    """

    def __init__(self, model: SPADEGenerator):
        super().__init__()
        if getattr(model, "encoder", None) is None:
            raise ConfigError("this model has no style encoder (use_vae=False, or loaded without latest_net_E.pth)")
        self.encoder = fold_spectral_norm(frozen_copy(model).encoder)

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        x = style.float().permute(0, 3, 1, 2) / 127.5 - 1
        # the encoder resizes to 256x256 only when needed; a traced graph must always resize
        # (bilinear to the same size is the identity, so 256x256 inputs are unchanged)
        x = F.interpolate(x, size=(256, 256), mode="bilinear")
        return self.encoder(x)[0]
