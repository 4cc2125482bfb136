"""Compute pools in the organiser pages: a superuser creates one and sees its
token and start command once, its runners appear as they poll, a reset
token cuts the old one off."""
import re

import pytest

from datarun import services as datarun_services
from tests.conftest import superuser
from tests.databoard.test_views_organiser import client_for, make_user

pytestmark = pytest.mark.django_db

NEW_POOL = {"name": "gpu-lab", "description": "the lab's GPU box", "sandbox": "docker",
            "concurrency": 2, "cpus_per_slot": 4, "memory_mb_per_slot": 16384,
            "gpus_per_slot": 1}


def _token(page: str) -> str:
    return re.search(r'id="runner-token">(drp_[^<]+)<', page).group(1)


def test_a_superuser_creates_a_pool_and_sees_its_token_and_command_once():
    root = client_for(make_user("root", is_superuser=True, is_staff=True))
    response = root.post("/organiser/pools/", NEW_POOL)
    assert response.status_code == 201
    page = response.content.decode()
    token = _token(page)
    assert datarun_services.pool_for_token(token).name == "gpu-lab"
    assert f"datarun runner --url http://testserver --token {token} --sandbox docker " \
           f"--slots 2" in page.replace("&quot;", '"')
    # Shown once: the list keeps only the token's first characters.
    listing = root.get("/organiser/pools/").content.decode()
    assert token not in listing and token[:12] in listing
    assert "No runner has polled yet." in listing


def test_runners_show_on_the_pools_and_queue_pages_and_a_reset_cuts_the_old_token_off():
    root = client_for(make_user("root", is_superuser=True, is_staff=True))
    pool, old = datarun_services.pool_create(user=superuser(), name="site", sandbox="local")
    datarun_services.pools.runner_seen(pool=pool, environment={
        "host": "ward-3-box", "sandbox": "local", "cpus": 8.0, "memory_mb": 32000,
        "gpus": [{"name": "T4", "memory_mb": 15360}]})
    for url in ("/organiser/pools/", "/organiser/queue/"):
        assert "ward-3-box" in root.get(url).content.decode(), url
    assert "T4 (15360 MiB)" in root.get("/organiser/pools/").content.decode()
    reset = root.post("/organiser/pools/site/token/")
    new = _token(reset.content.decode())
    assert new != old
    assert datarun_services.pool_for_token(old) is None
    assert datarun_services.pool_for_token(new) == pool


def test_a_bad_pool_form_says_what_to_fix_and_creates_nothing():
    root = client_for(make_user("root", is_superuser=True, is_staff=True))
    response = root.post("/organiser/pools/", {**NEW_POOL, "concurrency": 0, "name": "a b"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "slug" in page.lower() or "letters" in page.lower()
    assert not datarun_services.pools_overview(user=superuser())


def test_event_admins_do_not_manage_pools():
    admin = client_for(make_user("organiser"))
    assert admin.get("/organiser/pools/").status_code == 403
