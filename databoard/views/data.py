"""Web pages: the data dashboard (staff only: the data may be sensitive).

A list of datasets, one page per dataset version (its files and hashes,
schema, Croissant link, and the DuckDB profile per split) and one per problem
(the profile of a declarative problem's version and split, with its target;
a RAMP kit's rows and folds). The numbers come from
``datarun.dataset_selectors``, which the JSON API serves as they are; the
charts are inline SVG from ``databoard.charts``.
"""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import path
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from databoard import charts
from databoard.views.errors import shows_errors
from datarun import dataset_selectors
from datarun.errors import PermissionDenied

MISSING_BARS = 30  # the columns with the most missing values drawn; the table has all


def staff_only(view):
    """Logged-out visitors go to the login page; logged-in non-staff get 403."""
    @login_required
    @require_GET
    @shows_errors
    def wrapped(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied(
                "the data dashboard is for staff: the data may be sensitive")
        return view(request, *args, **kwargs)
    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@staff_only
def dataset_list(request):
    return render(request, "databoard/data/list.html",
                  {"datasets": dataset_selectors.dataset_list()})


@staff_only
def dataset_version(request, name: str, number: int):
    target = request.GET.get("target", "").strip() or None
    dashboard = dataset_selectors.dataset_version_dashboard(
        name=name, number=number, target=target, split=request.GET.get("split") or None)
    return render(request, "databoard/data/version.html",
                  {**dashboard, "target": target, **profile_charts(dashboard["profile"])})


@staff_only
def problem(request, name: str):
    dashboard = dataset_selectors.problem_dashboard(name=name)
    if dashboard["profile"] is not None:
        pictures = profile_charts(dashboard["profile"])
    else:
        kit = dashboard["kit"]
        pictures = {"splits_chart": _splits_chart(kit["splits"]),
                    "folds_chart": _folds_chart(kit["folds"])}
    return render(request, "databoard/data/problem.html", {**dashboard, **pictures})


# --- pictures -----------------------------------------------------------------

def public_data_charts(data: dict) -> dict:
    """The event page's pictures of a problem's public data
    (``dataset_selectors.problem_public_data``)."""
    out = {"splits_chart": _splits_chart(data["splits"]),
           "folds_chart": _folds_chart(data["folds"]),
           "target_chart": None, "target_rows": []}
    if data["target"] is not None:
        out["target_chart"], out["target_rows"] = _target(data["target"])
    return out


def profile_charts(profile: dict) -> dict:
    """SVG charts of a profile (marked safe: ``databoard.charts`` escapes its text),
    and the target's table rows."""
    target = profile["target"]
    out = {"splits_chart": _splits_chart(profile["splits"]),
           "folds_chart": _folds_chart(profile["folds"]),
           "missing_chart": _missing_chart(profile["columns"]),
           "target_chart": None, "target_rows": []}
    if target is not None:
        out["target_chart"], out["target_rows"] = _target(target)
    return out


def _splits_chart(splits: list[dict]):
    return mark_safe(charts.bar_chart(
        [s["name"] for s in splits], [("rows", [s["rows"] for s in splits])],
        title="Rows per split", y_label="rows", unit=" rows"))


def _folds_chart(folds: list[dict]):
    if not folds:
        return None
    return mark_safe(charts.bar_chart(
        [f"fold {f['fold']}" for f in folds],
        [("train", [f["train"] for f in folds]), ("valid", [f["valid"] for f in folds])],
        title="Rows per cross-validation fold", y_label="rows", unit=" rows"))


def _missing_chart(columns: list[dict]):
    missing = sorted((c for c in columns if c["missing"]), key=lambda c: -c["missing_pct"])
    if not missing:
        return None
    shown = missing[:MISSING_BARS]
    title = "Missing values per column" + (
        f" (the {MISSING_BARS} with the most)" if len(missing) > MISSING_BARS else "")
    return mark_safe(charts.bar_chart(
        [c["name"] for c in shown], [("missing", [c["missing_pct"] for c in shown])],
        title=title, y_label="% of rows", unit=" %"))


def _share(count: int, total: int) -> float | None:
    return 100 * count / total if total else None


def _target(target: dict):
    """The target's chart (share of each split's rows, so that splits of
    different sizes compare) and its table rows."""
    splits = target["splits"]
    if target["kind"] == "categorical":
        totals = {s: sum(target["counts"][s]) for s in splits}
        categories = target["classes"]
        series = [(s, [_share(n, totals[s]) for n in target["counts"][s]]) for s in splits]
        rows = [{"label": c, "cells": [(target["counts"][s][i],
                                        _share(target["counts"][s][i], totals[s]))
                                       for s in splits]}
                for i, c in enumerate(categories)]
        title = f"{target['name']}: classes per split"
    else:
        edges = target["bin_edges"]
        categories = [f"{edge:.3g}" for edge in edges[:-1]]
        totals = {s: sum(target["histogram"][s]) for s in splits}
        series = [(s, [_share(n, totals[s]) for n in target["histogram"][s]]) for s in splits]
        rows = []
        title = f"{target['name']}: histogram per split (bins from {edges[0]:.4g} to " \
                f"{edges[-1]:.4g})" if edges else f"{target['name']}: no values"
    chart = mark_safe(charts.bar_chart(categories, series, title=title,
                                       y_label="% of the split's rows", unit=" %"))
    return chart, rows


urlpatterns = [
    path("data/datasets/", dataset_list, name="data-datasets"),
    path("data/datasets/<slug:name>/v<int:number>/", dataset_version, name="data-version"),
    path("data/problems/<slug:name>/", problem, name="data-problem"),
]
