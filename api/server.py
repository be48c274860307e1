"""``cli.py serve``: check the address (a non-loopback one needs an API token), build the app, run uvicorn."""

from __future__ import annotations

import logging
import sys

from core.types import ReportLensError

log = logging.getLogger("reportlens.api")


def serve(host: str = "127.0.0.1", port: int = 8000, runtime: str | None = None, threads: int | None = None) -> int:
    import uvicorn

    from api.app import create_app
    from services.api_tokens import check_serve_startup
    from services.app import database_url, open_database
    from services.serving import set_request_threads

    engine = open_database(database_url())
    mode = check_serve_startup(engine, host)  # raises ReportLensError (exit 1) on a public address without tokens
    app = create_app(engine, runtime)
    threads = set_request_threads(threads)  # before the first request loads a model; None: as it is
    print(f"ReportLens API ({mode}, runtime {app.state.runtime}, {threads} torch thread(s) per request) on "
          f"http://{host}:{port} (docs: /docs); every /v1 and /ls call needs a token (cli.py tokens create).",
          file=sys.stderr)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
    except (OSError, SystemExit) as exc:
        raise ReportLensError(f"Cannot serve on {host}:{port} ({exc}); pick another --port or stop what uses it.")\
            from None
    return 0
