"""Request bodies are JSON: a body sent as anything else is a 415 that says how to send it, and the OpenAPI
document lists that 415 on every operation that takes a body.

FastAPI reads a body as JSON only when its ``Content-Type`` is ``application/json`` or ``application/*+json``
(its strict content type); any other body reached validation as bytes and failed as "Input should be a valid
dictionary", which does not tell a ``curl -d`` user (``application/x-www-form-urlencoded``) what is wrong.
"""

from __future__ import annotations

import email.message
from typing import Any

from fastapi import FastAPI, Request

from app.api.error_handlers import ErrorBody
from app.errors import LayerwiseError

# The 415 as the OpenAPI document gives it (ErrorBody: the shared error body, a component of the document).
UNSUPPORTED_MEDIA_TYPE: dict[str, Any] = {
    "description": "The body was not sent as JSON: send it with `Content-Type: application/json`.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


class UnsupportedMediaTypeError(LayerwiseError):
    """A JSON endpoint got a body of another media type (415)."""

    status_code = 415
    error_type = "unsupported_media_type"


def is_json(content_type: str) -> bool:
    """True for the media types FastAPI parses as JSON: ``application/json`` and ``application/*+json``, any
    parameters (``charset=utf-8``) and any case. Parsed as FastAPI parses it, so the two never disagree."""
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def require_json_body(request: Request) -> None:
    """Route dependency: on a route that takes a body, refuse one that is not sent as JSON.

    A request with no body and no ``Content-Type`` passes: validation then says a body is required.

    Raises:
        UnsupportedMediaTypeError: (415, loc ``["header", "content-type"]``) the ``Content-Type`` is not JSON,
            or there is a body without one.
    """
    if getattr(request.scope.get("route"), "body_field", None) is None:
        return
    content_type = request.headers.get("content-type")
    if content_type is None:
        if not await request.body():
            return
        sent = "without a Content-Type"
    elif is_json(content_type):
        return
    else:
        sent = f"as {content_type.split(';', 1)[0].strip()[:100]!r}"
    raise UnsupportedMediaTypeError(
        f"the body was sent {sent}; send it as JSON with `Content-Type: application/json` (with curl: "
        "-H 'Content-Type: application/json'; -d alone sends application/x-www-form-urlencoded)",
        loc=("header", "content-type"),
    )


def document_json_bodies(app: FastAPI) -> None:
    """List the 415 in the OpenAPI document of every operation that takes a body.

    For that to be true, :func:`require_json_body` must be a dependency of every route (``FastAPI(dependencies=
    ...)``): it does nothing on a route without a body. The document is post-processed (FastAPI's way of
    extending it) rather than each route's ``responses`` set, since routers included with their own dependencies
    are not the app's routes to edit.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    operation.setdefault("responses", {}).setdefault("415", UNSUPPORTED_MEDIA_TYPE)
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        if "ErrorBody" not in schemas:
            error_body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(error_body.pop("$defs", {}))
            schemas["ErrorBody"] = error_body
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
