"""The one command-line convention of every rtgan command, and its shared parsing helpers.

- Options are hyphenated (`--batch-size`); the underscore spelling (`--batch_size`, the official
  option names' style) is accepted as an alias, and so is the reverse.
- `--help` shows every default.
- Sizes are `--size HxW` (`--height/--width` are accepted as aliases), model options `--set K=V ...`.
- Every argument is checked before any work; errors are one line naming the fix (exit 2), Ctrl-C
  prints one line (exit 130).

This module is torch-free: a misspelled argument must be reported before PyTorch is imported.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from ..errors import ConfigError, RtganError


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Defaults in the help, and only the canonical spelling of an option (not its aliases)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" not in text
            and not any(action.default is v for v in (None, False, argparse.SUPPRESS))  # 0 is a default
            and action.default != []
            and action.option_strings
            and action.nargs != 0
        ):
            text += " (default: %(default)s)"
        return text

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        shorts = [s for s in action.option_strings if not s.startswith("--")]
        canonical = ", ".join(shorts + [s for s in action.option_strings if s.startswith("--")][:1])
        if action.nargs == 0:
            return canonical
        return f"{canonical} {self._format_args(action, self._get_default_metavar_for_optional(action))}"


class Parser(argparse.ArgumentParser):
    """argparse with rtgan's convention (module docstring). Build it, then `parse_args` as usual."""

    def __init__(self, prog: str, description: str | None = None, **kwargs: Any):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(prog=prog, description=description, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        self._add_spelling_aliases()
        return super().parse_known_args(args, namespace)

    def _add_spelling_aliases(self) -> None:
        for action in self._actions:
            if not action.help and action.help is not argparse.SUPPRESS and action.option_strings:
                action.help = action.dest.replace("_", " ")
            spellings = []
            for s in action.option_strings:
                if s.startswith("--"):
                    hyphen = "--" + s[2:].replace("_", "-")
                    spellings += [hyphen, "--" + s[2:].replace("-", "_")]
            # the hyphenated spelling first: it is the one --help shows
            ordered = [s for s in action.option_strings if not s.startswith("--")]
            for s in [s for s in spellings if "_" not in s[2:]] + list(action.option_strings) + spellings:
                if s not in ordered and (s in action.option_strings or s not in self._option_string_actions):
                    ordered.append(s)
            for s in ordered:
                self._option_string_actions.setdefault(s, action)
            action.option_strings[:] = [s for s in ordered if not s.startswith("--")] + [
                s for s in ordered if s.startswith("--")
            ]

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run(main: Callable[[], int | None], prog: str) -> int:
    """Run a command's body: a typed rtgan error is one line (exit 2), Ctrl-C is one line (exit 130)."""
    try:
        return main() or 0
    except RtganError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def parse_value(text: str) -> Any:
    """'4' -> 4, 'true'/'True' -> True, 'none' -> None, anything else stays a string."""
    named = {"true": True, "false": False, "none": None, "null": None}
    if text.lower() in named:
        return named[text.lower()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_size(text: str) -> tuple[int, int]:
    """'256x512' -> (256, 512): height x width, as every rtgan command writes sizes."""
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(f"a size is HEIGHTxWIDTH, e.g. 256x512; got {text!r}") from None
    if h <= 0 or w <= 0:
        raise ConfigError(f"a size must be positive, got {text!r}")
    return h, w


def _size_type(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_size(parser: argparse.ArgumentParser, default: str | None = None, help: str = "image size") -> None:
    """`--size HxW`, with `--height`/`--width` as aliases; read it back with `size_of(args)`."""
    # the default is applied by size_of, so that --height/--width can override it
    shown = f"{help} (default: {default})" if default else help
    parser.add_argument("--size", type=_size_type, metavar="HxW", help=shown)
    parser.add_argument("--height", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, help=argparse.SUPPRESS)
    parser.set_defaults(size_default=default)


def size_of(args: argparse.Namespace) -> tuple[int, int] | None:
    """The size given as `--size HxW` or `--height H --width W` (None when neither)."""
    if args.height is not None or args.width is not None:
        if args.height is None or args.width is None:
            raise ConfigError("give both --height and --width, or --size HxW")
        if args.size is not None and tuple(args.size) != (args.height, args.width):
            raise ConfigError(f"--size {args.size[0]}x{args.size[1]} disagrees with --height/--width")
        return parse_size(f"{args.height}x{args.width}")
    if args.size is not None:
        return tuple(args.size)
    default = getattr(args, "size_default", None)
    return parse_size(default) if default else None


def add_set(parser: argparse.ArgumentParser, help: str = "model options by their official names") -> None:
    """`--set a=1 b=2` (and repeatable: `--set a=1 --set b=2`); read it back with `parse_sets`."""
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help=help)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """['ngf=4', 'use_vae=true'] -> {'ngf': 4, 'use_vae': True}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key] = parse_value(value)
    return out
