"""Shapes, counts and bytes as text (app/formatting.py): one convention, Keras's."""

from __future__ import annotations

from app.formatting import fmt_bytes, fmt_count, fmt_shape


def test_fmt_shape_as_keras_prints_it() -> None:
    assert [fmt_shape(s) for s in ([None, 10, 30], [5], [])] == ["(None, 10, 30)", "(5,)", "()"]


def test_fmt_bytes_reads_as_keras_summary_does() -> None:
    # keras/src/utils/summary_utils.py, readable_memory_size: base 1024, two decimals, B to PB.
    assert [fmt_bytes(n) for n in (800, 1023, 1024, 24_604, 4 * 2**30, 640_067_200_000, 3 * 2**50)] == [
        "800.00 B",
        "1023.00 B",
        "1.00 KB",
        "24.03 KB",
        "4.00 GB",
        "596.11 GB",
        "3.00 PB",
    ]


def test_fmt_bytes_beyond_pb_is_scientific_for_any_int() -> None:
    # Past 1024 PB a figure in PB is a long string of digits; 10**400 does not even fit a float.
    assert [fmt_bytes(n) for n in (2**60, 1_606_938_044_258_990_275_541_962_092_341_162_602_522_202, 10**400)] == [
        "1.15e+18 B",
        "1.61e+42 B",
        "1.00e+400 B",
    ]
    assert [fmt_count(n) for n in (10**18 - 1, 10**18, 3 * 10**77)] == [
        "999,999,999,999,999,999",
        "1.00e+18",
        "3.00e+77",
    ]
