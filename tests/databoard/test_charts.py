"""The SVG pictures, on plain lists: what is drawn, what is left out, escaping."""
import math
import re
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree

import pytest

from databoard import charts

NAN = float("nan")


def parse(svg: str) -> ElementTree.Element:
    """Well-formed XML (so the markup cannot be broken by a label)."""
    return ElementTree.fromstring(svg)


def tooltips(svg: str, element: str) -> list[str]:
    """The hover texts of the elements of one kind that have one, in order."""
    ns = "{http://www.w3.org/2000/svg}"
    titles = [e.find(f"{ns}title") for e in parse(svg).iter(f"{ns}{element}")]
    return [t.text for t in titles if t is not None]


@pytest.mark.parametrize(("lo", "hi"), [(0.81, 0.97), (0, 1), (-3, 12), (5, 5), (1e-4, 3e-4),
                                        (1200, 98000)])
def test_nice_ticks_cover_the_range_with_round_steps(lo, hi):
    ticks = charts.nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi
    assert 2 <= len(ticks) <= 12
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1
    mantissa = steps.pop() / 10 ** math.floor(math.log10(ticks[1] - ticks[0]))
    assert round(mantissa, 6) in (1, 2, 2.5, 5)


def test_scatter_draws_one_dot_per_point_and_skips_missing_values():
    points = [(1, 0.5, "a"), (2, None, "b"), (3, NAN, "c"), (4, 0.7, "d"), (None, 0.1, "e"),
              (5, math.inf, "f"), (6, 0.9, "g")]
    svg = charts.scatter(points, title="scores", x_label="x", y_label="y")
    assert svg.count("<circle") == 3
    assert tooltips(svg, "circle") == ["a", "d", "g"]
    assert 'class="empty"' not in svg


def test_scatter_over_time_with_a_best_so_far_step_line():
    t0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    points = [(t0 + timedelta(hours=i), v, f"team {i}") for i, v in enumerate([0.7, 0.9, 0.8])]
    best = [(t0, 0.7), (t0 + timedelta(hours=1), 0.9), (t0 + timedelta(hours=2), 0.9)]
    svg = charts.scatter(points, step_line=best, time_axis=True, title="t", y_label="acc")
    assert svg.count("<circle") == 3
    path = re.search(r'<path class="step" d="([^"]+)"', svg).group(1)
    assert path.startswith("M") and path.count("V") == 2 and path.count("H") == 3
    # Ticks on the clock of the points' own zone: 09:00, not 07:00 UTC.
    labels = re.findall(r">(\d\d:\d\d)</text>", svg)
    assert labels[0] == "09:00" and "07:00" not in labels
    assert "best so far" in svg


def test_text_is_escaped_everywhere():
    evil = '<script>alert("x")</script> & co'
    svg = charts.scatter([(1, 1.0, evil)], title=evil, x_label=evil, y_label=evil)
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in svg
    assert tooltips(svg, "circle") == [evil]
    for svg in (charts.strip_chart([(evil, [(1.0, evil)])], title=evil, y_label=evil),
                charts.bar_chart([evil], [(evil, [2.0]), ("b", [1.0])], title=evil, unit=evil)):
        parse(svg)
        assert "<script>" not in svg


def test_nothing_to_draw_says_so():
    for svg in (charts.scatter([(1, None, "a")], title="s"),
                charts.strip_chart([("valid", [(NAN, "a")])], title="s"),
                charts.bar_chart(["fold 0"], [("wall", [None])], title="b"),
                charts.bar_chart([], [("wall", [])], title="b")):
        parse(svg)
        assert "no data yet" in svg and "<circle" not in svg and 'class="bar"' not in svg


def test_strip_chart_dots_per_fold_and_a_mean_line_per_step():
    groups = [("train", [(0.9, "f0"), (1.0, "f1"), (None, "f2")]),
              ("valid", [(0.6, "f0"), (0.8, "f1"), (0.7, "f2")]),
              ("test", [])]
    svg = charts.strip_chart(groups, title="acc", y_label="acc")
    assert svg.count("<circle") == 5
    means = tooltips(svg, "line")
    assert means == ["train mean: 0.95", "valid mean: 0.7"]
    assert ">test</text>" in svg  # the empty group keeps its place


def test_strip_chart_mean_line_sits_at_the_mean():
    svg = charts.strip_chart([("valid", [(0.0, "a"), (1.0, "b")])], title="t")
    cy = [float(c) for c in re.findall(r'<circle cx="[^"]+" cy="([^"]+)"', svg)]
    mean_y = float(re.search(r'class="mean"[^>]* y1="([^"]+)"', svg).group(1))
    assert mean_y == pytest.approx(sum(cy) / 2, abs=0.1)


def test_bar_chart_groups_series_and_leaves_gaps():
    svg = charts.bar_chart(["fold 0", "fold 1", "fold 2"],
                           [("wall time", [1.5, 2.0, 2.5]), ("CPU time", [1.2, None, NAN])],
                           title="time", y_label="s", unit=" s")
    assert svg.count('class="bar"') == 4
    assert tooltips(svg, "rect")[-4:] == ["fold 0, wall time: 1.5 s", "fold 0, CPU time: 1.2 s",
                                          "fold 1, wall time: 2 s", "fold 2, wall time: 2.5 s"]
    heights = [float(h) for h in re.findall(r'class="bar"[^>]* height="([^"]+)"', svg)]
    assert heights[0] < heights[2] < heights[3]  # taller for more time; bars start at 0
    assert "wall time" in svg and "CPU time" in svg  # legend


def test_charts_are_self_contained_svg():
    svg = charts.scatter([(1, 2.0, "a")], title="t")
    root = parse(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("class") == "chart"
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in svg


def test_timeline_draws_a_bar_per_started_fold_coloured_by_state():
    svg = charts.timeline([("fold 0", 0.0, 4.0, "scored"), ("fold 1", 1.0, None, "running"),
                           ("fold 2", None, None, "queued"), ("<b>", 2.0, 3.0, "error")],
                          title="Fold timeline", now=6.0)
    assert svg.count('class="span span-') == 3
    assert "fold 1: running, 1 s to 6 s (5 s)" in svg  # a running fold ends at now
    assert ">queued</text>" in svg  # no bar for a fold not started
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    assert 'fill="#067647"' in svg and 'fill="#b42318"' in svg


@pytest.mark.parametrize("values", [[0.3, 0.1 + 0.2], [1e-13, 1e-13], [2.2e-16] * 3,
                                    [-1e-15, -1e-15 * (1 + 1e-12)]])
def test_equal_values_get_an_axis_with_distinct_ticks(values):
    ticks = charts.nice_ticks(min(values), max(values))
    assert len(set(ticks)) == len(ticks) >= 2
    assert ticks[0] <= min(values) and ticks[-1] >= max(values)
    assert "<circle" in charts.strip_chart([("valid", [(v, "") for v in values])], title="t")
