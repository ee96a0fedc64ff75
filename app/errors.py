"""Every error of the service's own, one hierarchy; no FastAPI or Starlette here.

Each error carries the HTTP status it answers with and its ``type`` (the ``type`` of an item of the error body);
:mod:`app.api.error_handlers` is the one place that turns them into responses. Every error body has FastAPI's
validation shape, ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``, whatever the status, so a
front-end parses one format.

Hierarchy (status, ``type``)::

    LayerwiseError                500 internal_error     a bug, not a bad request
    ├── SpecError                 422 value_error ...    the request describes an invalid model or training
    ├── NotFoundError             404 not_found          no resource with the id in the path
    ├── ConflictError             409 conflict           the resource's state forbids it (cancel a finished run)
    ├── QueueFullError            429 queue_full         too many runs waiting (Retry-After)
    ├── RateLimitedError          429 rate_limited       a client over LAYERWISE_RATE_LIMIT (Retry-After)
    ├── BuildsBusyError           429 builds_busy        a client's model builds already waiting (Retry-After)
    ├── StreamsBusyError          429 streams_busy       too many open event streams (Retry-After)
    ├── UnauthorizedError         401 unauthorized       no API key, or another one
    ├── WorkerError               503 worker_error       a worker process died or misbehaved
    ├── WorkerTimeoutError        503 worker_timeout     a build ran past its time limit
    └── StoreUnavailableError     503 store_unavailable  the run store cannot be opened, read or written
        └── StoreFaultError       503 store_unavailable  its file read-only or deleted under the server: refused

A store raises :class:`StoreUnavailableError` for its backend's own errors (``sqlite3.Error``, Redis's
``RedisError``), chained as its ``__cause__``, so nothing above the stores knows which backend there is.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any, Literal

Loc = tuple[str | int, ...]

# The most items an error body lists (the rest are counted in one more item, ``too_many_errors``), and the
# errors after which validation of a model's layers stops: a body of 500,000 wrong layers is answered with
# these, not with 500,000 items (145 MB) after seconds of work.
MAX_ERROR_ITEMS = 20
# The type of the error pydantic gives where it stopped validating layers (app.spec.model); :func:`capped` turns it
# into its ``too_many_errors`` item, so no answer has it.
NOT_CHECKED = "not_checked"


# Every error item's `type` the service writes itself; the others are pydantic's own (``pydantic_core``'s
# ErrorType), which validation errors keep. tests/api/test_openapi_document.py checks every type the code writes is
# here; the document lists both as the item's enum (app.api.error_handlers.ErrorItemModel).
SERVICE_ERROR_TYPES = (
    "body_too_large",
    "builds_busy",
    "conflict",
    "cursor_invalid",
    "diagram_unavailable",
    "duplicate_name",
    "graph_cycle",
    "graph_only",
    "header_too_large",
    "http_400",
    "http_404",
    "http_405",
    "input_shape_conflict",
    "input_shape_missing",
    "input_shape_not_first",
    "internal_error",
    "json_invalid",
    "keras2_conflict",
    "keras_build_error",
    "keras_import_refused",
    "last_event_id_invalid",
    "limit_exceeded",
    "loss_output",
    "metric_labels",
    "missing_inputs",
    "monitor_unknown",
    "not_found",
    "per_output",
    "predict_inputs",
    "query_param_unknown",
    "queue_full",
    "rate_limited",
    "reference_order",
    "request_timeout",
    "stateful_batch_size",
    "stateful_needs_batch",
    "stateful_samples",
    "store_unavailable",
    "streams_busy",
    "task_input_shape",
    "task_output_shape",
    "timesteps_missing",
    "too_many_connections",
    "too_many_errors",
    "too_many_keys",
    "trailing_slash",
    "unauthorized",
    "unknown_reference",
    "unsupported_media_type",
    "unused_input",
    "unused_layer",
    "validation_split_empty",
    "variable_length_unsupported",
    "worker_error",
    "worker_timeout",
    "wrong_input_count",
)


def error_types() -> list[str]:
    """Every ``type`` an error item may have: the service's own and pydantic's, sorted."""
    from pydantic_core.core_schema import ErrorType

    return sorted(set(SERVICE_ERROR_TYPES) | set(typing.get_args(ErrorType)))


class ErrorItem(dict[str, Any]):
    """One entry of ``detail``: ``{"loc": [...], "msg": str, "type": str}``."""

    def __init__(self, loc: Sequence[str | int], msg: str, type: str) -> None:
        super().__init__(loc=list(loc), msg=msg, type=type)


def capped(items: Sequence[ErrorItem], total: int | None = None) -> list[ErrorItem]:
    """At most :data:`MAX_ERROR_ITEMS` of ``items``, then one ``too_many_errors`` item if any were left out.

    ``total`` is the count of all the errors when more were found than ``items`` holds. A :data:`NOT_CHECKED`
    item among ``items`` marks where validation stopped (the layers from there on were not checked): the last item
    is then at its ``loc`` and says so; else it is at ``["body"]``. It says how many more errors there were and
    to fix the first ones and send the request again. Items capped already are returned as they are.
    """
    if any(item["type"] == "too_many_errors" for item in items):
        return list(items)  # capped already
    markers = [item for item in items if item["type"] == NOT_CHECKED]
    errors = [item for item in items if item["type"] != NOT_CHECKED]
    total = max((total or 0) - len(markers), len(errors))
    if total <= MAX_ERROR_ITEMS and not markers:
        return errors
    more = total - min(total, MAX_ERROR_ITEMS)
    if markers:
        where = ".".join(str(part) for part in markers[0]["loc"][1:])
        others = f" and {more:,} more not listed" if more else ""
        msg = f"{where} and what follows it were not checked, after the {MAX_ERROR_ITEMS} errors above{others}"
    else:
        msg = (
            f"and {more:,} more error{'s' if more != 1 else ''}, not listed: an answer lists the first "
            f"{MAX_ERROR_ITEMS} errors"
        )
    return [
        *errors[:MAX_ERROR_ITEMS],
        ErrorItem(
            markers[0]["loc"] if markers else ("body",),
            f"{msg}; fix these and send the request again",
            "too_many_errors",
        ),
    ]


class LayerwiseError(Exception):
    """Base of the service's own errors; ``status_code`` is the HTTP status it answers with."""

    status_code = 500
    error_type = "internal_error"
    # Seconds a client should wait before retrying, sent as Retry-After (every 503 has one, as the document says).
    retry_after_s: int | None = None

    def __init__(self, msg: str, *, loc: Sequence[str | int] = (), headers: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.items = [ErrorItem(loc, msg, self.error_type)]
        if headers is None and self.retry_after_s is not None:
            headers = {"Retry-After": str(self.retry_after_s)}
        self.headers = headers


class SpecError(LayerwiseError):
    """A request that is well-formed JSON but describes an invalid model or training (422).

    Holds one or more :class:`ErrorItem`, each with a ``loc`` that points into the request body.
    """

    status_code = 422
    error_type = "value_error"

    def __init__(self, items: Sequence[ErrorItem]) -> None:
        super().__init__("; ".join(str(i["msg"]) for i in items))
        self.items = list(items)

    @classmethod
    def one(cls, loc: Sequence[str | int], msg: str, type: str = "value_error") -> SpecError:
        """Build a SpecError with a single item."""
        return cls([ErrorItem(loc, msg, type)])


class NotFoundError(LayerwiseError):
    """The resource named in the path does not exist (404)."""

    status_code = 404
    error_type = "not_found"


class WorkerError(LayerwiseError):
    """A worker process died or misbehaved while handling the request (503); the pool replaced it."""

    status_code = 503
    error_type = "worker_error"
    retry_after_s = 1  # the pool has started a new worker already


class WorkerTimeoutError(LayerwiseError):
    """A model build ran past its time limit; the worker was killed and replaced (503)."""

    status_code = 503
    error_type = "worker_timeout"
    retry_after_s = 1


class ConflictError(LayerwiseError):
    """The run is in a state that does not allow the request, e.g. cancelling a finished run (409)."""

    status_code = 409
    error_type = "conflict"


class QueueFullError(LayerwiseError):
    """Too many runs are waiting for a training worker (429, with ``Retry-After`` in seconds)."""

    status_code = 429
    error_type = "queue_full"


class RateLimitedError(LayerwiseError):
    """A client sent more requests to an endpoint than ``LAYERWISE_RATE_LIMIT`` allows (429, ``Retry-After``)."""

    status_code = 429
    error_type = "rate_limited"


class BuildsBusyError(LayerwiseError):
    """A client already has ``LAYERWISE_MAX_BUILDS_PER_CLIENT`` model builds waiting for or on a summary worker
    (429, ``Retry-After``)."""

    status_code = 429
    error_type = "builds_busy"
    retry_after_s = 1  # a summary build takes tens of milliseconds


class StreamsBusyError(LayerwiseError):
    """A client, or the service as a whole, has as many open event streams as allowed (429, ``Retry-After``)."""

    status_code = 429
    error_type = "streams_busy"
    retry_after_s = 5


class UnauthorizedError(LayerwiseError):
    """The service wants an API key and the request has none, or another one (401)."""

    status_code = 401
    error_type = "unauthorized"


class DiagramUnavailableError(LayerwiseError):
    """Drawing a model needs Graphviz's ``dot`` program, which is not installed where the workers run (503)."""

    status_code = 503
    error_type = "diagram_unavailable"


class StoreUnavailableError(LayerwiseError):
    """The run store cannot be opened, read or written (503, ``Retry-After``); the message says which store and
    what to do. A backend's own error (``sqlite3.Error``, ``RedisError``) is its ``__cause__``."""

    status_code = 503
    error_type = "store_unavailable"
    retry_after_s = 5


# How a run store is faulted, as ``/readyz`` names it: ``unreachable`` (it does not answer), ``read_only`` (its
# file, WAL or directory cannot be written: ``chattr +i``, a read-only mount, permissions), ``deleted`` (the file at
# its path is no longer the one it opened: unlinked, its directory removed, replaced), ``write_failed`` (its last
# write failed for a reason the filesystem does not show, a full disk or an I/O error, and none has succeeded since).
StoreFault = Literal["unreachable", "read_only", "deleted", "write_failed"]


class StoreFaultError(StoreUnavailableError):
    """The run store is faulted (``fault``, as ``/readyz`` names it) and refused a write before trying it (503,
    ``Retry-After``); nothing was written. The message names the fault, the file and the fix."""

    def __init__(self, msg: str, fault: StoreFault) -> None:
        super().__init__(msg)
        self.fault: StoreFault = fault
