"""The one look-up for every table of names: activations, losses, optimizers, schedules,
initialisers, data sets and array backends.

Each table is a plain ``dict`` from a short name to what it names, declared in the module
that holds the things themselves; :func:`lookup` turns an unknown name into the same
one-line error everywhere: ``unknown activation 'swish'; expected one of sigmoid, tanh, ...``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["lookup"]

T = TypeVar("T")


def lookup(
    table: Mapping[str, T],
    name: Any,
    kind: str,
    *,
    alternatives: str = "",
    error: type[ValueError] = ValueError,
) -> T:
    """``table[name]``, or one ``error`` naming the unknown ``kind`` and the known names.

    Parameters
    ----------
    table : mapping of str
    name : object
        Anything the user passed (an unhashable value is reported like an unknown name).
    kind : str
        What the table holds, in the singular: ``"activation"``, ``"data set"``...
    alternatives : str
        Appended to the list of names (``" or a .csv path"``).
    error : ValueError subclass
    """
    try:
        return table[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(name, list(table), n=1) if isinstance(name, str) else []
        guess = f" (did you mean {close[0]!r}?)" if close else ""  # ('mnsit': as click's 'trian')
        raise error(
            f"unknown {kind} {name!r}{guess}; expected one of {', '.join(table)}{alternatives}"
        ) from None
