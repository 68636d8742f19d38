"""A generator's signature: its inputs, its output and the sizes it can paint, declared in one place.

A model declares it (`model.signature()`); export writes it into the artifact's manifest, and the
engine checks every call against it, so a new family or a user's own generator needs no code in
export or the engine. Torch-free: the engine reads it back from JSON.

Input kinds (`kind`), each with the dtype and per-sample shape the engine accepts:

| kind       | dtype   | per-sample shape | meaning                                                     |
|------------|---------|------------------|-------------------------------------------------------------|
| `labels`   | int32   | (H, W)           | semantic label ids, one of `ids`                            |
| `instance` | int32   | (H, W)           | instance ids (edges are derived in the graph)               |
| `image`    | uint8   | (H, W, 3)        | an RGB image                                                |
| `latent`   | float32 | (size,)          | a latent vector z; sampled N(0, I) when not given           |
| `class`    | int32   | ()               | a class id in [0, classes); drawn uniformly when not given  |
| `codes`    | float32 | (size,)          | continuous codes (InfoGAN); sampled U(-1, 1) when not given |
| `styles`   | float32 | (classes, size)  | a style code per semantic channel (SEAN); sampled U(-1, 1)  |
| `scalar`   | float32 | ()               | a number in [low, high] (StyleGAN's ψ); `default` when absent |
| `regions`  | int32   | (H, W)           | region ids in [0, classes) (OASIS's noise regions); 0s absent |
| `latents`  | float32 | (classes, size)  | a latent per region (OASIS's z_regions); sampled N(0, I)    |

A `scalar` input declares its `default` (the value every sample takes when it is not given) and may
declare `low` / `high` bounds, which the engine enforces; `Engine.run` takes a Python float (one
value for the batch) or a (B,) array.

Inputs of a label-map generator other than `labels`, `instance` and `z` are passed to
`Engine.run` by name, as those of a generator without labels.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import ConfigError

KINDS = {"labels": "int32", "instance": "int32", "image": "uint8", "latent": "float32", "class": "int32",
         "codes": "float32", "styles": "float32", "scalar": "float32", "regions": "int32",
         "latents": "float32"}  # fmt: skip
SPATIAL = {"labels", "instance", "image", "regions"}
SIZED = ("latent", "codes", "styles", "latents")  # kinds with a vector length
COUNTED = ("class", "labels", "styles", "regions", "latents")  # kinds with a count of classes


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclasses.dataclass(frozen=True)
class Input:
    name: str  # the graph input's name
    kind: str  # one of KINDS
    size: int | None = None  # latent / codes / styles / latents: the vector length
    classes: int | None = None  # class, regions: how many ids; styles, latents: how many vectors
    ids: tuple[int, ...] | None = None  # labels: the ids the model takes (None: 0..classes-1)
    default: float | None = None  # scalar: the value when not given (required)
    low: float | None = None  # scalar: the smallest value taken (None: unbounded)
    high: float | None = None  # scalar: the largest value taken (None: unbounded)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"input {self.name!r}: unknown kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.kind in SIZED and not (isinstance(self.size, int) and self.size > 0):
            raise ConfigError(f"input {self.name!r} ({self.kind}) needs a positive size, got {self.size!r}")
        if (
            self.kind in COUNTED
            and (self.ids is None or self.kind not in ("labels", "class"))
            and not (isinstance(self.classes, int) and not isinstance(self.classes, bool) and self.classes > 0)
        ):
            raise ConfigError(
                f"input {self.name!r} ({self.kind}) needs classes > 0" + " or ids" * (self.kind in ("labels", "class"))
            )
        bounds = {"default": self.default, "low": self.low, "high": self.high}
        if self.kind != "scalar":
            given = [k for k, v in bounds.items() if v is not None]
            if given:
                raise ConfigError(f"input {self.name!r} ({self.kind}): {', '.join(given)} apply to scalar inputs only")
            return
        if not _number(self.default):
            raise ConfigError(
                f"input {self.name!r} (scalar) needs a finite number as its default, got {self.default!r}"
            )
        for k in ("low", "high"):
            if bounds[k] is not None and not _number(bounds[k]):
                raise ConfigError(
                    f"input {self.name!r} (scalar): {k} must be a finite number or None, got {bounds[k]!r}"
                )
            object.__setattr__(self, k, None if bounds[k] is None else float(bounds[k]))
        object.__setattr__(self, "default", float(self.default))
        lo = -math.inf if self.low is None else self.low
        hi = math.inf if self.high is None else self.high
        if not lo <= self.default <= hi:
            raise ConfigError(f"input {self.name!r} (scalar): default {self.default} is outside [{lo}, {hi}]")

    @property
    def dtype(self) -> str:
        return KINDS[self.kind]

    @property
    def spatial(self) -> bool:
        return self.kind in SPATIAL

    def shape(self, height: int | None, width: int | None) -> list:
        """The per-batch shape, with "batch" for the dynamic dimension."""
        per = {"labels": [height, width], "instance": [height, width], "image": [height, width, 3],
               "latent": [self.size], "codes": [self.size], "class": [],
               "styles": [self.classes, self.size], "scalar": [], "regions": [height, width],
               "latents": [self.classes, self.size]}[self.kind]  # fmt: skip
        return ["batch", *per]


@dataclasses.dataclass(frozen=True)
class Signature:
    inputs: tuple[Input, ...]
    channels: int = 3  # output image channels (1: grayscale, returned as (H, W, 1) uint8)
    # spatial rule: "fixed" (only `size`), "multiple" (multiples of `multiple`), "any"
    spatial: str = "fixed"
    size: tuple[int, int] | None = None  # "fixed": the one size; otherwise the default size
    multiple: int = 1

    def __post_init__(self):
        names = [i.name for i in self.inputs]
        if len(set(names)) != len(names) or not names:
            raise ConfigError(f"a signature needs inputs with distinct names, got {names}")
        if self.spatial not in ("fixed", "multiple", "any"):
            raise ConfigError(f"spatial must be fixed, multiple or any, got {self.spatial!r}")
        if self.spatial == "fixed" and self.size is None:
            raise ConfigError("a fixed-size signature needs its size")
        if self.channels not in (1, 3):
            raise ConfigError(f"output channels must be 1 or 3, got {self.channels}")

    def check_size(self, height: int, width: int) -> None:
        from .errors import InputError

        if self.spatial == "fixed" and (height, width) != tuple(self.size):
            raise InputError(f"this generator paints {self.size[0]}x{self.size[1]} only, not {height}x{width}")
        if self.spatial == "multiple" and (height % self.multiple or width % self.multiple):
            raise InputError(f"height and width must be multiples of {self.multiple}, got {height}x{width}")

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def describe(self) -> str:
        """One line for tables and logs: 'labels (35) + instance → RGB 256×512 (multiples of 64)'."""

        def one(i: Input) -> str:
            if i.kind == "labels":
                return f"labels ({len(i.ids) if i.ids is not None else i.classes})"
            if i.kind in ("instance", "image"):
                return i.kind
            if i.kind in ("styles", "latents"):
                return f"{i.name} ({i.classes}×{i.size})"
            if i.kind == "regions":
                return f"{i.name} ({i.classes} regions)"
            if i.kind == "scalar":
                lo, hi = ("" if v is None else f"{v:g}" for v in (i.low, i.high))
                return f"{i.name} ({lo}..{hi}, default {i.default:g})"
            return f"{i.name} ({i.size if i.kind != 'class' else i.classes})"

        out = "RGB" if self.channels == 3 else "gray"
        if self.size is not None:
            out += f" {self.size[0]}×{self.size[1]}"
        rule = {"fixed": "", "multiple": f" (multiples of {self.multiple})", "any": " (any size)"}[self.spatial]
        return " + ".join(one(i) for i in self.inputs) + f" → {out}{rule}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["inputs"] = [{k: v for k, v in i.items() if v is not None} for i in d["inputs"]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Signature":
        """Read one back from a manifest; a wrong field or type is a ConfigError naming it."""
        if not isinstance(d, dict) or not isinstance(d.get("inputs"), list):
            raise ConfigError(f"a signature is an object with a list of inputs, got {d!r:.80}")
        try:
            inputs = []
            for i in d["inputs"]:
                i = dict(i)
                if i.get("ids") is not None:
                    i["ids"] = tuple(int(v) for v in i["ids"])
                inputs.append(Input(**i))
            rest = {k: v for k, v in d.items() if k != "inputs"}
            if rest.get("size") is not None:
                rest["size"] = tuple(int(v) for v in rest["size"])
            return cls(inputs=tuple(inputs), **rest)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"malformed signature: {e}") from None
