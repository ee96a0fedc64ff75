"""The one place that turns any error into a response: the exception handlers, the middleware that answers a bug
no handler knows (:class:`UnhandledErrorMiddleware`), and the response models of the error body.

Every error body has FastAPI's validation shape, ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``,
whatever the status, so a front-end parses one format. The errors themselves are :mod:`app.errors`'.
"""

from __future__ import annotations

import inspect
import logging
import re
import typing
from collections.abc import Mapping
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, JsonValue, RootModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    MAX_ERROR_ITEMS,
    ErrorItem,
    LayerwiseError,
    StoreFaultError,
    StoreUnavailableError,
    capped,
    error_types,
)
from app.spec.messages import error_items

logger = logging.getLogger(__name__)

# The methods an OpenAPI path item may hold as operations (its other keys: parameters, summary, servers...).
_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})


ERROR_TYPES: list[JsonValue] = [*error_types()]


class ErrorItemModel(BaseModel):
    """One problem with the request."""

    loc: list[str | int] = Field(description="Where in the request: e.g. ['body', 'layers', 2].")
    msg: str
    # An enum in the document only: the bodies are written as dicts (app.errors.ErrorItem), never validated here.
    type: str = Field(
        description="What kind of problem: the service's own kinds and pydantic's.",
        json_schema_extra={"enum": ERROR_TYPES},
    )


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer has this body."""

    detail: list[ErrorItemModel]


async def _layerwise_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LayerwiseError)
    if exc.status_code >= 500:
        logger.error("%s: %s", type(exc).__name__, exc)
    return JSONResponse({"detail": capped(exc.items)}, status_code=exc.status_code, headers=exc.headers)


def _json_error(error: Mapping[str, Any], doc: Any) -> ErrorItem:
    """FastAPI's "JSON decode error" (its loc has the character offset) with the line, the column and what the
    JSON parser expected there."""
    loc = tuple(error.get("loc", ("body",)))
    pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    expected = (error.get("ctx") or {}).get("error")
    if pos is None or not isinstance(doc, str):
        return ErrorItem(
            loc, f"the body is not valid JSON ({expected or 'JSON decode error'}); send a JSON object", "json_invalid"
        )
    line = doc.count("\n", 0, pos) + 1
    column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
    what = f"{expected} at" if expected else "error at"
    return ErrorItem(
        loc,
        f"the body is not valid JSON: {what} line {line}, column {column} (character {pos}); fix the JSON there",
        "json_invalid",
    )


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a type annotation names (through unions, ``Annotated`` and root models)."""
    if isinstance(annotation, type) and issubclass(annotation, RootModel):
        return _models_in(annotation.model_fields["root"].annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _body_required(request: Request) -> str:
    """The message for a request without a body: what its route's body holds, and its keys."""
    field = getattr(request.scope.get("route"), "body_field", None)
    info = getattr(field, "field_info", None)
    models = _models_in(getattr(info, "annotation", None))
    description = getattr(info, "description", None) or (
        (inspect.getdoc(models[0]) or "").split("\n\n")[0].replace("\n", " ") if models else ""
    )
    what = description[:1].lower() + description[1:].rstrip(".") if description else "a JSON object"
    msg = f"the request has no body; send one as JSON with `Content-Type: application/json`, holding {what}"
    if models:
        keys = ", ".join(
            name + (" (required)" if f.is_required() else "") for name, f in models[0].model_fields.items()
        )
        msg += f"; the keys of a {models[0].__name__}: {keys}"
    return msg + "; /docs has examples"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    settings = getattr(request.app.state, "settings", None)
    errors = exc.errors()
    items = error_items(errors, getattr(settings, "limits", None))
    for i, error in enumerate(errors[:MAX_ERROR_ITEMS]):
        if error.get("type") == "json_invalid":
            items[i] = _json_error(error, exc.body)
        elif error.get("type") == "missing" and tuple(error.get("loc", ())) == ("body",):
            items[i] = ErrorItem(("body",), _body_required(request), "missing")
    return JSONResponse({"detail": items}, status_code=422)


def _allowed_methods(request: Request, path: str | None = None) -> list[str]:
    """The methods the request's path (or ``path``, as the client wrote it) answers, from the OpenAPI document:
    every operation of every documented path that matches (Starlette's 405 lists only the methods of the first
    route whose path matches, e.g. GET but not DELETE on /v1/trainings/{run_id}). HEAD is there only where a
    route declares it (/healthz, /readyz): a FastAPI route answers exactly its declared methods. Empty for an
    undocumented path."""
    app = request.app
    patterns: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "method_patterns", None)
    if patterns is None:
        patterns = [
            (
                re.compile("^" + "[^/]+".join(re.escape(part) for part in re.split(r"\{[^/]+?\}", path)) + "$"),
                {method.upper() for method in operations if method.upper() in _HTTP_METHODS},
            )
            for path, operations in app.openapi()["paths"].items()
        ]
        app.state.method_patterns = patterns
    path = (path or request.url.path).removeprefix(request.scope.get("root_path", ""))
    return sorted(set().union(*(methods for pattern, methods in patterns if pattern.match(path))))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        # An undocumented path (the playground, /docs, /static) keeps the Allow of the route that refused it.
        allowed = _allowed_methods(request) or sorted(
            method.strip() for method in (exc.headers or {}).get("Allow", "").split(",") if method.strip()
        )
        if allowed:
            listed = ", ".join(allowed)
            item = ErrorItem((), f"{request.method} is not allowed here; this path answers {listed}", "http_405")
            return JSONResponse({"detail": [item]}, status_code=405, headers={"Allow": listed})
    if exc.status_code == 404 and len(request.url.path) > 1 and request.url.path.endswith("/"):
        # A documented path written with a trailing slash: Starlette's own redirect (off: FastAPI(redirect_slashes=
        # False)) would build an absolute Location from the client's Host header; this one is the path alone.
        path = request.url.path.rstrip("/")
        if path and request.method in _allowed_methods(request, path):
            location = path + (f"?{request.url.query}" if request.url.query else "")
            item = ErrorItem((), f"this path is {path}, without the trailing slash (Location)", "trailing_slash")
            return JSONResponse({"detail": [item]}, status_code=307, headers={"Location": location})
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI turns any failure to read the body as JSON, other than a syntax error, into a bare 400 that
        # names nothing; it is a body that is not JSON, and says so like a syntax error does.
        cause = exc.__cause__
        if isinstance(cause, RecursionError):
            msg = "the JSON body is nested too deeply to read; a model spec is a few levels deep"
        elif isinstance(cause, UnicodeDecodeError):
            msg = f"the body is not UTF-8 text (byte {cause.start}); send JSON encoded as UTF-8"
        else:
            msg = f"the body could not be read as JSON ({type(cause).__name__}: {cause})"
        return JSONResponse({"detail": [ErrorItem(("body",), msg, "json_invalid")]}, status_code=422)
    item = ErrorItem((), str(exc.detail), f"http_{exc.status_code}")
    return JSONResponse({"detail": [item]}, status_code=exc.status_code, headers=exc.headers)


async def _store_error(_: Request, exc: Exception) -> JSONResponse:
    # The run store failed under a request (a full disk, Redis gone): the request was fine, the service is not.
    # A store's message names its backend's own error (e.g. "OperationalError: attempt to write a readonly ...").
    logger.error("run store error: %s", exc)
    # A faulted store's refusal says already what is wrong and what fixes it (app.runs.store.sqlite.fault_message).
    msg = (
        str(exc)
        if isinstance(exc, StoreFaultError)
        else f"the run store failed ({exc}); retry later, and tell the operator"
    )
    item = ErrorItem((), msg, "store_unavailable")
    return JSONResponse({"detail": [item]}, status_code=503, headers={"Retry-After": "5"})


class UnhandledErrorMiddleware:
    """Answers an exception no handler knows (a bug) with the shared error body and status 500, never
    Starlette's bare ``Internal Server Error`` in plain text; logs it once with its traceback and request id.

    Added inside the request-id and metrics middlewares (:func:`app.main.create_app`), so the answer carries
    ``X-Request-ID`` and is counted in ``/metrics`` as a 500 of its route. An exception after the answer has
    started (a broken event stream) cannot be answered again: it is logged and the connection closed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            request_id = correlation_id.get()
            logger.error(
                "unhandled %s on %s %s (request id %s)",
                type(exc).__name__,
                scope.get("method"),
                scope.get("path"),
                request_id,
                exc_info=exc,
            )
            if started:
                raise
            item = ErrorItem(
                (),
                f"the service failed unexpectedly ({type(exc).__name__}); this is a bug, not a problem with the "
                f"request. It has been logged with the request id {request_id}: tell the operator that id",
                "internal_error",
            )
            await JSONResponse({"detail": [item]}, status_code=500)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the shared ``{"detail": [...]}`` body."""
    app.add_exception_handler(StoreUnavailableError, _store_error)
    app.add_exception_handler(LayerwiseError, _layerwise_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
