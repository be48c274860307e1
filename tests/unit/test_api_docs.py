"""``/docs`` loads Swagger UI from the API's own files (the pinned ``swagger-ui-dist`` npm package), never from a
CDN; without the files it says how to install them (issue 15)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""")


def _client(folder: Path) -> TestClient:
    from api.app import create_app

    return TestClient(create_app(None, docs_dir=folder), raise_server_exceptions=False)


def _assets(tmp_path: Path) -> Path:
    folder = tmp_path / "swagger-ui-dist"
    folder.mkdir()
    (folder / "swagger-ui-bundle.js").write_text("window.SwaggerUIBundle = function () {};\n")
    (folder / "swagger-ui.css").write_text(".swagger-ui {}\n")
    (folder / "favicon-32x32.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def test_docs_reference_only_this_server(tmp_path):
    client = _client(_assets(tmp_path))
    r = client.get("/docs")
    assert r.status_code == 200
    page = r.text
    assert not re.search(r"https?://", page), "the docs page names an external host"
    urls = URL.findall(page)
    assert urls and not any(u.startswith("//") for u in urls)  # nor a scheme-relative one
    assert "/docs-assets/swagger-ui-bundle.js" in urls and "/docs-assets/swagger-ui.css" in urls
    for url in urls:
        if url.startswith("/docs-assets/"):
            assert client.get(url).status_code == 200, url
    assert '"validatorUrl": null' in page  # no validator badge fetched from validator.swagger.io
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/redoc").status_code == 404  # FastAPI's ReDoc page loads from a CDN: not served
    assert client.get("/openapi.json").json()["paths"]["/v1/extract"]


def test_without_the_assets_docs_says_how_to_install_them(tmp_path):
    r = _client(tmp_path / "nothing").get("/docs")
    assert r.status_code == 503
    assert "make setup" in r.text and "swagger-ui-bundle.js" in r.text and "/openapi.json" in r.text
    assert not re.search(r"https?://", r.text)


def test_swagger_ui_is_pinned_exactly_in_package_json_and_its_lock():
    pkg = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = pkg["dependencies"]["swagger-ui-dist"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned)
    assert lock["packages"]["node_modules/swagger-ui-dist"]["version"] == pinned


def test_the_installed_swagger_ui_is_the_pinned_one_and_is_served():
    from api.docs import SWAGGER_DIR, missing_assets

    if missing_assets(SWAGGER_DIR):
        pytest.skip(f"swagger-ui-dist is not installed in {SWAGGER_DIR} (make setup installs it)")
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["swagger-ui-dist"]
    assert json.loads((SWAGGER_DIR / "package.json").read_text())["version"] == pinned
    client = _client(SWAGGER_DIR)
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and "SwaggerUIBundle" in js.text
