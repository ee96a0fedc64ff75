"""Shapes, counts and bytes as text, one convention everywhere: Python's messages and the page say a number
one way (the page's ``formatShape``, ``formatInt`` and ``formatBytes`` in ``app/static/js/dom.js`` follow it)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

# Keras's units for memory sizes (keras/src/utils/summary_utils.py, readable_memory_size): base 1024.
BYTE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def fmt_shape(shape: Sequence[int | None]) -> str:
    """A shape as Keras prints it: ``(None, 10, 30)``, ``(5,)``."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_count(n: int) -> str:
    """An exact count with thousands separators, ``1,234,567``; in scientific notation from 10^18 on
    (``1.81e+78``), where the digits stop meaning anything to a reader."""
    return f"{n:,}" if abs(n) < 10**18 else f"{Decimal(n):.2e}"


def fmt_bytes(n: int) -> str:
    """Bytes as Keras's ``model.summary()`` prints them (``readable_memory_size``): base 1024, two decimals,
    units B, KB, MB, GB, TB, PB -- ``800.00 B``, ``24.03 KB``, ``596.11 GB``; in scientific notation from 1024 PB
    on (``1.15e+18 B``), where a figure in PB would be a long string of digits (any int works: 10**400 does not
    fit a float)."""
    if n >= 1024 ** len(BYTE_UNITS):
        return f"{Decimal(n):.2e} B"
    value = float(n)
    for unit in BYTE_UNITS[:-1]:
        if value < 1024:
            return f"{value:.2f} {unit}"
        value /= 1024
    return f"{value:.2f} {BYTE_UNITS[-1]}"
