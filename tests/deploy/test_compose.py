"""docker-compose.yml, as Compose itself reads it: the production stack a user
gets from `docker-compose up`, checked without pulling or starting anything."""
import json
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml
from django.conf import settings
from django.urls import reverse

from tests.conftest import ROOT

COMPOSE = shutil.which("docker-compose")
CADDY = shutil.which("caddy")
pytestmark = pytest.mark.skipif(
    COMPOSE is None,
    reason="docker-compose is not installed (Debian: apt-get install docker-compose)",
)

SECRETS = {
    "SECRET_KEY": "compose-test-secret-key-0123456789abcdef",
    "POSTGRES_PASSWORD": "pgpassword",
    "REDIS_PASSWORD": "redispassword",
    "FLOWER_BASIC_AUTH": "admin:flowerpassword",
    "DOCKER_GID": "999",
    "DATARUN_DOMAIN": "course.example.org",
    "DATARUN_TLS": "/certs/fullchain.pem /certs/privkey.pem",
}
PROJECT_SERVICES = {"web", "worker", "scorer", "beat", "flower"}


def compose_config(tmp_path, **env) -> subprocess.CompletedProcess:
    # An empty --env-file: a developer's own .env must not change the result.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return subprocess.run(
        [COMPOSE, "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"), "config"],
        cwd=ROOT, env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
        capture_output=True, text=True, timeout=60,
    )


@pytest.fixture
def stack(tmp_path):
    result = compose_config(tmp_path, **SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of each volume, from Compose's "source:target:mode"."""
    return [tuple(v.split(":")[:2]) for v in service.get("volumes", [])]


def test_every_process_of_the_stack_is_a_service(stack):
    assert set(stack["services"]) == PROJECT_SERVICES | {"proxy", "postgres", "redis"}


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies(stack):
    for name, service in stack["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(stack["services"]["web"]["depends_on"]) == {"postgres", "redis"}
    assert set(stack["services"]["worker"]["depends_on"]) == {"web"}
    assert set(stack["services"]["scorer"]["depends_on"]) == {"web"}
    assert set(stack["services"]["proxy"]["depends_on"]) == {"web"}


def test_each_process_runs_its_command_from_the_project_image(stack):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    services = stack["services"]
    for name in PROJECT_SERVICES:
        # The tag deploy/web/build.py gives the image.
        assert services[name]["image"] == f"datarun-web:{version}", name
        assert services[name]["build"]["dockerfile"] == "deploy/web/Dockerfile", name
        assert services[name]["environment"]["DATARUN_ENV"] == "production", name
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert services["scorer"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert services["flower"]["command"][:4] == ["celery", "-A", "config", "flower"]


def test_no_image_floats_on_latest(stack):
    for name, service in stack["services"].items():
        repository, _, tag = service["image"].rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {service['image']}"


def test_web_health_check_calls_the_health_api(stack):
    test = stack["services"]["web"]["healthcheck"]["test"]
    assert test[-1] == f"http://127.0.0.1:8000{reverse('health')}"


def queues_and_node(service: dict) -> tuple[set[str], str]:
    command = service["command"]
    return set(command[command.index("-Q") + 1].split(",")), command[command.index("-n") + 1]


def test_folds_and_scoring_have_their_own_workers_which_check_their_own_node(stack):
    # A burst of folds fills the worker's slots; the scorer's processes score
    # each finished submission meanwhile. Between them, every queue is read.
    services = stack["services"]
    fold_queues, fold_node = queues_and_node(services["worker"])
    scoring_queues, scoring_node = queues_and_node(services["scorer"])
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert fold_queues == routed == {"sandbox"}
    assert scoring_queues == {settings.CELERY_TASK_DEFAULT_QUEUE} == {"scoring"}
    assert (fold_node, scoring_node) == ("worker@%h", "scorer@%h")
    for name in ("worker", "scorer"):
        assert (f"inspect ping --destination {name}@$$HOSTNAME"
                in services[name]["healthcheck"]["test"][1])


def test_only_the_fold_worker_reaches_the_docker_daemon(stack):
    scorer = stack["services"]["scorer"]
    assert "/var/run/docker.sock" not in dict(mounts(scorer))
    assert "group_add" not in scorer


def test_worker_runs_folds_through_the_host_docker_daemon(stack):
    worker = stack["services"]["worker"]
    assert worker["environment"]["DATARUN_SANDBOX"] == "docker"
    assert ("/var/run/docker.sock", "/var/run/docker.sock") in mounts(worker)
    assert worker["group_add"] == [SECRETS["DOCKER_GID"]]


@pytest.mark.parametrize("work_dir", [None, "/srv/datarun/work"])
def test_worker_work_dir_is_the_same_path_on_the_host_and_in_the_container(tmp_path, work_dir):
    env = dict(SECRETS, DATARUN_WORK_DIR=work_dir) if work_dir else SECRETS
    result = compose_config(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    worker = yaml.safe_load(result.stdout)["services"]["worker"]
    path = worker["environment"]["DATARUN_WORK_DIR"]
    assert path == (work_dir or "/var/lib/datarun/work")
    assert (path, path) in mounts(worker)


def test_web_and_worker_share_storage_and_state_lives_in_volumes(stack):
    services = stack["services"]
    storage = services["web"]["environment"]["DATARUN_STORAGE_DIR"]
    assert ("storage", storage) in mounts(services["web"])
    assert ("storage", storage) in mounts(services["worker"])
    assert ("storage", storage) in mounts(services["scorer"])
    assert ("postgres-data", "/var/lib/postgresql/data") in mounts(services["postgres"])
    assert ("redis-data", "/data") in mounts(services["redis"])
    assert {"storage", "postgres-data", "redis-data"} <= set(stack["volumes"])


def test_flower_asks_for_credentials(stack):
    flower = stack["services"]["flower"]["environment"]
    assert flower["FLOWER_BASIC_AUTH"] == SECRETS["FLOWER_BASIC_AUTH"]
    assert "FLOWER_UNAUTHENTICATED_API" not in flower


def _published(service: dict) -> list[str]:
    """host_ip:published:target of each port, whichever syntax Compose prints."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            host = port.get("host_ip")
            out.append(f"{host + ':' if host else ''}{port['published']}:{port['target']}")
        else:
            out.append(port.removesuffix("/tcp"))
    return out


def test_only_the_proxy_is_public_and_web_and_flower_stay_on_localhost(stack):
    published = {name: _published(service) for name, service in stack["services"].items()
                 if service.get("ports")}
    assert published == {"proxy": ["80:80", "443:443"],
                         "web": ["127.0.0.1:8000:8000"],
                         "flower": ["127.0.0.1:5555:5555"]}


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_secret_stops_compose_with_its_name(tmp_path, missing):
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = compose_config(tmp_path, **env)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


# --- the TLS proxy --------------------------------------------------------------------

def test_the_proxy_runs_caddy_with_the_deploy_config_and_keeps_its_certificates(stack):
    proxy = stack["services"]["proxy"]
    assert proxy["image"].startswith("caddy:2.")
    assert (str(ROOT / "deploy" / "proxy" / "Caddyfile"), "/etc/caddy/Caddyfile") in mounts(proxy)
    assert ("/etc/datarun/certs", "/certs") in mounts(proxy)
    assert ("caddy-data", "/data") in mounts(proxy)  # ACME account, certificates
    assert {"caddy-data", "caddy-config"} <= set(stack["volumes"])
    assert proxy["environment"] == {"DATARUN_DOMAIN": SECRETS["DATARUN_DOMAIN"],
                                    "DATARUN_TLS": SECRETS["DATARUN_TLS"]}


def test_own_certificates_come_from_the_certs_dir(tmp_path):
    result = compose_config(tmp_path, **SECRETS, DATARUN_CERTS_DIR="/srv/tls")
    assert result.returncode == 0, result.stderr
    proxy = yaml.safe_load(result.stdout)["services"]["proxy"]
    assert ("/srv/tls", "/certs") in mounts(proxy)


def test_web_trusts_the_proxy_for_https_host_and_client_address(stack):
    """Behind the proxy, web takes https from X-Forwarded-Proto (production
    settings), answers to the site's name, accepts its forms, counts logins
    by the address the proxy saw, and links to https://DATARUN_DOMAIN in mail."""
    domain = SECRETS["DATARUN_DOMAIN"]
    for name in PROJECT_SERVICES:
        environment = stack["services"][name]["environment"]
        assert environment["DATARUN_ENV"] == "production"
        assert domain in environment["ALLOWED_HOSTS"].split(","), name
        assert f"https://{domain}" in environment["CSRF_TRUSTED_ORIGINS"].split(","), name
        assert str(environment["DATARUN_PROXY_COUNT"]) == "1", name
        assert environment["DATARUN_DOMAIN"] == domain, name
    env = production_settings(stack["services"]["web"]["environment"])
    assert env["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert env["SECURE_SSL_REDIRECT"] is True
    assert domain in env["ALLOWED_HOSTS"]
    assert f"https://{domain}" in env["CSRF_TRUSTED_ORIGINS"]
    assert env["DATARUN_SITE_URL"] == f"https://{domain}"


def production_settings(environment: dict) -> dict:
    """The settings a service's environment gives, read by a fresh Python
    (the production branch of config/settings.py, as the container runs it)."""
    names = ["SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "ALLOWED_HOSTS",
             "CSRF_TRUSTED_ORIGINS", "DATARUN_SITE_URL", "EMAIL_BACKEND", "EMAIL_HOST"]
    code = ("import json; from config import settings as s; "
            f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))")
    env = {k: "" if v is None else str(v) for k, v in environment.items()}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60,
                            env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_caddyfile_proxies_the_site_to_web_with_the_chosen_certificates():
    """Caddy itself (Debian's caddy) reads deploy/proxy/Caddyfile as the
    container would with the stack's environment."""
    config = caddy_adapt(DATARUN_DOMAIN="course.example.org",
                         DATARUN_TLS="/certs/fullchain.pem /certs/privkey.pem")
    server = config["apps"]["http"]["servers"]["srv0"]
    assert server["listen"] == [":443"]
    route = server["routes"][0]
    assert route["match"] == [{"host": ["course.example.org"]}]
    handlers = [h for r in route["handle"][0]["routes"] for h in r["handle"]]
    proxy = next(h for h in handlers if h["handler"] == "reverse_proxy")
    assert proxy["upstreams"] == [{"dial": "web:8000"}]
    assert config["apps"]["tls"]["certificates"]["load_files"][0] | {"tags": None} == {
        "certificate": "/certs/fullchain.pem", "key": "/certs/privkey.pem", "tags": None}


@pytest.mark.parametrize("tls, issuer", [("admin@example.org", "acme"),
                                         ("internal", "internal")])
def test_automatic_and_internal_certificates(tls, issuer):
    config = caddy_adapt(DATARUN_DOMAIN="course.example.org", DATARUN_TLS=tls)
    policy = config["apps"]["tls"]["automation"]["policies"][0]
    assert policy["subjects"] == ["course.example.org"]
    assert {i["module"] for i in policy["issuers"]} >= {issuer}
    if issuer == "acme":
        assert policy["issuers"][0]["email"] == "admin@example.org"


def caddy_adapt(**env) -> dict:
    if CADDY is None:  # as without docker-compose: a skip, which fails under CI=true
        pytest.skip("caddy is not installed (Debian: apt-get install caddy)")
    result = subprocess.run(
        [CADDY, "adapt", "--config", str(ROOT / "deploy" / "proxy" / "Caddyfile"),
         "--adapter", "caddyfile"], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


MAIL_SETTINGS = ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD",
                 "EMAIL_USE_TLS", "DEFAULT_FROM_EMAIL", "DATARUN_SITE_URL")


def test_mail_settings_reach_every_project_process(tmp_path):
    mail = {"EMAIL_HOST": "smtp.example.org", "EMAIL_PORT": "2525",
            "EMAIL_HOST_USER": "datarun", "EMAIL_HOST_PASSWORD": "mailpassword",
            "EMAIL_USE_TLS": "false", "DEFAULT_FROM_EMAIL": "course@example.org",
            "DATARUN_SITE_URL": "https://grading.example.org"}
    result = compose_config(tmp_path, **SECRETS, **mail)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in PROJECT_SERVICES:
        environment = services[name]["environment"]
        assert {k: str(environment[k]) for k in MAIL_SETTINGS} == mail, name
    # What Django makes of them in the containers: mail goes out by SMTP.
    settings_in_web = production_settings(services["web"]["environment"])
    assert settings_in_web["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert settings_in_web["EMAIL_HOST"] == "smtp.example.org"
    assert settings_in_web["DATARUN_SITE_URL"] == "https://grading.example.org"


def test_without_mail_settings_the_stack_still_starts_and_mail_goes_to_the_logs(stack):
    environment = stack["services"]["web"]["environment"]
    assert environment["EMAIL_HOST"] in ("", None)  # settings: console backend then
    assert str(environment["EMAIL_PORT"]) == "587"
    assert production_settings(environment)["EMAIL_BACKEND"] == (
        "django.core.mail.backends.console.EmailBackend")


def test_env_example_names_every_secret_mail_and_proxy_setting():
    names = {line.split("=", 1)[0] for line in (ROOT / "deploy" / "env.example").read_text()
             .splitlines() if "=" in line and not line.startswith("#")}
    assert set(SECRETS) | set(MAIL_SETTINGS) <= names
    assert {"DATARUN_CERTS_DIR", "DATARUN_HTTP_PORT", "DATARUN_HTTPS_PORT"} <= names
