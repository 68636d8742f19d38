"""Looking a name up in a table, with a 'did you mean' hint when it is not there."""

from __future__ import annotations

import difflib
from typing import Mapping, TypeVar

from ..errors import ConfigError

T = TypeVar("T")


def lookup(name: str, table: Mapping[str, T], what: str) -> T:
    if name not in table:
        hint = difflib.get_close_matches(str(name), list(table), 1)
        raise ConfigError(
            f"unknown {what} {name!r}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; choose one of {', '.join(table)}"
        )
    return table[name]
