"""Fixtures shared by the integration tests: a real Label Studio 1.23 server (its own virtual environment).

``make test`` installs it with ``scripts/ensure_labelstudio.sh`` and exports ``REPORTLENS_TEST_LS_BIN``; without it the
fixture looks in ``.venv/labelstudio``, and skips (fails when ``CI`` is set) when there is no server to start. The
server runs on 127.0.0.1 on a free port with a temporary data folder and a generated 40-hex legacy user token,
offline (no version check, no analytics), once per test module, with the environment of the moment it starts.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.labelstudio import client as ls_client

ROOT = Path(__file__).resolve().parents[2]
LS_BIN_ENV = "REPORTLENS_TEST_LS_BIN"
START_TIMEOUT_S = 420  # a fresh data folder migrates ~100 tables: ~30 s on a quiet machine, minutes on 2 busy cores
HINT = f'export {LS_BIN_ENV}="$(bash scripts/ensure_labelstudio.sh)"'


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the Label Studio server tests cannot run: {reason}. Run {HINT}.", pytrace=False)
    pytest.skip(f"Label Studio server tests: {reason}; run {HINT}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabelStudioServer:
    url: str
    token: str
    proc: subprocess.Popen
    log: Path
    start_s: float

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
            return resp.status == 200 and b"UP" in resp.read()
    except OSError:
        return False


@pytest.fixture(scope="module")
def ls_server(tmp_path_factory) -> Iterator[LabelStudioServer]:
    binary = os.environ.get(LS_BIN_ENV) or str(ROOT / ".venv" / "labelstudio" / "bin" / "label-studio")
    if not os.access(binary, os.X_OK):
        _unavailable(f"no label-studio executable at {binary}")
    data = tmp_path_factory.mktemp("ls-data")
    port, token = _free_port(), secrets.token_hex(20)
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "XDG_CONFIG_HOME": str(data / "cfg"),
           "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "",
           "FRONTEND_SENTRY_DSN": "", "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true"}
    log = data / "server.log"
    t0 = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port), "--data-dir",
             str(data), "--username", "admin@example.com", "--password", secrets.token_hex(8), "--user-token", token,
             "--enable-legacy-api-token"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = LabelStudioServer(f"http://127.0.0.1:{port}", token, proc, log, 0.0)
    try:
        while not _healthy(server.url):
            if proc.poll() is not None or time.monotonic() - t0 > START_TIMEOUT_S:
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"Label Studio did not answer /health on {server.url} within {START_TIMEOUT_S} s "
                            f"(exit code {proc.poll()}). Log tail:\n{tail}", pytrace=False)
            time.sleep(1)
        server.start_s = time.monotonic() - t0
        print(f"Label Studio started in {server.start_s:.1f} s on {server.url}")
        yield server
    finally:
        server.stop()


@pytest.fixture
def conn(ls_server):
    return ls_client.connection(ls_server.url, ls_server.token, timeout_s=120)


