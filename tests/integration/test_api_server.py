"""``cli.py serve`` as a real uvicorn process on a free loopback port (issue 15): a token made with ``cli.py tokens``,
extraction over HTTP, 401/422/413 on the wire, the server alive after them; a public address without a token is
refused at start."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = "Sinus rhythm, heart rate 72 bpm. QTc 430 ms."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def call(url: str, body: object | None = None, token: str | None = None, raw: bytes | None = None
         ) -> tuple[int, dict]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "REPORTLENS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "REPORTLENS_DATA_DIR": str(tmp_path / "data"), "REPORTLENS_MAX_API_BODY_BYTES": "4096",
            "OMP_NUM_THREADS": "1"}


def test_a_public_address_without_a_token_is_refused(env):
    done = cli(env, "serve", "--host", "0.0.0.0", "--port", str(free_port()), timeout=60)
    assert done.returncode == 1 and "no API token exists" in done.stderr


def test_serve_answers_over_http(env):
    made = cli(env, "tokens", "create", "--name", "it")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "cli.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, health = call(f"{base}/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server exited"
                assert time.monotonic() < deadline, "the server did not answer within 90 s"
                time.sleep(0.5)
        assert status == 200 and health["status"] == "ok"
        status, body = call(f"{base}/v1/extract", {"text": REPORT}, token)
        assert status == 200 and body["results"][0]["summary"]["heart_rate"]["value"] == 72
        assert call(f"{base}/v1/extract", {"text": REPORT})[0] == 401
        status, body = call(f"{base}/v1/extract", raw=b'{"texts": [1]}', token=token)
        assert status == 422 and body["errors"][0]["field"] == "body.texts.0"
        assert call(f"{base}/v1/extract", {"text": "x" * 5000}, token)[0] == 413
        assert call(f"{base}/v1/extract", {"text": REPORT, "project": "nope"}, token)[0] == 404
        assert call(f"{base}/v1/extract", {"text": REPORT}, token)[0] == 200  # still serving
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "cli.py", "serve", "--port", str(port), *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            call(f"{base}/health")
            return proc, base
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server exited"
            assert time.monotonic() < deadline, "the server did not answer within 120 s"
            time.sleep(0.5)


def test_serve_on_the_onnx_export_gives_the_torch_entities(tmp_path):
    """``cli.py serve --runtime onnx`` (a real uvicorn process) on the fp32 export of a tiny trained model answers
    /v1/extract with exactly the results of the torch model (computed in this process, the same service)."""
    from core.auth import Actor
    from db.engine import dispose_engine
    from db.model_versions import record_model_version
    from services.api_tokens import create_token
    from services.auth import act_as
    from services.models import export_version
    from services.serving import extract_texts
    from tests.factories import tiny_tasks, train_tiny

    tasks = tiny_tasks(n=24)
    engine, url, result = train_tiny(tmp_path, tasks, max_steps=40, learning_rate=5e-3)
    version = record_model_version(engine, "tiny", None, result)
    with act_as(Actor.everyone("test"), engine):
        export_version(engine, version, "onnx")
        _, token = create_token(engine, "onnx-it", "tiny")
        texts = [t.text for t in tasks[:8]]
        torch_results = extract_texts(engine, texts, "tiny")
    dispose_engine(url)
    assert any(e["source"] in ("model", "both") for r in torch_results for e in _entities(r)), \
        "the tiny model found nothing: the comparison would only compare the rules"
    env = {**os.environ, "REPORTLENS_DATABASE_URL": url, "REPORTLENS_DATA_DIR": str(tmp_path / "data"),
           "OMP_NUM_THREADS": "1"}
    env.pop("REPORTLENS_RUNTIME", None)
    proc, base = _serve(env, "--runtime", "onnx")
    try:
        assert call(f"{base}/health")[1]["runtime"] == "onnx"
        status, body = call(f"{base}/v1/extract", {"texts": texts}, token)
        assert status == 200, body
        assert body["results"] == torch_results
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _entities(result: dict) -> list[dict]:
    """Every entity item of a structured result (grouped by label)."""
    found = result.get("entities") or {}
    groups = found.values() if isinstance(found, dict) else [found]
    return [e for g in groups for e in (g if isinstance(g, list) else [g]) if isinstance(e, dict) and "source" in e]
