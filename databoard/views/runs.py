"""The run page: one evaluation of a submission with its live log tail, the
fold timeline, scores, metrics, metadata, artifacts and, for a
reproduction, how it compares with the run it reproduces."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from databoard import charts, permissions, selectors, services
from databoard.views.errors import shows_errors
from datarun import run_selectors
from datarun import selectors as datarun_selectors
from datarun.states import FINAL_STATES

POLL_SECONDS = 2


def _seconds_since(start, moment) -> float | None:
    return (moment - start).total_seconds() if start and moment else None


def _live_context(request, submission, run_id: int) -> dict:
    event = submission.team.event
    run = selectors.evaluation_as_seen_by(run_selectors.run_detail(run_id), event=event,
                                          user=request.user)
    begin = run["started_at"] or run["created_at"]
    now = timezone.now()
    chart = charts.timeline(
        [(f"fold {f['fold']}", _seconds_since(begin, f["started_at"]),
          _seconds_since(begin, f["finished_at"]), f["state"]) for f in run["folds"]],
        title="Fold timeline", now=_seconds_since(begin, run["finished_at"] or now) or 0.0)
    private_ok = permissions.can_see_private_scores(event, request.user)
    return {
        "submission": submission, "event": event, "run": run,
        "final": run["state"] in FINAL_STATES,
        "timeline": mark_safe(chart),  # charts escape every text they draw
        "score_types": datarun_selectors.score_types_for(event.problem_name),
        "steps": ("train", "valid", "test") if private_ok else ("train", "valid"),
        "private_ok": private_ok, "poll_seconds": POLL_SECONDS,
    }


@login_required
@shows_errors
def runs(request, pk):
    """The submission's current run."""
    submission = services.submission_get(submission_id=pk, user=request.user)
    return redirect(f"/submissions/{submission.id}/runs/{submission.evaluation_id}/")


@login_required
@shows_errors
def run_page(request, pk, run):
    submission = services.submission_get(submission_id=pk, user=request.user)
    run_id = services.submission_run_id(submission=submission, run_id=run)
    context = _live_context(request, submission, run_id)
    all_runs = services.submission_runs(submission=submission)
    log = run_selectors.run_log(run_id)
    context.update(
        runs=all_runs, this=next(r for r in all_runs if r["id"] == run_id), log=log,
        log_url=f"/api/v1/submissions/{submission.id}/runs/{run_id}/logs/",
        artifact_url=f"/api/v1/submissions/{submission.id}/runs/{run_id}/artifacts/",
        is_admin=submission.team.event.is_admin(request.user),
        metadata_rows=_metadata_rows(context["run"]),
        reproduction_rows=[*(context["run"]["reproduction"] or {}).get("inputs", []),
                           *(context["run"]["reproduction"] or {}).get("software", [])],
    )
    return render(request, "databoard/runs/run.html", context)


@login_required
@shows_errors
def run_live(request, pk, run):
    """The live part of the run page (state, timeline, folds); htmx polls it
    until the run is over, then reloads the page once."""
    submission = services.submission_get(submission_id=pk, user=request.user)
    run_id = services.submission_run_id(submission=submission, run_id=run)
    context = _live_context(request, submission, run_id)
    response = render(request, "databoard/runs/_live.html", context)
    if context["final"] and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@require_POST
@login_required
@shows_errors
def reproduce(request, pk):
    run_id = request.POST.get("run") or None
    new_id = services.submission_reproduce(
        submission_id=pk, user=request.user, run_id=int(run_id) if run_id else None)
    return redirect(f"/submissions/{pk}/runs/{new_id}/")


def _metadata_rows(run: dict) -> list[tuple[str, str]]:
    """What the run was given, as (what, value) rows."""
    meta = run.get("metadata") or {}
    rows = [("code hash", meta.get("code_hash", run.get("code_hash", ""))),
            ("data hash", meta.get("data_hash", "")),
            ("fold hash", meta.get("folds_hash", ""))]
    if meta.get("dataset_version"):
        rows.append(("dataset version", f"{meta['dataset_version']['name']} "
                                        f"(manifest {meta['dataset_version']['manifest_hash']})"))
    if meta.get("split_hash"):
        rows.append(("split hash", meta["split_hash"]))
    problem = meta.get("problem") or {}
    if problem:
        rows.append(("problem", f"{problem.get('name')} ({problem.get('kind')}, "
                                f"{problem.get('n_train')} training rows, "
                                f"{problem.get('n_test')} test rows, "
                                f"{problem.get('n_folds')} folds)"))
    limits = meta.get("limits") or run.get("limits") or {}
    rows.append(("limits per fold", ", ".join(f"{k} {v}" for k, v in sorted(limits.items()))))
    sandbox = meta.get("sandbox") or {}
    rows.append(("sandbox", " · ".join(str(v) for v in sandbox.values()) or
                 run.get("sandbox_backend", "")))
    server = meta.get("server") or {}
    if server:
        rows.append(("server software", _software(server)))
    seen = set()
    for fold in run["folds"]:
        env = fold.get("environment") or {}
        if env:
            text = _software(env)
            if text not in seen:
                seen.add(text)
                rows.append((f"worker software (fold {fold['fold']})", text))
        if fold.get("runtime_image") and fold["runtime_image"] not in seen:
            seen.add(fold["runtime_image"])
            rows.append((f"runtime image (fold {fold['fold']})", fold["runtime_image"]))
    for name, digest in sorted((meta.get("files") or run.get("files") or {}).items()):
        rows.append((f"file {name}", f"sha256 {digest}"))
    return rows


def _software(env: dict) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in sorted((env.get("packages") or {}).items())
                         if v)
    where = env.get("host", "?") + (f", {env['sandbox']} sandbox" if env.get("sandbox") else "")
    return f"Python {env.get('python', '?')} on {where}: {packages}"


urlpatterns = [
    path("submissions/<int:pk>/runs/", runs),
    path("submissions/<int:pk>/runs/<int:run>/", run_page),
    path("submissions/<int:pk>/runs/<int:run>/live/", run_live),
    path("submissions/<int:pk>/reproduce/", reproduce),
]
