"""Shapes, counts and bytes as text, for the messages of the engine, the limits, the warnings and the export."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal


def fmt_shape(shape: Sequence[int | None]) -> str:
    """A shape as Keras prints it: ``(None, 10, 30)``, ``(5,)``."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt_count(n: int) -> str:
    """An exact count with thousands separators, ``1,234,567``; in scientific notation from 10^18 on
    (``1.81e+78``), where the digits stop meaning anything to a reader."""
    return f"{n:,}" if abs(n) < 10**18 else f"{Decimal(n):.2e}"


def fmt_bytes(n: int) -> str:
    """Bytes for a person, in binary units: ``24.0 KiB``, ``596.1 GiB``, ``12.0 PiB``; ``800 bytes`` below 1 KiB;
    in scientific notation from 1024 PiB on (``1.81e+78 bytes``). Integer arithmetic, so any int works."""
    if n < 1024:
        return f"{n:,} bytes"
    for power, unit in enumerate(("KiB", "MiB", "GiB", "TiB", "PiB"), start=1):
        if n < 1024 ** (power + 1):
            return f"{n / 1024**power:.1f} {unit}"
    return f"{Decimal(n):.2e} bytes"
