"""Numbers as text: the one formatter behind ``backprop explain`` and ``backprop playground``.

JavaScript and Python round ties and choose exponents differently (``(1e21).toString()``,
``toFixed`` on binary halves), so the playground's page formats nothing itself: the server
sends every number as its exact value *and* the text made here, and ``explain`` prints the
same text. Four styles:

=========  ======================================  ================  =============
style      rule                                    example           used for
=========  ======================================  ================  =============
``fixed``  6 decimals; ``6e`` outside [1e-2, 1e6)  ``0.593270``      activations
``sig``    8 significant digits (``#.8g``)         ``0.074392790``   gradients, new
                                                                     weights
``short``  up to 8 significant digits (``.8g``)    ``0.05``          given numbers
``loss``   10 significant digits (``#.10g``)       ``0.3273591340``  the loss
=========  ======================================  ================  =============

JSON has no NaN or infinity: :func:`number` gives a non-finite value as an explicit
``state`` (``"nan"``, ``"inf"``, ``"-inf"``) with ``value`` None, never a bare NaN.

Beside the numbers, the words around them: :func:`plural`, and :func:`printable` for a
user's names (class and file names) shown on a terminal.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shlex
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "STYLES", "command", "fixed", "index", "loss", "number", "numbers", "packed", "plural",
    "printable", "short", "sig", "state", "toml_string",
]  # fmt: skip


def _non_finite_named(style: Callable[[float], str]) -> Callable[[float], str]:
    """``style``, with NaN and the infinities written as :func:`number` writes them (``NaN``,
    ``+inf``, ``-inf``): a formula showed ``(0.5)(nan) = nan`` beside a table's ``NaN``."""

    @functools.wraps(style)
    def text(v: float) -> str:
        return style(v) if math.isfinite(v) else _NON_FINITE_TEXT[state(v)]

    return text


_NON_FINITE_TEXT = {"nan": "NaN", "inf": "+inf", "-inf": "-inf"}


@_non_finite_named
def fixed(v: float) -> str:
    """Six decimals, or six after the point in scientific notation below ``1e-2`` and from
    ``1e6``: at least 5 significant digits (``0.001540`` had 4, and a product of such
    factors missed the printed product in its fourth), and no 308 digits for a net input of
    3.5e307."""
    return f"{v:.6f}" if 1e-2 <= abs(v) < 1e6 or v == 0 else f"{v:.6e}"


@_non_finite_named
def sig(v: float) -> str:
    """Eight significant digits, trailing zeros kept (``0.074392790``, not ``0.07439279``
    beside ``0.00046887875``): enough to compare a gradient with its finite difference. No
    bare point (``12345678``, not ``12345678.``), and 0 for a negative zero."""
    return f"{v + 0.0:#.8g}".removesuffix(".")


def index(*ks: int, separated: bool = False) -> str:
    """0-based indices as the tutorial writes them, 1-based: ``(0, 1)`` -> ``"12"``, or
    ``"1,2"`` when ``separated`` (a layer of more than 9 units: ``w111`` would not say which
    of w1,11 and w11,1)."""
    return ("," if separated else "").join(str(k + 1) for k in ks)


def plural(n: int, noun: str) -> str:
    """``"1 epoch"``, ``"3 epochs"``: a count and its noun, for messages."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def printable(text: object) -> str:
    """``text`` with its control characters written as escapes (``\\x1b``, ``\\n``): a
    class name or a file name holding an escape sequence reached the terminal raw (a label
    ``\\x1b[31m`` coloured everything after it), and a newline broke a table's row."""
    return "".join(
        c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) == "Cc" else c
        for c in str(text)
    )


def command(*words: object) -> str:
    """A command line to paste into a shell: the ``words`` joined, each quoted where the
    shell would split or read it (``backprop train --resume 'my runs/toy (v1)'``: unquoted,
    a suggested command was a syntax error), a path that starts with ``-`` written
    ``./-run`` (the command would read it as options), control characters escaped
    (:func:`printable`)."""

    def word(w: object) -> str:
        text = str(w)
        if isinstance(w, os.PathLike) and text.startswith("-"):
            text = f"./{text}"
        return shlex.quote(text)

    return printable(" ".join(word(w) for w in words))


def toml_string(text: str, ascii_only: bool = False) -> str:
    """``text`` as a TOML basic string (``ascii_only``: every other character escaped too):
    JSON's escapes are TOML's, but JSON leaves DEL (``\\x7f``) as it is, which TOML refuses
    (a CSV target named so made a config.toml that ``--config`` could not read)."""
    return json.dumps(text, ensure_ascii=ascii_only).replace("\x7f", "\\u007f")


@_non_finite_named
def short(v: float) -> str:
    """Up to eight significant digits, no trailing zeros: a number the user gave as they
    gave it (``0.05``, ``0.12345679``), or a weight a step made (``0.14976557``)."""
    return f"{v:.8g}"


@_non_finite_named
def loss(v: float) -> str:
    """Ten significant digits (``L = 0.3273591340``; ``3.576154000e-14``, where ten decimals
    read 0.0000000000 for a loss that was not 0); no bare point (``4999919685``)."""
    return f"{v + 0.0:#.10g}".removesuffix(".")


STYLES: dict[str, Callable[[float], str]] = {"fixed": fixed, "sig": sig, "short": short,
                                             "loss": loss}  # fmt: skip


def state(v: float) -> str:
    """``"finite"``, ``"nan"``, ``"inf"`` or ``"-inf"``."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "finite"


def number(v: Any, style: str = "fixed") -> dict[str, Any]:
    """One number for a JSON message: ``{"v": exact value or None, "s": text, "state": ...}``.

    ``v`` is the float itself (JSON carries it exactly: Python writes the shortest repr that
    reads back to the same double, and so does ``JSON.parse``); ``s`` is its text in
    ``style`` (see :data:`STYLES`); ``state`` is ``"finite"`` or which non-finite value it is,
    with ``v`` None then, since JSON cannot hold NaN or infinity.
    """
    x = float(v)
    st = state(x)
    if st != "finite":
        return {"v": None, "s": _NON_FINITE_TEXT[st], "state": st}
    return {"v": x, "s": STYLES[style](x), "state": st}


def numbers(values: Any, style: str = "fixed") -> Any:
    """:func:`number` over a (nested) list or array, keeping its nesting."""
    if hasattr(values, "tolist"):
        values = values.tolist()
    if isinstance(values, list | tuple):
        return [numbers(v, style) for v in values]
    return number(values, style)


def packed(values: Any, style: str = "fixed") -> dict[str, Any]:
    """An array as ``{"shape", "v": flat values, "s": flat texts, "states": {...}}``.

    The compact form of :func:`numbers` for whole parameter arrays (a third of the JSON and
    of the time): ``v`` and ``s`` in C order, ``v`` None where not finite, and ``states``
    mapping the flat index of each non-finite entry to its state (empty when all are finite).
    """
    arr = np.asarray(values, dtype=np.float64)
    flat = arr.ravel().tolist()
    fmt = STYLES[style]
    v, s, states = [], [], {}
    for i, x in enumerate(flat):
        if math.isfinite(x):
            v.append(x)
            s.append(fmt(x))
        else:
            st = state(x)
            states[str(i)] = st
            v.append(None)
            s.append(_NON_FINITE_TEXT[st])
    return {"shape": list(arr.shape), "v": v, "s": s, "states": states}
