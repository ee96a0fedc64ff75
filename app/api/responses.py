"""The answers the routers share, as the OpenAPI document gives them: every error in the one ``ErrorBody``
shape, with the headers that come with it (``Retry-After`` on every 429 and 503).

Generated clients read these (issue 19): an answer the document does not list, or lists without its body
type, is one a client cannot read, so each router lists every status its operations answer with.
"""

from __future__ import annotations

from typing import Any

ERROR_BODY_REF = {"$ref": "#/components/schemas/ErrorBody"}

RETRY_AFTER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}

LOCATION: dict[str, Any] = {
    "Location": {
        "description": "The run's URL: `GET` it, or follow `/events` below it.",
        "required": True,
        "schema": {"type": "string"},
    }
}

Responses = dict[int | str, dict[str, Any]]


def error(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    """One documented error answer: ``description``, the ``ErrorBody`` body, and ``Retry-After`` if asked."""
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ERROR_BODY_REF}},
    }
    if retry_after:
        response["headers"] = RETRY_AFTER
    return response


# Every operation that takes a body (the middleware answers before any route: app.protection).
BODY_TOO_LARGE = error("The body is over `LAYERWISE_MAX_BODY_BYTES`.")

# Every operation behind the API key, when one is set (app.main adds these to the routers it protects).
UNAUTHORIZED = error(
    "This service wants an API key, as `X-API-Key: <key>` or `Authorization: Bearer <key>`, and the request has "
    "none or another one."
)

# Every rate-limited operation, when a rate limit is set.
RATE_LIMITED = error(
    "Too many requests from this client to this operation (`LAYERWISE_RATE_LIMIT`); retry after `Retry-After` seconds.",
    retry_after=True,
)

# The operations that build a model in a worker process.
WORKER_FAILED = error(
    "The worker building the model died or timed out (it has been replaced); retry after `Retry-After` seconds.",
    retry_after=True,
)

# Every operation that reads or writes the run store.
STORE_FAILED = error(
    "The run store failed (a full disk, Redis gone); retry after `Retry-After` seconds.", retry_after=True
)

# Every operation whose path or query parameters are checked (FastAPI's own 422, in the service's body).
INVALID_REQUEST = error("A path, query or header parameter, or the body, is invalid: `loc` says which.")
