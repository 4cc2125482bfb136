"""The limits an event shows are the limits its folds run under.

A declarative problem sets its own limits (120 s, 1024 MiB); an event on it
either leaves its limit fields empty (the problem's apply) or sets its own
(they win). What the API, the event page, the starting kit and the run
metadata show is compared with what the worker is handed for each fold
(``fold_run_claim``'s ticket, which the sandbox enforces), and, through a real
worker, with the limit a fold is actually stopped at.
"""
import io
import json
import zipfile

import pytest
from django.test import Client

from databoard import services as databoard_services
from databoard.models import Event
from databoard.templatetags.databoard import seconds
from datarun.models import FoldRun
from datarun.services.datasets import dataset_version_create
from datarun.services.declarative import problem_create_declarative
from datarun.services.fold_runs import fold_run_claim
from tests.conftest import EXAMPLES
from tests.databoard.test_api import client_for, make_user, post_submission
from tests.integration.helpers import participant, submit, wait_final

PROBLEM_LIMITS = {"wall_time_s": 120, "memory_mb": 1024, "cpus": 1}
STARTING_KIT = (EXAMPLES / "iris" / "submissions" / "starting_kit" / "estimator.py").read_bytes()


def declarative_iris(name: str, limits: dict) -> str:
    lines = []
    for part in ("train", "test"):
        header, *rows = (EXAMPLES / "iris" / "data" / f"{part}.csv").read_text().splitlines()
        lines += [] if lines else [f"{header},part"]
        lines += [f"{row},{part}" for row in rows]
    version, _ = dataset_version_create(dataset=f"{name}-data",
                                        uploads={"iris.csv": "\n".join(lines).encode()})
    problem_create_declarative(spec={
        "name": name, "dataset": f"{version.dataset.name}@{version.number}",
        "target": "species", "ignore": ["part"], "task": "multiclass",
        "score_types": ["accuracy"],
        "split": {"test": {"method": "given", "column": "part"},
                  "cv": {"method": "stratified_kfold", "n_splits": 2, "seed": 1}},
        "workflow": "estimator", "limits": limits,
    })
    return name


def _shown_everywhere(event: Event) -> list[dict]:
    """The limits as the API, the starting kit and the event page show them."""
    api = client_for(None).get(f"/api/v1/events/{event.name}/").json()["limits"]
    kit = zipfile.ZipFile(io.BytesIO(
        client_for(None).get(f"/api/v1/events/{event.name}/starting-kit.zip").content))
    in_kit = json.loads(kit.read(f"{event.problem_name}/limits.json"))["limits"]
    page = Client().get(f"/events/{event.name}/").content.decode()
    assert f"wall time {seconds(api['wall_time_s'])}, memory {api['memory_mb']} MiB" in page
    return [api, in_kit]


@pytest.mark.django_db
@pytest.mark.parametrize("event_fields, expected", [
    ({}, PROBLEM_LIMITS),
    ({"fold_time_limit_s": 30, "fold_memory_limit_mb": 512},
     {"wall_time_s": 30, "memory_mb": 512, "cpus": 1}),
], ids=["event-without-limits", "event-with-limits"])
def test_the_limits_shown_are_the_ones_each_fold_runs_under(event_fields, expected):
    problem = declarative_iris("iris-limits", PROBLEM_LIMITS)
    event = Event.objects.create(name="limits", title="limits", problem_name=problem,
                                 **event_fields)
    alice = make_user("alice")
    databoard_services.event_signup(event=event, user=alice)
    client = client_for(alice)

    for shown in _shown_everywhere(event):
        assert shown == expected
    submission = post_submission(client, event=event.name).json()
    run = client.get(f"/api/v1/submissions/{submission['id']}/runs/"
                     f"{submission['evaluation_id']}/").json()
    assert run["metadata"]["limits"] == expected
    # What the worker hands the sandbox for every fold.
    for fold_run in FoldRun.objects.filter(evaluation_id=submission["evaluation_id"]):
        spec = fold_run_claim(fold_run_id=fold_run.id,
                              environment={"host": "test", "sandbox": "local"})
        assert spec.limits == expected


@pytest.mark.django_db
def test_the_run_metadata_names_the_dataset_version_as_everywhere_else():
    problem = declarative_iris("clinic", PROBLEM_LIMITS)
    Event.objects.create(name="clinic", title="clinic", problem_name=problem)
    alice = make_user("alice")
    databoard_services.event_signup(event=Event.objects.get(name="clinic"), user=alice)
    submission = post_submission(client_for(alice), event="clinic").json()
    run = client_for(alice).get(f"/api/v1/submissions/{submission['id']}/runs/"
                                f"{submission['evaluation_id']}/").json()
    # As the problem spec, dataset_apply and the dashboard name it: NAME@N.
    assert run["metadata"]["dataset_version"]["name"] == "clinic-data@1"


def test_a_downloaded_kit_runs_locally_under_the_events_limits(tmp_path):
    from workers.local_runs import DEFAULT_LIMITS, kit_limits

    assert kit_limits(tmp_path) == DEFAULT_LIMITS
    (tmp_path / "limits.json").write_text(json.dumps(
        {"event": "e", "limits": {"wall_time_s": 30, "memory_mb": 512, "cpus": 2}}))
    limits = kit_limits(tmp_path)
    assert (limits.wall_time_s, limits.memory_mb, limits.cpus) == (30, 512, 2)


SLEEPER = '''
import time

from sklearn.linear_model import LogisticRegression


class Sleeper(LogisticRegression):
    def fit(self, X, y):
        time.sleep(60)
        return super().fit(X, y)


def get_estimator():
    return Sleeper()
'''


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("event_fields, shown_s", [({}, 2), ({"fold_time_limit_s": 1.5}, 1.5)],
                         ids=["event-without-limits", "event-with-limits"])
def test_a_fold_is_stopped_at_the_time_limit_the_event_shows(celery_worker_process,
                                                             event_fields, shown_s):
    problem = declarative_iris("iris-short", {"wall_time_s": 2, "memory_mb": 1024, "cpus": 1})
    Event.objects.create(name="short", title="short", problem_name=problem, **event_fields)
    client = participant()
    assert client.post("/api/v1/events/short/signup/").status_code == 201
    assert client.get("/api/v1/events/short/").json()["limits"]["wall_time_s"] == shown_s

    sub = submit(client, "short", "sleeper", {"estimator.py": SLEEPER})
    detail = wait_final(client, sub["id"], timeout=90)
    assert detail["state"] == "error"
    assert f"exceeded the time limit of {shown_s:g} s" in detail["error"]
