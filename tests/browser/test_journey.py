"""A participant's journey in a real browser: sign up, join the iris event,
edit the starting kit in the sandbox's editor, submit, watch it being scored
live and find it on the leaderboard. Also: a refused submission names its rule.

Each step asserts what the user sees; the pages must raise no JavaScript error
and load nothing from outside the server (no CDN). Screenshots of the main
pages go to artifacts/screenshots/.
"""
import re
import time
from contextlib import contextmanager

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from databoard import services
from databoard.models import Profile, Submission
from datarun import selectors as datarun_selectors
from tests.conftest import EXAMPLES
from tests.integration.helpers import make_event

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

EVENT = "iris"
TITLE = "Iris species classification"
PASSWORD = "a-Long-browser-passw0rd"
SCORED_WITHIN_S = 120


def iris_event(**rules):
    event = make_event(EXAMPLES / "iris", EVENT, **rules)
    event.title = TITLE
    event.description = "Classify **iris** flowers into three species."
    event.save()
    return event


class Steps:
    """Times each step of a journey, printed at the end."""

    def __init__(self):
        self.times: list[tuple[str, float]] = []
        self.start = time.monotonic()

    @contextmanager
    def __call__(self, name: str):
        started = time.monotonic()
        yield
        self.times.append((name, time.monotonic() - started))

    def report(self) -> str:
        lines = [f"  {seconds:6.2f} s  {name}" for name, seconds in self.times]
        lines.append(f"  {time.monotonic() - self.start:6.2f} s  in all")
        return "\n".join(lines)


def editor_value(page, index: int = 0) -> str:
    """The text of a sandbox editor, once CodeMirror has replaced its text area."""
    page.wait_for_function("i => document.querySelectorAll('.CodeMirror')[i]?.CodeMirror",
                           arg=index)
    return page.evaluate("i => document.querySelectorAll('.CodeMirror')[i].CodeMirror.getValue()",
                         index)


def test_second_submission_within_the_interval_is_refused(visit):
    from playwright.sync_api import expect

    event = iris_event(min_submission_interval_s=3600)
    user = get_user_model().objects.create(
        username="browser-bob", password=PBKDF2PasswordHasher().encode(
            PASSWORD, PBKDF2PasswordHasher().salt()))  # the server's hasher, not the tests'
    Profile.objects.create(user=user)
    services.event_signup(event=event, user=user)
    page = visit.page

    page.goto(f"/accounts/login/?next=/events/{EVENT}/sandbox/")
    page.get_by_label("Username").fill("browser-bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(f"/events/{EVENT}/sandbox/$"))
    expect(page.get_by_text("Minimum time between two submissions of a team: 1 h")).to_be_visible()

    page.get_by_label("Submission name").fill("first")
    page.get_by_role("button", name="Save and submit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Submission first")

    page.goto(f"/events/{EVENT}/sandbox/")
    page.get_by_label("Submission name").fill("second")
    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith("/sandbox/")) as answer:
        page.get_by_role("button", name="Save and submit").click()
    assert answer.value.status == 429
    refusal = page.locator(".refusal")
    expect(refusal).to_contain_text("Submission refused:")
    expect(refusal).to_contain_text("the minimum time between two submissions of a team is 1 h")
    expect(refusal).to_contain_text("Your team may submit from")
    expect(page.get_by_label("Submission name")).to_have_value("second")  # kept for later
    visit.shot("sandbox-refused")
    assert Submission.objects.filter(team__event=event).count() == 1
    # Chromium logs the 429 answer of the form's POST as a console error.
    assert visit.problems(allow_console=("status of 429",)) == []


def test_participant_journey(visit, celery_worker_process):
    from playwright.sync_api import expect

    iris_event()
    page, step = visit.page, Steps()
    username = "browser-alice"

    with step("events list"):
        page.goto("/events/")
        expect(page).to_have_title(re.compile("^Events"))
        expect(page.get_by_role("heading", name="Events", level=1)).to_be_visible()
        row = page.get_by_role("row").filter(has_text=TITLE)
        expect(row).to_contain_text("open")
        visit.shot("events-list")

    with step("sign up for an account"):
        page.get_by_role("navigation").get_by_role("link", name="Sign up").click()
        expect(page).to_have_url(re.compile("/accounts/signup/$"))
        page.get_by_label("Username").fill(username)
        page.get_by_label("Email").fill("alice@example.org")
        page.get_by_label(re.compile(r"^Password:?$")).fill(PASSWORD)
        page.get_by_label("Password confirmation").fill(PASSWORD)
        page.get_by_role("button", name="Create my account").click()
        expect(page.locator(".messages")).to_contain_text(f"Welcome, {username}")
        expect(page.get_by_role("navigation").get_by_role("link", name=username)).to_be_visible()
        expect(page.get_by_role("button", name="Log out")).to_be_visible()

    with step("open the event"):
        page.get_by_role("navigation").get_by_role("link", name="Events").click()
        page.get_by_role("link", name=TITLE).click()
        expect(page).to_have_url(re.compile(f"/events/{EVENT}/$"))
        expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
        expect(page.locator(".description strong")).to_have_text("iris")  # Markdown rendered
        expect(page.get_by_role("link", name="Sandbox")).to_have_count(0)  # not signed up yet
        # app.js told the server the browser's zone (Europe/Paris, set on the context).
        expect(page.locator("footer")).to_contain_text("Europe/Paris (from your browser)")

    with step("sign up to the event"):
        page.get_by_role("button", name="Sign up").click()
        expect(page.locator(".messages")).to_contain_text(f"You are signed up to {TITLE}")
        page.get_by_role("heading", level=1).get_by_role("link", name=TITLE).click()
        expect(page.get_by_text("You are signed up.")).to_be_visible()
        visit.shot("event-home")

    with step("open the sandbox"):
        page.get_by_role("link", name="Sandbox").first.click()
        expect(page).to_have_url(re.compile(f"/events/{EVENT}/sandbox/$"))
        expect(page.get_by_role("heading", name="estimator.py")).to_be_visible()
        editor = page.locator(".CodeMirror").first
        expect(editor).to_be_visible()  # CodeMirror replaced the text area
        assert "LogisticRegression(max_iter=1000)" in editor_value(page)

    with step("edit estimator.py in the editor"):
        editor.click()
        page.keyboard.press("Control+Home")
        page.keyboard.type("# tuned in the browser\n")
        # Larger changes through CodeMirror's own API, as a paste would make them.
        # Each fold sleeps a second, so that the page shows the run going on.
        page.evaluate("""() => {
            const cm = document.querySelector('.CodeMirror').CodeMirror;
            cm.setValue(cm.getValue()
                .replace('max_iter=1000', 'max_iter=500, C=0.5')
                .replace('def get_estimator():\\n',
                         'def get_estimator():\\n    time.sleep(1)  # slow enough to watch\\n')
                .replace('from sklearn.linear_model', 'import time\\nfrom sklearn.linear_model'));
        }""")
        expect(editor).to_contain_text("# tuned in the browser")
        expect(editor).to_contain_text("C=0.5")
        expect(editor).to_contain_text("time.sleep(1)")
        visit.shot("sandbox")

    with step("save"):
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".messages")).to_contain_text("Sandbox saved.")
        saved = editor_value(page)
        assert saved.startswith("# tuned in the browser\nimport time\n"), saved
        assert "LogisticRegression(max_iter=500, C=0.5)" in saved, saved
        assert "    time.sleep(1)  # slow enough to watch\n" in saved, saved

    with step("submit"):
        status_polls = []
        page.on("request", lambda r: "/status/" in r.url and status_polls.append(r.url))
        page.get_by_label("Submission name").fill("browser-first")
        page.get_by_role("button", name="Save and submit").click()
        expect(page).to_have_url(re.compile(r"/submissions/\d+/$"))
        submission_url = page.url
        expect(page.get_by_role("heading", level=1)).to_have_text("Submission browser-first")
        expect(page.locator(".messages")).to_contain_text(
            "Submission browser-first is queued for evaluation.")
        state = page.locator("#submission-state")
        first_state = state.text_content()
        assert first_state in ("new", "queued", "running"), first_state

    with step("scored live (htmx polling)"):
        seen = [first_state]
        deadline = time.monotonic() + SCORED_WITHIN_S
        while seen[-1] != "scored":
            assert time.monotonic() < deadline, (
                f"still {seen[-1]} after {SCORED_WITHIN_S} s (states seen: {seen})")
            try:
                current = state.text_content(timeout=2_000)
            except Exception:  # the page reloading itself at the end
                current = None
            if current and current != seen[-1]:
                seen.append(current.strip())
                if current.strip() == "running":
                    expect(page.locator("#submission-status")).to_contain_text(
                        re.compile(r"fold \d of 5 done"))
                    expect(page.locator("#submission-status progress")).to_be_attached()
            time.sleep(0.1)
        assert page.url == submission_url  # no navigation away, no manual reload
        assert status_polls, "the page never polled its status"
        assert "error" not in seen, seen
        assert "running" in seen, f"the page never showed the run going on: {seen}"
        expect(page.locator("#submission-status")).to_contain_text("all 5 folds scored")
        expect(page.get_by_text("updated every")).to_have_count(0)  # stopped polling
        folds = page.locator("table.folds tbody tr")
        expect(folds).to_have_count(5)
        for i in range(5):
            fold = folds.nth(i)
            expect(fold.locator("td").nth(0)).to_have_text(str(i))
            expect(fold.locator("td").nth(1).locator(".state")).to_have_text("scored")
            # acc on train and valid, at the score's precision (3 decimals).
            expect(fold.locator("td").nth(2)).to_have_text(re.compile(r"^[01]\.\d{3}$"))
            expect(fold.locator("td").nth(3)).to_have_text(re.compile(r"^[01]\.\d{3}$"))
        # The page reloaded itself when the state became final: the summary is there.
        submission = Submission.objects.get(name="browser-first")
        detail = datarun_selectors.evaluation_detail(submission.evaluation_id)
        bagged = f"{detail['scores']['acc']['valid']['bagged']:.3f}"
        scores = page.locator("table.scores")
        expect(scores).to_be_visible()
        expect(scores.get_by_role("row").filter(has_text="acc (official)")).to_contain_text(bagged)
        expect(page.get_by_text("Test scores are shown when the event closes")).to_be_visible()
        visit.shot("submission-scored")
        print(f"states seen on the submission page: {' -> '.join(seen)}")

    with step("leaderboard"):
        page.get_by_role("link", name=TITLE).first.click()
        # The event page's leaderboard section shows the top rows already.
        expect(page.locator("#leaderboard-top")).to_contain_text("browser-first")
        page.locator(".actions").get_by_role("link", name="Leaderboard").click()
        expect(page).to_have_url(re.compile(f"/events/{EVENT}/leaderboard/"))
        row = page.get_by_role("row").filter(has_text="browser-first")
        expect(row).to_have_count(1)
        expect(row).to_contain_text(bagged)
        expect(row).to_contain_text(username)  # the team is named after its user
        visit.shot("leaderboard")

    with step("log out and in again"):
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("navigation").get_by_role("link", name="Log in")).to_be_visible()
        page.get_by_role("navigation").get_by_role("link", name="Log in").click()
        expect(page.get_by_role("heading", name="Log in", level=1)).to_be_visible()
        visit.shot("login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("main").get_by_role("button", name="Log in").click()
        expect(page.get_by_role("navigation").get_by_role("link", name=username)).to_be_visible()
        page.goto("/my/submissions/")
        expect(page.get_by_role("row").filter(has_text="browser-first")).to_contain_text(bagged)

    print("journey steps:\n" + step.report())
    assert visit.problems() == []
