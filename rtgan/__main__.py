"""rtgan's overview command.

    python -m rtgan list          # presets, bundled models, cached engines with their sizes
    python -m rtgan cache         # where the engine cache is and what it holds
    python -m rtgan cache clean   # remove every cached engine (each is rebuilt on next use)

The other commands: python -m rtgan.demo | rtgan.generate | rtgan.export | rtgan.bench | rtgan.train
(also installed as rtgan-demo, rtgan-generate, rtgan-export, rtgan-bench, rtgan-train).
"""

from __future__ import annotations

import sys

from . import cache, catalog, presets, weights
from .utils import cli

PROG = "python -m rtgan"


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(f"\n{title}")
        for row in [header, *rows]:
            print("  " + "  ".join(f"{c:<22}" for c in row))
        return
    table = Table(title=title, title_justify="left")
    for h in header:
        table.add_column(h, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def list_all() -> int:
    rows = []
    for name in weights.BUNDLED:
        try:
            ref = catalog.resolve(name)
        except Exception as e:  # a partial install: say so instead of failing the whole listing
            rows.append([name, "-", "-", "-", str(e)])
            continue
        meta, (h, w) = ref.meta(), ref.natural_size()
        steps = str((meta.get("trained") or {}).get("steps", "-"))
        size = sum(p.stat().st_size for p in ref.path.iterdir() if p.is_file())
        default = " (default)" if name == weights.DEFAULT else ""
        rows.append([name + default, meta["arch"], f"{h}x{w}", steps, _mb(size)])
    _table("bundled models (--model NAME)", ["name", "arch", "size", "steps", "files"], rows)
    rows = [[p.name, p.arch, p.description] for p in presets.PRESETS.values()]
    _table("presets (--preset NAME)", ["name", "arch", "description"], rows)
    show_cache()
    return 0


def show_cache() -> int:
    found = cache.entries()
    if not found:
        print(f"no cached engines in {cache.root()}")
        return 0
    rows = [[e.path.name, e.describe, _mb(e.bytes)] for e in found]
    total = sum(e.bytes for e in found)
    _table(
        f"cached engines in {cache.root()} ({len(found)}, {_mb(total)}; python -m rtgan cache clean removes them)",
        ["directory", "engine", "size"],
        rows,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(PROG, __doc__)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("list", help="presets, bundled models and cached engines")
    c = sub.add_parser("cache", help="the engine cache: show it, or `cache clean`")
    c.add_argument("action", nargs="?", choices=["show", "clean"], default="show", help="show or clean")
    args = ap.parse_args(argv)

    def body() -> int:
        if args.command == "list":
            return list_all()
        if args.command == "cache" and args.action == "clean":
            n, freed = cache.clean()
            print(f"removed {n} cached engine(s) from {cache.root()}, {_mb(freed)} freed")
            return 0
        if args.command == "cache":
            return show_cache()
        ap.print_help()
        return 0

    return cli.run(body, PROG)


if __name__ == "__main__":
    sys.exit(main())
