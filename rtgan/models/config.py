"""Frozen dataclass configs whose field names are the official command-line option names.

Users arrive with the official option vocabulary (`label_nc`, `norm_G`, `no_instance`, ...), so
the configs keep it instead of translating it. Values the official code derives from other
options (`semantic_nc`, ...) are properties; passing one to `from_options` checks it instead of
silently disagreeing.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, ClassVar

from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    arch: ClassVar[str] = ""
    # Official option names that are functions of the fields: accepted and checked, not stored.
    derived: ClassVar[tuple[str, ...]] = ()
    # Official option names accepted only with the one value this implementation supports.
    fixed: ClassVar[dict[str, Any]] = {}

    # Dataset ids of the class channels, for a model trained on a subset of a larger id space
    # (the bundled landscape models take COCO-Stuff ids). None: the ids are the channel indices.
    # Not an official option; the default keeps official configs unchanged.
    label_ids: tuple[int, ...] | None = None

    @classmethod
    def from_options(cls, **options: Any) -> "GeneratorConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        derived = {k: options.pop(k) for k in list(options) if k in cls.derived}
        for k in [k for k in options if k in cls.fixed]:
            v = options.pop(k)
            if v != cls.fixed[k]:
                raise ConfigError(f"{cls.arch}: option {k}={v!r} is not supported (only {cls.fixed[k]!r})")
        unknown = sorted(set(options) - fields)
        if unknown:
            known = sorted(fields | set(cls.derived) | set(cls.fixed))
            hints = [
                f"{k!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, known, 1)) else "")
                for k in unknown
            ]
            raise ConfigError(f"unknown {cls.arch} option(s): {', '.join(hints)}; valid: {', '.join(known)}")
        hints = typing.get_type_hints(cls)
        if isinstance(options.get("label_ids"), list):  # from JSON
            options["label_ids"] = tuple(options["label_ids"])
        for k, v in options.items():
            cls._check_type(k, v, hints[k])
        config = cls(**options)
        for k, v in derived.items():
            if getattr(config, k) != v:
                raise ConfigError(
                    f"{cls.arch}: option {k}={v!r} disagrees with the other options, which give "
                    f"{k}={getattr(config, k)!r}"
                )
        return config

    @classmethod
    def _check_type(cls, name: str, value: Any, hint: Any) -> None:
        # a union's members, else the one type (a bare tuple[int, ...] is one type, not a union of its args)
        allowed = (hint,) if typing.get_origin(hint) is tuple else typing.get_args(hint) or (hint,)
        ok = any(
            (t is type(None) and value is None)
            or (t is bool and isinstance(value, bool))
            or (t is int and isinstance(value, int) and not isinstance(value, bool))
            or (t is float and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (t is str and isinstance(value, str))
            or (
                typing.get_origin(t) is tuple
                and isinstance(value, tuple)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            )
            for t in allowed
        )
        if not ok:
            names = " or ".join("None" if t is type(None) else getattr(t, "__name__", str(t)) for t in allowed)
            raise ConfigError(f"{cls.arch}: option {name} must be {names}, got {value!r} ({type(value).__name__})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "GeneratorConfig":
        return dataclasses.replace(self, **changes)

    def _check_label_ids(self) -> None:
        if self.label_ids is None:
            return
        ids = self.label_ids
        self._require(
            len(ids) == self.num_classes and len(set(ids)) == len(ids) and min(ids) >= 0,
            f"label_ids must hold {self.num_classes} distinct non-negative ids (one per class channel), got {ids}",
        )

    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(f"{self.arch}: {message}")
