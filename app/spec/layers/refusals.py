"""Keras's refusals of an input, in one wording for both sides.

A stack Keras refuses gets the same message whichever side finds it first (:func:`app.engine.failure_message`):
the analytic engine raises :class:`~app.spec.layers.base.KerasRefusal` with one of the clauses built here, and
:mod:`app.keras_build` turns what Keras raised into the same clause with :func:`translate`, reading the numbers
from Keras's own message. Pure Python; ``tests/test_engine_vs_keras.py`` checks that the two agree.

Each clause says what Keras computed or expected and how to fix the spec. The Keras messages they translate
(Keras 3.15) are quoted with each function.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from app.spec.layers.base import KerasLayer, KerasRefusal, ShapeError
from app.spec.types import Shape


def _tuple(values: Sequence[int | None]) -> str:
    inner = ", ".join("None" if v is None else str(v) for v in values)
    return f"({inner},)" if len(values) == 1 else f"({inner})"


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"-?\d+", text))


def _dims(text: str) -> tuple[int | None, ...]:
    return tuple(None if v == "None" else int(v) for v in re.findall(r"None|-?\d+", text))


def conv_too_short(kernel_size: Sequence[int], dilation_rate: Sequence[int], strides: Sequence[int]) -> KerasRefusal:
    """A convolution with ``padding="valid"`` whose kernel spans more steps than an axis has.

    keras/src/ops/operation_utils.py, ``compute_conv_output_shape``: "Computed output size would be zero or
    negative. Received `inputs shape=...`, `kernel shape=...`, `dilation_rate=...`, `strides=...`".
    """
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation_rate, strict=True))
    return KerasRefusal(
        f"Keras computed an output size of zero or less: kernel_size {_tuple(kernel_size)} with dilation_rate "
        f'{_tuple(dilation_rate)} spans {_tuple(span)} steps, more than the input has, with padding "valid"; '
        'give the input more steps, use a smaller kernel_size or dilation_rate, or padding "same"'
    )


def pool_too_short(pool_size: Sequence[int], strides: Sequence[int]) -> KerasRefusal:
    """Pooling with ``padding="valid"`` over fewer steps than the pool.

    keras/src/ops/operation_utils.py, ``compute_pooling_output_shape``: "Computed output size would be zero or
    negative. Received: `inputs.shape=...`, `pool_size=...`, `strides=...`".
    """
    return KerasRefusal(
        f"Keras computed an output size of zero or less: pool_size {_tuple(pool_size)} is more than the input "
        'has, with padding "valid"; give the input more steps, use a smaller pool_size, or padding "same"'
    )


def reshape_size(input_shape: Sequence[int | None], target_shape: Sequence[int]) -> KerasRefusal:
    """A Reshape whose target does not hold the input's values (``input_shape`` without the batch).

    keras/src/ops/operation_utils.py, ``compute_reshape_output_shape``: "The total size of the tensor must be
    unchanged[, however, the input size cannot by divided by ...]. Received: input_shape=(3, 4),
    target_shape=(5,)".
    """
    size = 1
    for d in input_shape:
        size *= d or 1
    return KerasRefusal(
        f"Keras cannot reshape {_tuple(input_shape)} ({size:,} values a sample) to target_shape "
        f"{_tuple(target_shape)}: the sizes must multiply to the same number; use -1 for one axis to have it "
        "computed"
    )


def crop_too_much(cropping: Sequence[int], length: int | None) -> KerasRefusal:
    """A Cropping1D that would leave no step.

    keras/src/layers/reshaping/cropping1d.py, ``compute_output_shape``: "`cropping` parameter of `Cropping1D`
    layer must be smaller than the input length. Received: input_shape=(None, 3, 4), cropping=(2, 2)".
    """
    return KerasRefusal(
        f"Keras expected the cropping {_tuple(cropping)} to leave at least one of the {length} steps; crop less"
    )


def groups_mismatch(groups: int, channels: int | None) -> KerasRefusal:
    """A grouped convolution whose input channels the groups do not divide.

    keras/src/layers/convolutional/base_conv.py, ``BaseConv.build``: "The number of input channels must be
    evenly divisible by the number of groups. Received groups=2, but the input has 5 channels".
    """
    return KerasRefusal(
        f"Keras expected input channels divisible by groups={groups}, found {channels} channels; use a groups "
        "value that divides the input's last axis"
    )


def check_known_weights(layer: KerasLayer, input_shape: Shape) -> None:
    """Refuse, as Keras does when it creates it, the first weight of ``layer`` whose shape depends on an axis
    of unknown length in ``input_shape``.

    Raises:
        KerasRefusal: :func:`unknown_weight`'s, for that weight.
    """
    if (weight := layer.unknown_weight(input_shape)) is not None:
        raise unknown_weight(weight.name, weight.shape)


def unknown_weight(name: str, shape: Sequence[int | None]) -> KerasRefusal:
    """A weight whose size depends on an axis of unknown length (``None``): a Dense after a Flatten of a
    variable-length sequence, a BatchNormalization over the batch axis...

    keras/src/backend/common/variables.py, ``standardize_shape``: "Shapes used to initialize variables must be
    fully-defined (no `None` dimensions). Received: shape=(None, 2) for variable path='.../dense/kernel'".
    """
    return KerasRefusal(
        f"Keras cannot create the weight {name!r} of shape {_tuple(shape)}: its size depends on an axis of "
        "unknown length (None); give that axis a length in the input shape, or pool it away first (e.g. "
        "GlobalAveragePooling1D instead of Flatten)"
    )


def axis_out_of_range(axis: int, ndim: int) -> KerasRefusal:
    """An ``axis`` (or PReLU ``shared_axes`` entry) that the input does not have (Keras raises IndexError:
    "tuple index out of range")."""
    return KerasRefusal(
        f"Keras expected an axis of the {ndim}-D input (from {-ndim} to {ndim - 1}, the batch being 0), found "
        f"axis {axis}; use an axis the input has"
    )


# -- Keras's messages -> the clauses above ----------------------------------------------------------------------

_Translator = Callable[["re.Match[str]", Sequence[int | None]], KerasRefusal]


def _conv(m: re.Match[str], received: Sequence[int | None]) -> KerasRefusal:
    inputs, kernel = _dims(m["inputs"]), _ints(m["kernel"])
    rank = len(inputs) - 2
    return conv_too_short(kernel[:rank], _ints(m["dilation"]), _ints(m["strides"]))


def _pool(m: re.Match[str], received: Sequence[int | None]) -> KerasRefusal:
    return pool_too_short(_ints(m["pool"]), _ints(m["strides"]))


def _reshape(m: re.Match[str], received: Sequence[int | None]) -> KerasRefusal:
    return reshape_size(_dims(m["input"]), _ints(m["target"]))


def _crop(m: re.Match[str], received: Sequence[int | None]) -> KerasRefusal:
    return crop_too_much(_ints(m["cropping"]), _dims(m["input"])[1])


def _groups(m: re.Match[str], received: Sequence[int | None]) -> KerasRefusal:
    return groups_mismatch(int(m["groups"]), int(m["channels"]))


def _kernel_rank(m: re.Match[str], received: Sequence[int | None]) -> KerasRefusal:
    # Keras checks the rank of a convolution's input only here (its InputSpec has min_ndim alone).
    return ShapeError(f"ndim={len(_ints(m['kernel']))}", f"ndim={len(_dims(m['input']))}")


def _weight(m: re.Match[str], received: Sequence[int | None]) -> KerasRefusal:
    return unknown_weight(m["path"].rsplit("/", 1)[-1], _dims(m["shape"]))


_TRANSLATORS: tuple[tuple[re.Pattern[str], _Translator], ...] = (
    (
        re.compile(
            r"Computed output size would be zero or negative\. Received `inputs shape=(?P<inputs>\([^)]*\))`, "
            r"`kernel shape=(?P<kernel>\([^)]*\))`, `dilation_rate=(?P<dilation>[^`]*)`, "
            r"`strides=(?P<strides>[^`]*)`"
        ),
        _conv,
    ),
    (
        re.compile(
            r"Computed output size would be zero or negative\. Received: `inputs\.shape=[^`]*`, "
            r"`pool_size=(?P<pool>[^`]*)`, `strides=(?P<strides>[^`]*)`"
        ),
        _pool,
    ),
    (
        re.compile(
            r"The total size of the tensor must be unchanged.*?Received: input_shape=(?P<input>\([^)]*\)), "
            r"target_shape=(?P<target>\([^)]*\))"
        ),
        _reshape,
    ),
    (
        re.compile(
            r"`cropping` parameter of `Cropping1D` layer must be smaller than the input length\. Received: "
            r"input_shape=(?P<input>\([^)]*\)), cropping=(?P<cropping>\([^)]*\))"
        ),
        _crop,
    ),
    (
        re.compile(
            r"The number of input channels must be evenly divisible by the number of groups\. Received "
            r"groups=(?P<groups>\d+), but the input has (?P<channels>\d+) channels"
        ),
        _groups,
    ),
    (
        re.compile(
            r"Kernel shape must have the same length as input, but received kernel of shape "
            r"(?P<kernel>\([^)]*\)) and input of shape (?P<input>\([^)]*\))"
        ),
        _kernel_rank,
    ),
    (
        re.compile(
            r"Shapes used to initialize variables must be fully-defined \(no `None` dimensions\)\. Received: "
            r"shape=(?P<shape>\([^)]*\)) for variable path='(?P<path>[^']*)'"
        ),
        _weight,
    ),
)


def translate(message: str, received: Sequence[int | None]) -> str | None:
    """The clause for what Keras said (``message``, whitespace and colours already collapsed) when it refused
    an input of shape ``received``; ``None`` when the message is none of the refusals above."""
    for pattern, translator in _TRANSLATORS:
        if m := pattern.search(message):
            return translator(m, received).what
    return None
