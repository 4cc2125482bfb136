"""The Compose stack's TLS proxy for real: Debian's Caddy runs
deploy/proxy/Caddyfile (its own certificate authority, `DATARUN_TLS=internal`)
in front of gunicorn with the production settings, on free ports of this
machine. Web takes https from the proxy's X-Forwarded-Proto: pages come
through without a redirect and with HSTS, while plain http to web itself is
sent to https."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.conftest import ROOT, _database_url, free_port, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CADDY = shutil.which("caddy")
WEB_LOGS: dict[int, Path] = {}


def web_log(port: int) -> str:
    return WEB_LOGS[port].read_text()[-3000:]


def _started(proc: subprocess.Popen, log: Path, url: str, verify) -> None:
    deadline = time.monotonic() + 60
    last = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if requests.get(url, verify=verify, timeout=5, allow_redirects=False).ok:
                return
        except (requests.ConnectionError, OSError) as exc:
            last = exc
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer within 60 s ({last}):\n{log.read_text()[-3000:]}")


@pytest.fixture
def production_web(django_db_setup, tmp_path):
    """gunicorn with DATARUN_ENV=production on the test database."""
    port = free_port()
    env = {**os.environ, "DATARUN_ENV": "production", "DEBUG": "0",
           "SECRET_KEY": "proxy-test-secret-key-0123456789abcdef",
           "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "ALLOWED_HOSTS": "localhost,127.0.0.1", "DATARUN_PROXY_COUNT": "1",
           "DATARUN_HOME": str(tmp_path / "home"),
           "DATARUN_STORAGE_DIR": str(settings.DATARUN_STORAGE_DIR)}
    log = tmp_path / "gunicorn.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", "-"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _started(proc, log, f"http://127.0.0.1:{port}/api/v1/health/", verify=True)
        WEB_LOGS[port] = log
        yield port
    finally:
        stop_process(proc)


@pytest.fixture
def proxy(production_web, tmp_path):
    """Caddy with the deployment's Caddyfile, web as its upstream; (https
    port, http port, the root certificate of its own authority)."""
    if CADDY is None:  # as without docker-compose: a skip, which fails under CI=true
        pytest.skip("caddy is not installed (Debian: apt-get install caddy)")
    https_port, http_port = free_port(), free_port()
    home = tmp_path / "caddy"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
           "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
           "DATARUN_DOMAIN": "localhost", "DATARUN_TLS": "internal",
           "DATARUN_UPSTREAM": f"127.0.0.1:{production_web}", "CADDY_ADMIN": "off",
           "DATARUN_PROXY_HTTPS_PORT": str(https_port),
           "DATARUN_PROXY_HTTP_PORT": str(http_port)}
    log = tmp_path / "caddy.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [CADDY, "run", "--config", str(ROOT / "deploy" / "proxy" / "Caddyfile"),
             "--adapter", "caddyfile"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    root = home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    try:
        deadline = time.monotonic() + 60
        while not root.exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        _started(proc, log, f"https://localhost:{https_port}/api/v1/health/", verify=str(root))
        yield https_port, http_port, str(root)
    finally:
        stop_process(proc)


def test_pages_come_through_the_proxy_over_https_and_plain_http_is_redirected(
        proxy, production_web):
    https_port, http_port, root = proxy
    session = requests.Session()
    session.trust_env = False

    # Through the proxy: web sees https (X-Forwarded-Proto), so no redirect,
    # and tells browsers to stay on https.
    answer = session.get(f"https://localhost:{https_port}/api/v1/events/", verify=root,
                         allow_redirects=False, timeout=10)
    assert answer.status_code == 200, web_log(production_web)
    assert "results" in answer.json()
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
    # The CSRF cookie of a form is sent over https only.
    login = session.get(f"https://localhost:{https_port}/accounts/login/", verify=root,
                        allow_redirects=False, timeout=10)
    assert login.status_code == 200
    assert "secure" in login.headers["Set-Cookie"].lower()

    # Straight to web over plain http: sent to https.
    direct = session.get(f"http://127.0.0.1:{production_web}/api/v1/events/",
                         headers={"Host": "localhost"}, allow_redirects=False, timeout=10)
    assert direct.status_code == 301
    assert direct.headers["Location"] == "https://localhost/api/v1/events/"
    # Plain http to the proxy: Caddy sends it to https before web sees it,
    # whatever X-Forwarded-Proto the client wrote.
    plain = session.get(f"http://localhost:{http_port}/events/", allow_redirects=False,
                        headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert plain.status_code in (301, 308)
    assert plain.headers["Location"].startswith("https://localhost")
