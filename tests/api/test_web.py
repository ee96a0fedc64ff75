"""The page's files as the server serves and the package installs them, and CORS as a setting."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.api.web import STATIC_DIR
from app.config import Settings
from app.main import create_app


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # Every file the page refers to is served, and revalidated by the browser before each use.
    refs = re.findall(r'(?:src|href)="(static/[^"]+)"', page.text)
    assert "static/js/main.js" in refs and "static/vendor/chart.umd.min.js" in refs
    for ref in refs:
        r = client.get(f"/{ref}")
        assert r.status_code == 200, ref
        assert r.headers["cache-control"] == "no-cache"
    assert client.get("/static/js/main.js").headers["content-type"].startswith("text/javascript")
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_every_module_the_page_imports_exists() -> None:
    for module in (STATIC_DIR / "js").glob("*.js"):
        for target in re.findall(r'from "(\./[^"]+)"', module.read_text()):
            assert (module.parent / target).is_file(), f"{module.name} imports {target}"


def assert_as_npm_serves(vendor: Path) -> None:
    """Every file of a vendored package has the sha256 that make vendor recorded from npm's tarball."""
    for line in (vendor / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name


def test_vendored_chartjs_is_what_npm_serves() -> None:
    vendor = STATIC_DIR / "vendor"
    assert_as_npm_serves(vendor)
    version = (vendor / "VERSION").read_text().split()[1]
    assert f"Chart.js v{version}" in (vendor / "chart.umd.min.js").read_text()[:200]


def test_vendored_swagger_ui_is_what_npm_serves() -> None:
    vendor = STATIC_DIR / "vendor" / "swagger-ui"
    assert_as_npm_serves(vendor)
    assert (vendor / "VERSION").read_text().startswith("swagger-ui-dist 5.")


def test_the_docs_page_loads_only_this_service_s_files(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert "/openapi.json" in urls and len(urls) >= 4, urls
    for url in urls:
        assert url.startswith("/"), f"/docs loads {url} from elsewhere"
        assert client.get(url).status_code == 200, url
    assert client.get("/redoc").status_code == 404  # it loaded its script from a CDN


def test_a_built_wheel_carries_the_page(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), "."],
        cwd=root,
        check=True,
    )
    (wheel,) = tmp_path.glob("layerwise-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"app/{p.relative_to(root / 'app').as_posix()}" for p in STATIC_DIR.rglob("*") if p.is_file()}
    assert expected <= names, sorted(expected - names)


# CORS needs no worker: these apps are used without their lifespan, which only starts the pools.


def test_no_cross_origin_access_by_default() -> None:
    client = TestClient(create_app(Settings(runs_db=":memory:")))
    r = client.get("/healthz", headers={"Origin": "http://localhost:5173"})
    assert "access-control-allow-origin" not in r.headers


def test_an_allowed_origin_gets_cors_headers_and_another_does_not() -> None:
    settings = Settings(runs_db=":memory:", cors_origins=["http://localhost:5173"])
    client = TestClient(create_app(settings))
    preflight = client.options(
        "/v1/models/summary",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    # With an API key set, a front-end elsewhere sends it (either header) and may send its own request id.
    for header in ("x-api-key", "authorization", "content-type,x-request-id"):
        asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": header}
        r = client.options("/v1/models/summary", headers={"Origin": "http://localhost:5173", **asked})
        assert r.status_code == 200, (header, r.text)

    r = client.get("/healthz", headers={"Origin": "http://localhost:5173"})
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    # A front-end reads where a 202's run lives, and how long to wait after a 429.
    exposed = set(r.headers["access-control-expose-headers"].lower().split(", "))
    assert {"location", "retry-after", "x-request-id"} <= exposed

    other = client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    refused = client.options(
        "/v1/models/summary",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYERWISE_CORS_ORIGINS", "http://localhost:5173, https://app.example.org/")
    assert Settings().cors_origins == ["http://localhost:5173", "https://app.example.org"]
    monkeypatch.setenv("LAYERWISE_CORS_ORIGINS", '["*"]')
    assert Settings().cors_origins == ["*"]
    monkeypatch.setenv("LAYERWISE_CORS_ORIGINS", "")
    assert Settings().cors_origins == []
    monkeypatch.setenv("LAYERWISE_CORS_ORIGINS", "http://localhost:5173/app")
    with pytest.raises(ValidationError, match="not an origin"):
        Settings()
