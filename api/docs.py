"""``/docs`` without a CDN: Swagger UI from the pinned ``swagger-ui-dist`` npm package that ``make setup`` installs
(``package-lock.json`` -> ``static/vendor/node_modules/swagger-ui-dist``), served by the API under
:data:`ASSETS_URL`. FastAPI's own ``/docs`` (and ``/redoc``) load their scripts from jsdelivr, which a hospital
network blocks and which would load third-party code at run time; when the assets are not installed, ``/docs``
says how to install them instead."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_DIR = Path(__file__).resolve().parents[1] / "static" / "vendor" / "node_modules" / "swagger-ui-dist"
ASSETS_URL = "/docs-assets"
FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
SETUP_HINT = ("run `make setup` (it runs `npm ci`, which installs the pinned swagger-ui-dist of package-lock.json "
              "into static/vendor/), then restart `cli.py serve`")


def missing_assets(folder: Path) -> list[str]:
    return [name for name in FILES if not (folder / name).is_file()]


def add_docs(app: FastAPI, title: str, folder: Path | None = None) -> None:
    """``GET /docs`` (Swagger UI from ``folder``'s local files) and its OAuth2 redirect page; the app must be made
    with ``docs_url=None, redoc_url=None``. Which files are there is read once, when the app is made."""
    folder = SWAGGER_DIR if folder is None else folder
    missing = missing_assets(folder)
    if not missing:
        app.mount(ASSETS_URL, StaticFiles(directory=folder), name="docs-assets")
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if missing:
            body = (f"<h1>{html.escape(title)}: API docs not installed</h1><p>The Swagger UI files "
                    f"({html.escape(', '.join(missing))}) are missing from <code>{html.escape(str(folder))}</code>; "
                    f"{html.escape(SETUP_HINT)}.</p><p>The API itself works; its description is at "
                    "<a href=\"/openapi.json\">/openapi.json</a>.</p>")
            return HTMLResponse(f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
                                f"<body>{body}</body></html>", status_code=503)
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} - docs",
                                   swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
                                   oauth2_redirect_url=redirect,
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from validator.swagger.io

    @app.get(redirect, include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
