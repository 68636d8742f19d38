"""Label preparation shared by the generators, identical to the official `preprocess_input`.

Label ids become a one-hot map (the don't-care class, where a dataset has one, is the last
channel), and an instance-id map becomes a one-pixel-wide boundary map. Both run inside exported
graphs too, so they use only ops that trace to plain ONNX.
"""

from __future__ import annotations

import concurrent.futures
import functools

import torch
import torch.nn.functional as F

from ..errors import InputError

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def validating() -> bool:
    """Input checks read tensor values; skip them while tracing or compiling a graph."""
    return not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling())


def as_id_map(ids: torch.Tensor, what: str) -> torch.Tensor:
    """Check an id map is an integer (B, H, W) or (B, 1, H, W) tensor and return it as (B, 1, H, W)."""
    if not isinstance(ids, torch.Tensor):
        raise InputError(f"{what} must be a torch.Tensor, got {type(ids).__name__}")
    if ids.dtype not in _INT_DTYPES:
        raise InputError(
            f"{what} must hold integer ids (uint8/int16/int32/int64), got dtype {ids.dtype}; "
            "a float map usually means an image or a one-hot tensor was passed by mistake"
        )
    if ids.dim() == 3:
        ids = ids.unsqueeze(1)
    if ids.dim() != 4 or ids.shape[1] != 1:
        raise InputError(f"{what} must have shape (B, H, W) or (B, 1, H, W), got {tuple(ids.shape)}")
    return ids


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 1, H, W) integer ids -> (B, num_classes, H, W) float one-hot, as the official scatter_.

    Built as a comparison against the class range, not a scatter: the same values, and a graph
    that every runtime takes when it is exported.
    """
    labels = as_id_map(labels, "labels")
    if validating():
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            bad = hi if hi >= num_classes else lo
            raise InputError(
                f"label id {bad} is out of range: this model takes ids 0..{num_classes - 1} "
                f"({num_classes} classes including any don't-care class)"
            )
    classes = torch.arange(num_classes, device=labels.device).view(1, -1, 1, 1)
    return (labels.long() == classes).to(dtype)


def label_lut(label_ids: tuple[int, ...], device=None) -> torch.Tensor:
    """Dataset id -> class channel lookup table; ids that are not the model's classes map to -1."""
    lut = [-1] * (max(label_ids) + 1)
    for channel, i in enumerate(label_ids):
        lut[i] = channel
    return torch.tensor(lut, dtype=torch.long, device=device)  # from a list: a constant in a traced graph


def to_channels(labels: torch.Tensor, label_ids: tuple[int, ...] | None) -> torch.Tensor:
    """Map dataset label ids to class-channel indices for a model with `label_ids` (identity if None)."""
    labels = as_id_map(labels, "labels")
    if label_ids is None:
        return labels
    lut = label_lut(label_ids, labels.device)
    if validating():
        ids = torch.unique(labels)
        bad = ids[(ids < 0) | (ids >= len(lut))]
        bad = bad if len(bad) else ids[lut[ids] < 0]
        if len(bad):
            raise InputError(
                f"label id {int(bad[0])} is not one of this model's classes; it takes the ids {list(label_ids)}"
            )
    return lut[labels.long().clamp(0, len(lut) - 1)]


def instance_edges(instance: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, 1, H, W) instance ids -> (B, 1, H, W) float map, 1 on both sides of every id change.

    The official map, built from padded differences instead of in-place writes: the same values,
    and a graph that exports.
    """
    t = as_id_map(instance, "instance")
    # int32, not bool or float: an fp16 conversion of the graph must not leave a mixed-type comparison
    dx = (t[:, :, :, 1:] != t[:, :, :, :-1]).int()
    dy = (t[:, :, 1:, :] != t[:, :, :-1, :]).int()
    edge = F.pad(dx, (1, 0)) + F.pad(dx, (0, 1)) + F.pad(dy, (0, 0, 1, 0)) + F.pad(dy, (0, 0, 0, 1))
    return (edge > 0).to(dtype)


def check_semantics(x: torch.Tensor, channels: int, like: torch.Tensor, what: str = "semantics") -> None:
    """Check the float input of a generator's forward: 4-D, right channel count, dtype and device
    of the model's parameters (`like`), finite."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(
            f"{what} must be a float tensor (the output of model.prepare), got dtype {x.dtype}; "
            "pass integer label ids to model.prepare(labels) first"
        )
    if x.dim() != 4 or x.shape[1] != channels:
        raise InputError(f"{what} must have shape (B, {channels}, H, W) for this model, got {tuple(x.shape)}")
    if x.dtype != like.dtype or x.device != like.device:
        raise InputError(f"{what} is {x.dtype} on {x.device} but the model is {like.dtype} on {like.device}")
    if validating() and not bool(torch.isfinite(x).all()):
        raise InputError(f"{what} contains NaN or infinite values")


def check_divisible(h: int, w: int, factor: int, why: str) -> None:
    if h % factor or w % factor:
        raise InputError(
            f"spatial size {h}x{w} is not supported: height and width must be multiples of {factor} ({why})"
        )


NOISE_SEED = 20261123


def draw_noise(
    batch: int, channels: int, height: int, width: int, octaves: bool = False, generator=None, device=None
) -> torch.Tensor:
    """(batch, channels, H, W) per-pixel noise, standard normal.

    With `octaves`, channel i is white noise drawn at 1/2**i of the size, enlarged bilinearly and
    standardized: grain at 1, 2, 4, 8... pixels. A per-pixel network (ASAPNet's MLPs) cannot
    correlate neighbouring pixels itself, so white noise would give it salt-and-pepper only.
    """
    if not octaves:
        return torch.randn(batch, channels, height, width, generator=generator, device=device)
    maps = []
    for i in range(channels):
        s = 2**i
        n = torch.randn(batch, 1, -(-height // s), -(-width // s), generator=generator, device=device)
        if s > 1:
            n = F.interpolate(n, size=(height, width), mode="bilinear", align_corners=False)
        maps.append((n - n.mean((2, 3), keepdim=True)) / n.std((2, 3), keepdim=True).clamp_min(1e-6))
    return torch.cat(maps, 1)


def texture_noise(
    channels: int, height: int, width: int, octaves: bool = False, dtype=torch.float32, device=None
) -> torch.Tensor:
    """The fixed (1, channels, H, W) noise map a `noise_nc` model paints with at inference.

    Fixed, so a frame paints the same every time (no flicker in the live demo) and an exported graph
    holds it as a constant; training feeds fresh noise every step instead (`with_noise`).
    """
    return _fixed_noise(channels, height, width, octaves).to(device=device, dtype=dtype, copy=True)


def _fixed_noise(channels: int, height: int, width: int, octaves: bool = False) -> torch.Tensor:
    if torch.jit.is_tracing():
        # the tracer would record the drawing (and fail on the generator); its state is per
        # thread, so draw the map where it does not look: the graph gets it as a constant
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(_draw_fixed_noise, channels, height, width, octaves).result()
    return _draw_fixed_noise(channels, height, width, octaves)


@functools.lru_cache(maxsize=8)
def _draw_fixed_noise(channels: int, height: int, width: int, octaves: bool = False) -> torch.Tensor:
    # drawn once per size: eager inference would otherwise redraw it every frame (read-only: copy it)
    g = torch.Generator().manual_seed(NOISE_SEED)
    return draw_noise(1, channels, height, width, octaves, generator=g)


def noise_map(
    semantics: torch.Tensor, noise: torch.Tensor | None, channels: int, octaves: bool = False
) -> torch.Tensor | None:
    """The per-pixel noise (OASIS's 3D noise) a `noise_nc` model paints with: `noise` (B, channels,
    H, W) when given (checked), else the fixed map, (1, channels, H, W) for the whole batch (so an
    exported graph keeps it, and what is computed from it alone, a constant); None for a model
    without noise. A generator
    with no noise input has no texture source inside a region of one label (a conv net maps a
    constant input to a constant output away from its borders), and the procedural landscapes are
    exactly that: flat label regions over random textures."""
    if channels == 0:
        if noise is not None:
            raise InputError("noise was given but this model takes none (noise_nc=0)")
        return None
    b, _, h, w = semantics.shape
    if noise is None:
        return _fixed_noise(channels, h, w, octaves).to(semantics.device, semantics.dtype)
    if validating() and (noise.shape != (b, channels, h, w) or noise.dtype != semantics.dtype):
        raise InputError(
            f"noise must be {semantics.dtype} of shape ({b}, {channels}, {h}, {w}), "
            f"got {tuple(noise.shape)} {noise.dtype}"
        )
    return noise


def with_noise(
    semantics: torch.Tensor, noise: torch.Tensor | None, channels: int, octaves: bool = False
) -> torch.Tensor:
    """The semantic map with `noise_map`'s channels appended (unchanged for a model without noise)."""
    noise = noise_map(semantics, noise, channels, octaves)
    return semantics if noise is None else torch.cat([semantics, noise.expand(semantics.shape[0], -1, -1, -1)], 1)


def prepare_semantics(
    labels: torch.Tensor,
    instance: torch.Tensor | None,
    num_classes: int,
    use_instance: bool,
    dtype: torch.dtype = torch.float32,
    label_ids: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """One-hot labels, plus the instance-edge channel when the model takes one (official order)."""
    semantics = one_hot(to_channels(labels, label_ids), num_classes, dtype)
    if not use_instance:
        if instance is not None:
            raise InputError("an instance map was given but this model takes none (no_instance)")
        return semantics
    if instance is None:
        raise InputError(
            "this model needs an instance map (instance ids, same size as labels); "
            "pass labels again if there are no instances"
        )
    edges = instance_edges(instance, dtype)
    if edges.shape[0] != semantics.shape[0] or edges.shape[2:] != semantics.shape[2:]:
        raise InputError(f"instance map shape {tuple(instance.shape)} does not match labels {tuple(labels.shape)}")
    return torch.cat([semantics, edges], dim=1)


def label_map_signature(config, instance: bool, multiple: int, z_dim: int | None = None):
    """The signature of a label-map generator: label ids (+ instance ids) (+ a latent z) -> RGB.

    With a latent the size is the training crop's (the latent grid is fixed); otherwise any
    multiple of `multiple`, the training crop being the default.
    """
    from ..signature import Input, Signature

    ids = tuple(config.label_ids) if config.label_ids is not None else None
    inputs = [Input("labels", "labels", classes=config.num_classes, ids=ids)]
    inputs += [Input("instance", "instance")] if instance else []
    inputs += [Input("z", "latent", size=z_dim)] if z_dim else []
    crop = getattr(config, "crop_size", None)
    size = (round(crop / getattr(config, "aspect_ratio", 1.0)), crop) if crop else None
    if z_dim:
        return Signature(tuple(inputs), spatial="fixed", size=size)
    return Signature(tuple(inputs), spatial="multiple", multiple=multiple, size=size)
