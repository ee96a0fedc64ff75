"""What a browser needs: the playground page at ``/`` with its static files, the API's docs at ``/docs``, and CORS
for other front-ends.

The page is plain HTML, CSS and JavaScript modules under ``app/static`` (no build step), installed with the
package; it talks to the API exactly as any front-end would, so it is also the API's worked example.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

from app.api.protection import API_KEY_HEADER
from app.config import Settings

# The playground, package data of the app package (app/static), beside this package.
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# The page loads only its own files and calls only its own origin; the JavaScript never builds HTML from strings,
# so this policy costs it nothing and keeps a rendered server message from ever running as code.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'self'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
async def playground() -> FileResponse:
    """The playground page."""
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": PAGE_CSP},
    )


SWAGGER_UI = "/static/vendor/swagger-ui"


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    """The API's interactive documentation (Swagger UI) over ``/openapi.json``, its script and style served from
    the package (``make vendor``), so it works with no CDN reachable, as the playground does.
    FastAPI's documented self-hosting of the docs' assets (fastapi.tiangolo.com/how-to/custom-docs-ui-assets/)."""
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{SWAGGER_UI}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{SWAGGER_UI}/swagger-ui.css",
        swagger_favicon_url=f"{root}/static/favicon.svg",
    )


class RevalidatedStaticFiles(StaticFiles):
    """StaticFiles whose answers a browser revalidates (ETag, 304) before each use.

    Without ``Cache-Control`` a browser may reuse a file for a while on heuristic freshness (RFC 9111 §4.2.2),
    and after an upgrade run old and new modules of the page together.
    """

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


def install_web(app: FastAPI, settings: Settings) -> None:
    """Serve the playground (``/`` and ``/static/...``) and, when ``settings.cors_origins`` is not empty, answer
    those origins' cross-origin requests (Starlette's ``CORSMiddleware``).

    A front-end on another origin needs ``Location`` (where a 202's run lives), ``Retry-After`` (after a 429) and
    the request id from responses, so they are exposed; it may send ``Last-Event-ID`` (resuming an event stream
    by hand), the API key (``X-API-Key`` or ``Authorization``) and its own request id.
    """
    app.include_router(router)
    app.mount("/static", RevalidatedStaticFiles(directory=STATIC_DIR), name="static")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            # The API key's two headers and the request id, so a front-end elsewhere can use what the API offers.
            allow_headers=[
                "Content-Type",
                "Accept",
                "Last-Event-ID",
                API_KEY_HEADER,
                "Authorization",
                settings.request_id_header,
            ],
            expose_headers=["Location", "Retry-After", settings.request_id_header],
        )
