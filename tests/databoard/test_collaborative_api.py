"""The collaborative phase through the API alone: two teams, the public
opening in the past; bob reads alice's code, diffs it with his own, imports
it, submits through the API, and the credit shows on both submissions."""
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from databoard import services
from databoard.models import SandboxImport
from tests.databoard.test_api import (
    STARTING_KIT,
    alice,  # noqa: F401  (a fixture)
    assert_error,
    client_for,
    event,  # noqa: F401  (a fixture)
    make_user,
    post_submission,
    signed_up,
)

pytestmark = pytest.mark.django_db

ALICES = STARTING_KIT.replace(b"StandardScaler()", b"StandardScaler(with_mean=False)")


@pytest.fixture
def collaborative(event):  # noqa: F811
    event.public_opens_at = timezone.now() - timedelta(hours=1)
    event.save()
    return event


def test_read_diff_import_submit_and_credit_through_the_api(collaborative, alice):  # noqa: F811
    bob = signed_up("bob", collaborative)
    alice_api, bob_api = client_for(alice), client_for(bob)
    theirs = post_submission(alice_api, "alices", {"estimator.py": ALICES}).json()["id"]
    mine = post_submission(bob_api, "bobs").json()["id"]

    code = bob_api.get(f"/api/v1/submissions/{theirs}/code/").json()
    assert code["team"] == "alice" and code["files"]["estimator.py"] == ALICES.decode()

    diff = bob_api.get(f"/api/v1/submissions/{theirs}/diff/?against={mine}").json()
    assert diff["against"]["id"] == mine and diff["submission"]["id"] == theirs
    [estimator] = diff["files"]
    assert estimator["changed"]
    assert "-    return make_pipeline(StandardScaler(), " in estimator["diff"]
    assert "+    return make_pipeline(StandardScaler(with_mean=False), " in estimator["diff"]

    imported = bob_api.post(f"/api/v1/submissions/{theirs}/import/").json()
    assert imported["files"] == {"estimator.py": ALICES.decode()}
    assert imported["credited"] is True
    assert [s["id"] for s in imported["pending_credits"]] == [theirs]
    # The sandbox holds the imported code too (as the web page would show it).
    assert services.sandbox_files(event=collaborative, user=bob)["estimator.py"] == \
        ALICES.decode()

    # Submitted through the API, not the web sandbox: credited all the same.
    reused = post_submission(bob_api, "bobs-with-alices", {"estimator.py": ALICES}).json()["id"]
    credits = bob_api.get(f"/api/v1/submissions/{reused}/credits/").json()
    assert [(c["id"], c["team"]) for c in credits["credits"]] == [(theirs, "alice")]
    assert credits["reused_by"] == []
    on_theirs = alice_api.get(f"/api/v1/submissions/{theirs}/credits/").json()
    assert [(c["id"], c["team"], c["code_readable"]) for c in on_theirs["reused_by"]] == [
        (reused, "bob", True)]
    # Credited once: the import is no longer pending.
    assert not SandboxImport.objects.filter(team__name="bob").exists()
    later = post_submission(bob_api, "bobs-later").json()["id"]
    assert bob_api.get(f"/api/v1/submissions/{later}/credits/").json()["credits"] == []
    # The web page of alice's code names the submission that reused it.
    web = Client()
    web.force_login(alice)
    assert "bobs-with-alices" in web.get(f"/submissions/{theirs}/code/").content.decode()


def test_before_the_public_opening_other_teams_code_stays_hidden(event, alice):  # noqa: F811
    bob = signed_up("bob", event)
    theirs = post_submission(client_for(alice), "alices").json()["id"]
    mine = post_submission(client_for(bob), "bobs").json()["id"]
    bob_api = client_for(bob)
    for response in (bob_api.get(f"/api/v1/submissions/{theirs}/code/"),
                     bob_api.get(f"/api/v1/submissions/{mine}/diff/?against={theirs}"),
                     bob_api.post(f"/api/v1/submissions/{theirs}/import/"),
                     bob_api.get(f"/api/v1/submissions/{theirs}/credits/")):
        assert_error(response, 404, "not_found", f"no submission {theirs} whose code you may read")
    assert not SandboxImport.objects.exists()


def test_importing_needs_an_approved_team_and_a_diff_needs_a_second_submission(
        collaborative, alice):  # noqa: F811
    theirs = post_submission(client_for(alice), "alices").json()["id"]
    outsider = client_for(make_user("carol"))  # not signed up: reads nothing of others
    assert_error(outsider.post(f"/api/v1/submissions/{theirs}/import/"), 404, "not_found")
    assert_error(client_for(alice).get(f"/api/v1/submissions/{theirs}/diff/"), 400,
                 "invalid", "?against=<id>")
    assert_error(client_for(alice).get(f"/api/v1/submissions/{theirs}/diff/?against=x1"), 400,
                 "invalid", "?against=<id>")
