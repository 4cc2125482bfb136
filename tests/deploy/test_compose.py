"""docker-compose.yml, as Compose itself reads it: the production stack a user
gets from `docker-compose up`, checked without pulling or starting anything."""
import shutil
import subprocess
import tomllib

import pytest
import yaml
from django.conf import settings
from django.urls import reverse

from tests.conftest import ROOT

COMPOSE = shutil.which("docker-compose")
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
    assert set(stack["services"]) == PROJECT_SERVICES | {"postgres", "redis"}


def test_every_service_has_a_health_check_and_waits_for_healthy_dependencies(stack):
    for name, service in stack["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
    assert set(stack["services"]["web"]["depends_on"]) == {"postgres", "redis"}
    assert set(stack["services"]["worker"]["depends_on"]) == {"web"}
    assert set(stack["services"]["scorer"]["depends_on"]) == {"web"}


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


def test_only_web_and_flower_are_published_and_on_localhost_by_default(stack):
    published = {name: service["ports"] for name, service in stack["services"].items()
                 if service.get("ports")}
    assert published == {"web": ["127.0.0.1:8000:8000/tcp"],
                         "flower": ["127.0.0.1:5555:5555/tcp"]}


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_a_missing_secret_stops_compose_with_its_name(tmp_path, missing):
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = compose_config(tmp_path, **env)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


MAIL_SETTINGS = ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD",
                 "EMAIL_USE_TLS", "DEFAULT_FROM_EMAIL", "DATARUN_SITE_URL")


def test_mail_settings_reach_every_project_process(tmp_path):
    mail = {"EMAIL_HOST": "smtp.example.org", "EMAIL_PORT": "2525",
            "EMAIL_HOST_USER": "datarun", "EMAIL_HOST_PASSWORD": "mailpassword",
            "EMAIL_USE_TLS": "false", "DEFAULT_FROM_EMAIL": "course@example.org",
            "DATARUN_SITE_URL": "https://course.example.org"}
    result = compose_config(tmp_path, **SECRETS, **mail)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in PROJECT_SERVICES:
        environment = services[name]["environment"]
        assert {k: str(environment[k]) for k in MAIL_SETTINGS} == mail, name


def test_without_mail_settings_the_stack_still_starts_and_mail_goes_to_the_logs(stack):
    environment = stack["services"]["web"]["environment"]
    assert environment["EMAIL_HOST"] in ("", None)  # settings: console backend then
    assert str(environment["EMAIL_PORT"]) == "587"


def test_env_example_names_every_mail_setting():
    names = {line.split("=", 1)[0] for line in (ROOT / "deploy" / "env.example").read_text()
             .splitlines() if "=" in line and not line.startswith("#")}
    assert set(MAIL_SETTINGS) <= names
