"""Loading official `latest_net_G.pth` checkpoints safely and strictly.

Official loaders use `strict=False` (ASAPNet) or trust the option namespace (SPADE: `normal` and
`more` upsampling have the same keys), so a wrong option gives a wrong image, not an error. Here
every key and shape must match, and a mismatch is explained in terms of the option that likely
differs.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError
from .oasis import oasis_hints
from .presets import get_preset
from .registry import build, check_arch, make_config
from .sean import sean_hints
from .stylegan import read_stylegan_checkpoint, stylegan_hints

Shapes = dict[str, tuple[int, ...]]


def _load_pth(path: str | os.PathLike):
    """The object in a `.pth` file, loaded weights-only (no pickled code runs); not yet checked."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to load: the file holds pickled objects other than tensors "
            f"(loading is weights-only, so no code from the file runs): {e}"
        ) from None
    except Exception as e:  # whatever a truncated, bit-flipped or foreign file makes the reader raise
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupted?): {type(e).__name__}: {e}"
        ) from None
    return state


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a `.pth` file, without running any pickled code."""
    path = os.fspath(path)
    state = _load_pth(path)
    if isinstance(state, Mapping) and "state_dict" in state:
        if not isinstance(state["state_dict"], Mapping):
            raise CheckpointError(
                f"{path}: its 'state_dict' entry holds a {type(state['state_dict']).__name__}, "
                "not a state dict of tensors (names -> tensors)"
            )
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got a {type(state).__name__}")
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError(
                f"{path}: expected a state dict of tensors, but entry {k!r:.60} holds a "
                f"{type(v).__name__}" + ("" if isinstance(k, str) else f" under a {type(k).__name__} key")
            )
        if v.layout != torch.strided or v.is_quantized or v.is_meta:
            raise CheckpointError(f"{path}: tensor {k!r} is {v.layout}/quantized/meta, not a plain dense tensor")
    state = dict(state)
    if state and all(k.startswith("module.") for k in state):  # saved from a DataParallel wrapper
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def check_tensors(state: Any, what: str) -> dict[str, torch.Tensor]:
    """`state` as a dict of plain dense tensors under string names, else a CheckpointError naming the bad entry."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{what}: expected a state dict (names -> tensors), got a {type(state).__name__}")
    for k, v in state.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{what}: entry {k!r:.60} holds a {type(v).__name__}, not a tensor")
        if v.layout != torch.strided or v.is_quantized or v.is_meta:
            raise CheckpointError(f"{what}: tensor {k!r} is {v.layout}/quantized/meta, not a plain dense tensor")
    return dict(state)


def state_shapes(state: Mapping[str, torch.Tensor]) -> Shapes:
    return {k: tuple(v.shape) for k, v in state.items()}


def check_keys(expected: Shapes, got: Shapes, *, what: str, hints: list[str]) -> None:
    """Raise CheckpointError listing missing, unexpected and mis-shaped keys, with option hints."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shaped = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if not (missing or unexpected or shaped):
        return

    def listing(title, keys, fmt=str, n=8):
        more = f" ... and {len(keys) - n} more" if len(keys) > n else ""
        return f"  {title} ({len(keys)}): " + ", ".join(fmt(k) for k in keys[:n]) + more

    lines = [f"{what} does not match the model built from these options:"]
    if missing:
        lines.append(listing("missing from the checkpoint", missing))
    if unexpected:
        lines.append(listing("unexpected in the checkpoint", unexpected))
    if shaped:
        lines.append(
            listing("shape mismatch", shaped, lambda k: f"{k} checkpoint {list(got[k])} vs model {list(expected[k])}")
        )
    if hints:
        lines.append("Probably differing option(s):")
        lines += [f"  - {h}" for h in dict.fromkeys(hints)]
    raise CheckpointError("\n".join(lines))


def check_dtypes(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor], *, what: str) -> None:
    """Raise CheckpointError for tensors that `load_state_dict` would silently cast or that hold NaN/inf.

    Floating parameters take any floating dtype (fp16 storage loads as fp32); integer buffers take
    integers; nothing takes a complex or bool tensor in place of another kind.
    """

    def kind(t: torch.Tensor) -> str:
        return "complex" if t.is_complex() else "float" if t.is_floating_point() else str(t.dtype)

    def family(t: torch.Tensor) -> str:
        k = kind(t)
        return "int" if k in ("torch.int8", "torch.uint8", "torch.int16", "torch.int32", "torch.int64") else k

    wrong = [k for k in expected if k in got and family(expected[k]) != family(got[k])]
    if wrong:
        shown = ", ".join(f"{k} checkpoint {got[k].dtype} vs model {expected[k].dtype}" for k in wrong[:8])
        raise CheckpointError(f"{what}: {len(wrong)} tensor(s) of the wrong dtype: {shown}")
    for k, v in got.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise CheckpointError(f"{what}: tensor {k} holds NaN or infinite values (a corrupted checkpoint?)")


def _common_hints(expected: Shapes, got: Shapes, config) -> list[str]:
    hints = []
    exp_sn = any(k.endswith("weight_orig") for k in expected)
    got_sn = any(k.endswith("weight_orig") for k in got)
    if exp_sn != got_sn:
        opt = "norm_G" if config.arch in ("spade", "asapnet") else "norm"
        hints.append(
            f"{opt}: the checkpoint {'has' if got_sn else 'has no'} spectral norm "
            f"(a 'spectral' prefix {'is' if got_sn else 'is not'} needed)"
        )
    exp_bn = any(k.endswith("running_mean") for k in expected)
    got_bn = any(k.endswith("running_mean") for k in got)
    if exp_bn != got_bn:
        hints.append(
            f"normalization: the checkpoint {'has' if got_bn else 'has no'} running statistics "
            f"({'batch/syncbatch' if got_bn else 'instance'} norm)"
        )
    return hints


def _input_hint(first: str, expected: Shapes, got: Shapes, config) -> list[str]:
    if first in expected and first in got and len(got[first]) > 1 and got[first][1] != expected[first][1]:
        return [
            f"label count: the checkpoint's first layer ({first}) takes {got[first][1]} channels, these options "
            f"give {expected[first][1]} (label_nc={config.label_nc}"
            + (
                f" + don't-care={int(config.contain_dontcare_label)}"
                if hasattr(config, "contain_dontcare_label")
                else ""
            )
            + " + instance-edge channel); check label_nc, contain_dontcare_label and the no_instance options"
        ]
    return []


def _spade_hints(expected: Shapes, got: Shapes, config) -> list[str]:
    hints = []
    if any(k.startswith("up_4.") for k in got) != any(k.startswith("up_4.") for k in expected):
        hints.append(
            "num_upsampling_layers: the checkpoint "
            + ("has" if any(k.startswith("up_4.") for k in got) else "has no")
            + " up_4 block ('most' has it; 'normal'/'more' do not)"
        )
    if "fc.weight" in got and len(got["fc.weight"]) != len(expected.get("fc.weight", ())):
        vae = len(got["fc.weight"]) == 2
        hints.append(f"use_vae: the checkpoint's fc is a {'Linear: use_vae=True' if vae else 'Conv2d: use_vae=False'}")
    elif "fc.weight" in got and len(got["fc.weight"]) == 2 and got["fc.weight"] != expected.get("fc.weight"):
        hints.append(
            f"crop_size/aspect_ratio/ngf/z_dim: the VAE fc maps {got['fc.weight'][1]} -> {got['fc.weight'][0]} "
            f"= 16*ngf*sh*sw; these options give {expected['fc.weight'][1]} -> {expected['fc.weight'][0]}"
        )
    key = "head_0.conv_0.weight_orig" if "head_0.conv_0.weight_orig" in got else "head_0.conv_0.weight"
    if key in got and got[key][0] != 16 * config.ngf:
        hints.append(f"ngf: the checkpoint's head is {got[key][0]} wide, i.e. ngf={got[key][0] // 16}")
    k = "head_0.norm_0.mlp_shared.0.weight"
    if k in got and k in expected:
        if got[k][2:] != expected[k][2:]:
            hints.append(f"norm_G kernel size: the checkpoint's SPADE convs are {got[k][2]}x{got[k][3]}")
        if got[k][0] != expected[k][0]:
            hints.append(f"spade_hidden: the checkpoint's SPADE hidden width is {got[k][0]}")
    return hints + _input_hint(
        "fc.weight" if config.use_vae is False else "head_0.norm_0.mlp_shared.0.weight", expected, got, config
    )


def _asapnet_hints(expected: Shapes, got: Shapes, config) -> list[str]:
    hints = []
    got_pad = "lowres_stream.model.1.0.weight" in got and "lowres_stream.model.0.0.weight" not in got
    exp_pad = "lowres_stream.model.1.0.weight" in expected and "lowres_stream.model.0.0.weight" not in expected
    if got_pad != exp_pad:
        hints.append(
            f"reflection_pad={got_pad}: the checkpoint's layer indices "
            f"{'are shifted by padding layers' if got_pad else 'have no padding layers'}"
        )
    blocks = lambda s: len({m.group(1) for k in s if (m := re.match(r"lowres_stream\.model\.(\d+)\.conv_block", k))})
    if blocks(got) != blocks(expected):
        hints.append(f"lr_depth: the checkpoint has {blocks(got)} low-res conv blocks")
    last = lambda s: max(
        ((int(m.group(1)), k) for k in s if (m := re.match(r"lowres_stream\.model\.(\d+)\.bias$", k))),
        default=(None, None),
    )[1]
    kg, ke = last(got), last(expected)
    if kg and ke and got[kg][0] != expected[ke][0]:
        hints.append(
            f"MLP size: the checkpoint predicts {got[kg][0]} parameters per tile, these options "
            f"{expected[ke][0]} (MLP channels {config.mlp_channels}); check hr_width, hr_depth, label_nc, "
            "contain_dontcare_label, lr_instance, and crop_size/aspect_ratio (tile size sets the coordinate channels)"
        )
    first = "lowres_stream.model.1.0.weight" if exp_pad else "lowres_stream.model.0.0.weight"
    return hints + _input_hint(first, expected, got, config)


def _pix2pixhd_hints(expected: Shapes, got: Shapes, config) -> list[str]:
    hints = []
    got_local = any(k.startswith("model1_1.") for k in got)
    if got_local != (config.netG == "local"):
        hints.append(
            f"netG: the checkpoint is a {'local enhancer' if got_local else 'global generator'} "
            f"(netG={'local' if got_local else 'global'})"
        )
    if (
        "model.1.weight" in got
        and "model.1.weight" in expected
        and got["model.1.weight"][0] != expected["model.1.weight"][0]
    ):
        hints.append(
            f"ngf: the checkpoint's first conv is {got['model.1.weight'][0]} wide (netG=local doubles ngf "
            "per enhancer for the global part)"
        )
    n_res = lambda s: len({m.group(1) for k in s if (m := re.match(r"model\.(\d+)\.conv_block", k))})
    if n_res(got) != n_res(expected):
        hints.append(f"n_blocks_global: the checkpoint has {n_res(got)} global residual blocks")
    return hints + _input_hint("model.1.weight", expected, got, config)


def _pix2pix_hints(expected: Shapes, got: Shapes, config) -> list[str]:
    """pix2pix / CycleGAN: which netG, norm, dropout, ngf and channel counts the checkpoint's keys show."""
    hints = []
    unet = lambda s: "model.model.0.weight" in s
    if unet(got) != config.unet:
        hints.append(f"netG: the checkpoint is a {'U-Net (unet_256/unet_128)' if unet(got) else 'ResNet generator'}")
    elif unet(got):
        levels = lambda s: max((k.split(".").count("model") - 1 for k in s), default=0)  # model.model.1.model.3...
        if levels(got) != levels(expected):
            hints.append(f"netG: the checkpoint's U-Net has {levels(got)} levels (unet_256: 8, unet_128: 7)")
    else:
        blocks = lambda s: len({m.group(1) for k in s if (m := re.match(r"model\.(\d+)\.conv_block", k))})
        if blocks(got) != blocks(expected):
            hints.append(f"netG: the checkpoint has {blocks(got)} residual blocks (resnet_{blocks(got)}blocks)")
        # with dropout a block's second conv is conv_block.6 (a 4-D weight); without, .6 is its norm
        conv6 = lambda s: any(re.match(r"model\.\d+\.conv_block\.6\.weight$", k) and len(s[k]) == 4 for k in s)
        if conv6(got) and not conv6(expected):
            hints.append("no_dropout: the checkpoint was trained with dropout (conv_block.6): pass no_dropout=False")
        elif conv6(expected) and not conv6(got) and any(".conv_block.5.weight" in k for k in got):
            hints.append("no_dropout: the checkpoint was trained without dropout (conv_block.5): pass no_dropout=True")
    first, norm = ("model.model.1.model.1", "model.model.1.model.2") if unet(got) else ("model.1", "model.2")
    got_norm = "batch" if f"{norm}.weight" in got else "instance" if f"{first}.bias" in got else "none"
    if f"{first}.weight" in got and got_norm != config.norm:
        why = {"batch": "batch-norm weights", "instance": "conv biases and no norm weights", "none": "no conv biases"}
        hints.append(f"norm: the checkpoint's layers have {why[got_norm]}: pass norm={got_norm!r}")
    head = "model.model.0.weight" if unet(got) else "model.1.weight"
    if head in got and head in expected and got[head] != expected[head]:
        hints.append(
            f"ngf/input_nc: the checkpoint's first conv maps {got[head][1]} -> {got[head][0]} channels, "
            f"these options {expected[head][1]} -> {expected[head][0]}"
        )
    return hints


# classic noise -> image families (classic.py): the first key of each family's checkpoints
_CLASSIC_FAMILY = {"main.0.weight": "dcgan", "label_emb.weight": "cgan", "l1.0.weight": "dcgan-pytorch-gan/infogan"}


def _classic_hints(expected: Shapes, got: Shapes, config) -> list[str]:
    family = lambda s: next((a for k, a in _CLASSIC_FAMILY.items() if k in s), None)
    if family(got) != family(expected):
        return [f"arch: the checkpoint's keys are those of {family(got) or 'no classic family'}, not {config.arch}"]

    def dim(k, i):  # (checkpoint, model) size of axis i of key k where they differ
        if k in got and k in expected and len(got[k]) > i and got[k][i] != expected[k][i]:
            return got[k][i], expected[k][i]

    c, hints = config, []
    if c.arch == "dcgan":
        if d := dim("main.0.weight", 0):
            hints.append(f"nz: the checkpoint's z has {d[0]} channels, these options {d[1]}")
        if d := dim("main.0.weight", 1):
            hints.append(f"ngf: the checkpoint's first layer is {d[0]} wide, i.e. ngf={d[0] // 8}")
        if d := dim("main.12.weight", 1):
            hints.append(f"nc: the checkpoint paints {d[0]} channels")
    elif c.arch == "cgan":
        if d := dim("label_emb.weight", 0):
            hints.append(f"n_classes: the checkpoint's label embedding has {d[0]} classes, these options {d[1]}")
        elif d := dim("model.0.weight", 1):
            latent = d[0] - c.n_classes
            hints.append(f"latent_dim: the checkpoint takes {latent} (+ {c.n_classes} classes), not {c.latent_dim}")
        if d := dim("model.11.weight", 0):
            hints.append(f"channels/img_size: the checkpoint paints {d[0]} values = channels * img_size^2, not {d[1]}")
    else:  # the PyTorch-GAN DCGAN and InfoGAN: same keys, InfoGAN's l1 also takes the class and code
        if d := dim("l1.0.weight", 1):
            given = f"latent_dim={c.latent_dim}" + (
                f" + n_classes={c.n_classes} + code_dim={c.code_dim}" if c.arch == "infogan" else ""
            )
            hints.append(
                f"latent_dim/n_classes/code_dim: the checkpoint's l1 takes {d[0]} inputs, these options give {d[1]} "
                f"({given}; an InfoGAN l1 takes latent_dim + n_classes + code_dim, a DCGAN's latent_dim)"
            )
        if d := dim("l1.0.weight", 0):
            side = round((d[0] / 128) ** 0.5)
            hints.append(f"img_size: the checkpoint's l1 makes a {side}^2 grid, i.e. img_size={4 * side}")
        if d := dim("conv_blocks.9.weight", 0):
            hints.append(f"channels: the checkpoint paints {d[0]} channels")
    return hints


def drop_stale_instance_norm_buffers(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Remove from `state` the running statistics of instance norms that keep none, warning once.

    Files saved by the 2018 pix2pix/CycleGAN code (all released CycleGAN models) hold
    `running_mean`, `running_var` and `num_batches_tracked` for every InstanceNorm2d; the official
    loader drops them too. Only those keys, with their shapes, are dropped; anything else stays
    for the strict check to report.
    """
    shapes = {"running_mean": lambda m: (m.num_features,), "running_var": lambda m: (m.num_features,),
              "num_batches_tracked": lambda m: ()}  # fmt: skip
    stale = [
        f"{name}.{buf}"
        for name, m in model.named_modules()
        # a layer with affine weights in the file is a batch norm there: left for the strict check
        if isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats and f"{name}.weight" not in state
        for buf, shape in shapes.items()
        if f"{name}.{buf}" in state and tuple(state[f"{name}.{buf}"].shape) == shape(m)
    ]
    for k in stale:
        del state[k]
    if stale:
        warnings.warn(
            f"{what}: ignored {len(stale)} InstanceNorm running-statistics buffers "
            f"({len({k.rpartition('.')[0] for k in stale})} layers): written by the 2018 official code, "
            "never used by instance norm without running statistics (the official loader drops them too)",
            stacklevel=3,
        )


_HINTS = {
    "spade": _spade_hints,
    "asapnet": _asapnet_hints,
    "pix2pixhd": _pix2pixhd_hints,
    "pix2pix": _pix2pix_hints,
    "cyclegan": _pix2pix_hints,
    **dict.fromkeys(("dcgan", "dcgan-pytorch-gan", "cgan", "infogan"), _classic_hints),
    "oasis": oasis_hints,  # best_EMA.pth: a bare state dict with netG's keys
    "sean": sean_hints,  # latest_net_G.pth: netG's state dict, the Zencoder's keys included
    "stylegan": stylegan_hints,  # a phase-end file's g_running, or a bare state dict
}
_READERS = {"stylegan": read_stylegan_checkpoint}  # the generator's tensors of a file; others: read_state_dict


def load_official(
    arch: str,
    weights: str | os.PathLike,
    *,
    encoder: str | os.PathLike | None = None,
    preset: str | None = None,
    **options: Any,
) -> nn.Module:
    """Build `arch` from official option names (over `preset`'s) and load an official generator checkpoint.

    `encoder` is the `latest_net_E.pth` of a SPADE VAE model; without it a VAE model samples z
    and has no `encode`. Returns the model in eval mode.
    """
    check_arch(arch)
    if preset is not None:
        p = get_preset(preset)
        if p.arch != arch:
            raise ConfigError(f"preset {preset!r} is a {p.arch} preset, not {arch}")
        options = {**p.options, **options}
    elif arch == "spade" and "num_upsampling_layers" not in options:
        warnings.warn(
            "SPADE 'normal' and 'more' upsampling have identical checkpoint keys; assuming 'normal'. "
            "Pass num_upsampling_layers (Cityscapes uses 'more') or a preset.",
            stacklevel=2,
        )
    config = make_config(arch, **options)
    if encoder is not None and not getattr(config, "use_vae", False):
        raise ConfigError("an encoder checkpoint was given but the options have use_vae=False")
    model = build(config)
    if arch == "munit":  # gen_*.pt: {'a': gen_a.state_dict(), 'b': gen_b.state_dict()}
        from .munit import munit_state_dict

        model.load_state_dict(munit_state_dict(_load_pth(weights), config, what=os.fspath(weights)), strict=True)
        return model.eval()
    state = _READERS.get(arch, read_state_dict)(weights)
    if arch in ("pix2pix", "cyclegan"):
        drop_stale_instance_norm_buffers(model, state, os.fspath(weights))
    expected = {k: v for k, v in state_shapes(model.state_dict()).items() if not k.startswith("encoder.")}
    got = state_shapes(state)
    check_keys(
        expected,
        got,
        what=f"{os.fspath(weights)} ({arch})",
        hints=_HINTS[arch](expected, got, config) + _common_hints(expected, got, config),
    )
    if getattr(model, "encoder", None) is not None:
        if encoder is None:
            model.encoder = None
        else:
            enc = read_state_dict(encoder)
            check_keys(
                state_shapes(model.encoder.state_dict()),
                state_shapes(enc),
                what=f"{os.fspath(encoder)} (SPADE encoder)",
                hints=_common_hints(state_shapes(model.encoder.state_dict()), state_shapes(enc), config)
                + ["ngf / norm_E / crop_size (crop_size < 256 drops layer6)"],
            )
            state.update({f"encoder.{k}": v for k, v in enc.items()})
    check_dtypes(model.state_dict(), state, what=os.fspath(weights))
    model.load_state_dict(state, strict=True)
    return model.eval()
