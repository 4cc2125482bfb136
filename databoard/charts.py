"""Pictures as inline SVG strings: scatter plots (with an optional step line),
strip charts (one dot per value, a mean line per group) and grouped bars.

Plain Python over lists of numbers: no Django, no JavaScript, nothing fetched.
Every text that goes into the SVG (titles, labels, tooltips) is escaped here,
so the caller may mark the result safe. Missing values (None, NaN, infinities)
are left out. Tooltips are SVG ``<title>`` elements, which browsers show on
hover.
"""
import html
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50
COLOURS = ("#2457c5", "#d97706", "#067647", "#b42318", "#7a3ec8")
_EPOCH = datetime(1970, 1, 1)
# Time-axis steps, seconds: 1 min to 30 days.
_TIME_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400,
               7 * 86400, 14 * 86400, 30 * 86400)


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def is_number(value) -> bool:
    """A value that can be drawn: a finite int or float (bools are not numbers here)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values spanning [lo, hi] (1, 2, 2.5 or 5 times a
    power of ten apart), the first at or below ``lo``, the last at or above ``hi``."""
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):
        # Equal values, or equal but for float noise (0.1 + 0.2 and 0.3): a
        # range around them, else the steps would vanish below the rounding.
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    first = math.floor(lo / step + 1e-9) * step
    n = max(1, math.ceil((hi - first) / step - 1e-9))
    # Round off float noise at a few digits below the step, whatever its size.
    digits = 3 - math.floor(math.log10(step))
    return [round(first + i * step, digits) for i in range(n + 1)]


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(round(step, decimals) - step) > 1e-9 * step:
        decimals += 1  # steps like 0.25
    return f"{value:.{decimals}f}"


def _wall_seconds(moment: datetime) -> float:
    """Seconds on the clock of the moment's own time zone: ticks fall on its round hours."""
    return (moment.replace(tzinfo=None) - _EPOCH).total_seconds()


def _time_ticks(lo: float, hi: float) -> tuple[list[float], str]:
    span = max(hi - lo, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= 6), _TIME_STEPS[-1])
    first = math.floor(lo / step) * step
    ticks = [first + i * step for i in range(int(math.ceil((hi - first) / step)) + 1)]
    fmt = "%H:%M" if span < 86400 else ("%m-%d %H:%M" if step < 86400 else "%Y-%m-%d")
    return ticks, fmt


class _Frame:
    """A plot area with its scales, and the SVG parts drawn so far."""

    def __init__(self, title: str, x_label: str, y_label: str):
        self.parts: list[str] = []
        self.title = title
        self.x_label, self.y_label = x_label, y_label
        self.x0, self.x1 = LEFT, WIDTH - RIGHT
        self.y0, self.y1 = HEIGHT - BOTTOM, TOP
        self.x_domain = self.y_domain = (0.0, 1.0)

    def x(self, value: float) -> float:
        lo, hi = self.x_domain
        return self.x0 + (value - lo) / ((hi - lo) or 1.0) * (self.x1 - self.x0)

    def y(self, value: float) -> float:
        lo, hi = self.y_domain
        return self.y0 - (value - lo) / ((hi - lo) or 1.0) * (self.y0 - self.y1)

    def y_axis(self, values: Iterable[float], *, zero: bool = False) -> None:
        values = list(values) + ([0.0] if zero else [])
        ticks = nice_ticks(min(values), max(values))
        self.y_domain = (ticks[0], ticks[-1])
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        for tick in ticks:
            y = self.y(tick)
            self.parts.append(
                f'<line class="grid" x1="{self.x0}" x2="{self.x1}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="#e5e8ee"/>'
                f'<text x="{self.x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                f'{_esc(_tick_label(tick, step))}</text>')

    def x_axis(self, values: Iterable[float], *, time_axis: bool = False) -> None:
        values = list(values)
        lo, hi = min(values), max(values)
        if time_axis:
            ticks, fmt = _time_ticks(lo, hi)
            labels = [(_EPOCH + timedelta(seconds=t)).strftime(fmt) for t in ticks]
        else:
            ticks = nice_ticks(lo, hi)
            step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
            labels = [_tick_label(t, step) for t in ticks]
        self.x_domain = (ticks[0], ticks[-1])
        for tick, label in zip(ticks, labels, strict=True):
            x = self.x(tick)
            self.parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.y0}" y2="{self.y0 + 4}" '
                f'stroke="#5b6475"/>'
                f'<text x="{x:.1f}" y="{self.y0 + 16}" text-anchor="middle" font-size="11">'
                f'{_esc(label)}</text>')

    def category_axis(self, names: Sequence[str]) -> list[tuple[float, float]]:
        """Bands for the categories, as (left, right) pixel pairs."""
        width = (self.x1 - self.x0) / max(len(names), 1)
        bands = []
        for i, name in enumerate(names):
            left = self.x0 + i * width
            bands.append((left, left + width))
            self.parts.append(
                f'<text x="{left + width / 2:.1f}" y="{self.y0 + 16}" text-anchor="middle" '
                f'font-size="11">{_esc(name)}</text>')
        return bands

    def legend(self, names: Sequence[str]) -> None:
        x = self.x0
        for i, name in enumerate(names):
            colour = COLOURS[i % len(COLOURS)]
            self.parts.append(
                f'<rect x="{x}" y="{TOP - 16}" width="10" height="10" fill="{colour}"/>'
                f'<text x="{x + 14}" y="{TOP - 7}" font-size="11">{_esc(name)}</text>')
            x += 24 + 7 * len(str(name))

    def svg(self) -> str:
        axes = (
            f'<line x1="{self.x0}" x2="{self.x1}" y1="{self.y0}" y2="{self.y0}" '
            f'stroke="#5b6475"/>'
            f'<line x1="{self.x0}" x2="{self.x0}" y1="{self.y0}" y2="{self.y1}" '
            f'stroke="#5b6475"/>'
            f'<text x="{(self.x0 + self.x1) / 2:.1f}" y="{HEIGHT - 10}" text-anchor="middle" '
            f'font-size="12">{_esc(self.x_label)}</text>'
            f'<text x="14" y="{(self.y0 + self.y1) / 2:.1f}" text-anchor="middle" '
            f'font-size="12" transform="rotate(-90 14 {(self.y0 + self.y1) / 2:.1f})">'
            f'{_esc(self.y_label)}</text>'
        )
        return (
            f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
            f'font-family="system-ui, sans-serif" '
            f'aria-label="{_esc(self.title)}"><title>{_esc(self.title)}</title>'
            f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="14" '
            f'font-weight="600">{_esc(self.title)}</text>'
            + "".join(self.parts) + axes + "</svg>"
        )

    def empty(self, message: str = "no data yet") -> str:
        self.parts.append(
            f'<text class="empty" x="{(self.x0 + self.x1) / 2:.1f}" '
            f'y="{(self.y0 + self.y1) / 2:.1f}" text-anchor="middle" fill="#5b6475">'
            f'{_esc(message)}</text>')
        return self.svg()


def _dot(x: float, y: float, tooltip: str, colour: str, radius: float = 4) -> str:
    return (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{colour}" '
            f'fill-opacity="0.75"><title>{_esc(tooltip)}</title></circle>')


def scatter(points: Iterable[tuple], *, title: str, x_label: str = "", y_label: str = "",
            step_line: Iterable[tuple] = (), step_label: str = "best so far",
            time_axis: bool = False) -> str:
    """One dot per ``(x, y, tooltip)`` point and, when given, a step line
    through ``(x, y)`` pairs (e.g. the best score so far). With ``time_axis``
    the x values are datetimes, drawn on the clock of their own time zone."""
    def x_value(x):
        return _wall_seconds(x) if time_axis else x

    dots = [(x_value(x), y, tip) for x, y, tip in points
            if x is not None and (time_axis or is_number(x)) and is_number(y)]
    line = [(x_value(x), y) for x, y in step_line
            if x is not None and (time_axis or is_number(x)) and is_number(y)]
    frame = _Frame(title, x_label, y_label)
    if not dots:
        return frame.empty()
    frame.y_axis([y for _, y, _ in dots] + [y for _, y in line])
    frame.x_axis([x for x, _, _ in dots] + [x for x, _ in line], time_axis=time_axis)
    if line:
        (x, y), rest = line[0], line[1:]
        path = [f"M{frame.x(x):.1f},{frame.y(y):.1f}"]
        for x, y in rest:
            path.append(f"H{frame.x(x):.1f} V{frame.y(y):.1f}")
        path.append(f"H{frame.x1:.1f}")  # the best so far holds until now
        frame.parts.append(f'<path class="step" d="{" ".join(path)}" fill="none" '
                           f'stroke="{COLOURS[1]}" stroke-width="2">'
                           f'<title>{_esc(step_label)}</title></path>')
        frame.legend(["submissions", step_label])
    for x, y, tip in dots:
        frame.parts.append(_dot(frame.x(x), frame.y(y), tip, COLOURS[0]))
    return frame.svg()


def strip_chart(groups: Sequence[tuple[str, Sequence[tuple]]], *, title: str,
                y_label: str = "") -> str:
    """Per group (e.g. train, valid, test), one dot per ``(value, tooltip)``
    spread across the group's band, and a line at the group's mean."""
    kept = [(name, [(v, tip) for v, tip in values if is_number(v)]) for name, values in groups]
    frame = _Frame(title, "", y_label)
    all_values = [v for _, values in kept for v, _ in values]
    if not all_values:
        return frame.empty()
    frame.y_axis(all_values)
    bands = frame.category_axis([name for name, _ in kept])
    for i, ((name, values), (left, right)) in enumerate(zip(kept, bands, strict=True)):
        colour = COLOURS[i % len(COLOURS)]
        inner_left, inner_right = left + (right - left) * 0.25, right - (right - left) * 0.25
        for j, (value, tip) in enumerate(values):
            share = (j + 0.5) / len(values)
            frame.parts.append(_dot(inner_left + share * (inner_right - inner_left),
                                    frame.y(value), tip, colour))
        if values:
            mean = sum(v for v, _ in values) / len(values)
            y = frame.y(mean)
            frame.parts.append(
                f'<line class="mean" x1="{inner_left:.1f}" x2="{inner_right:.1f}" '
                f'y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2">'
                f'<title>{_esc(f"{name} mean: {_fmt(mean)}")}</title></line>')
    return frame.svg()


def bar_chart(categories: Sequence[str], series: Sequence[tuple[str, Sequence]], *,
              title: str, y_label: str = "", unit: str = "") -> str:
    """Grouped bars: per category (e.g. a fold), one bar per series (e.g. wall
    time, CPU time). Missing values leave a gap."""
    frame = _Frame(title, "", y_label)
    values = [v for _, vs in series for v in vs if is_number(v)]
    if not values or not categories:
        return frame.empty()
    frame.y_axis(values, zero=True)
    bands = frame.category_axis(categories)
    if len(series) > 1:
        frame.legend([name for name, _ in series])
    base = frame.y(max(frame.y_domain[0], 0.0))
    for c, (left, right) in enumerate(bands):
        width = (right - left) * 0.8 / len(series)
        for s, (name, vs) in enumerate(series):
            value = vs[c] if c < len(vs) else None
            if not is_number(value):
                continue
            top = frame.y(value)
            x = left + (right - left) * 0.1 + s * width
            tip = f"{categories[c]}, {name}: {_fmt(value)}{unit}"
            frame.parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{min(top, base):.1f}" '
                f'width="{width * 0.9:.1f}" height="{abs(base - top):.1f}" '
                f'fill="{COLOURS[s % len(COLOURS)]}"><title>{_esc(tip)}</title></rect>')
    return frame.svg()


STATE_COLOURS = {"queued": "#9aa3b2", "running": "#2457c5", "scored": "#067647",
                 "error": "#b42318", "cancelled": "#5b6475"}


def timeline(rows: Sequence[tuple[str, float | None, float | None, str]], *, title: str,
             now: float) -> str:
    """One bar per row (e.g. a fold) from its start to its end, in seconds
    since the run began, coloured by state; a row still going ends at
    ``now``, one not started has no bar. ``rows``: (label, start, end, state)."""
    frame = _Frame(title, "seconds since the run started", "")
    spans = [(label, start, end if is_number(end) else now, state)
             for label, start, end, state in rows]
    values = [v for _, start, end, _ in spans if is_number(start) for v in (start, end)]
    if not rows:
        return frame.empty()
    frame.x0 = LEFT
    frame.x_axis(values + [0.0] if values else [0.0, 1.0])
    band = (frame.y0 - frame.y1) / len(spans)
    for i, (label, start, end, state) in enumerate(spans):
        top = frame.y1 + i * band
        frame.parts.append(
            f'<text x="{frame.x0 - 6}" y="{top + band / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="11">{_esc(label)}</text>')
        if not is_number(start):
            frame.parts.append(
                f'<text x="{frame.x0 + 6}" y="{top + band / 2 + 4:.1f}" font-size="11" '
                f'fill="#5b6475">{_esc(state)}</text>')
            continue
        left, right = frame.x(start), max(frame.x(end), frame.x(start) + 2)
        tip = f"{label}: {state}, {_fmt(start)} s to {_fmt(end)} s ({_fmt(end - start)} s)"
        frame.parts.append(
            f'<rect class="span span-{_esc(state)}" x="{left:.1f}" '
            f'y="{top + band * 0.15:.1f}" width="{right - left:.1f}" '
            f'height="{band * 0.7:.1f}" fill="{STATE_COLOURS.get(state, COLOURS[0])}">'
            f'<title>{_esc(tip)}</title></rect>')
    return frame.svg()


def rank_steps(points: Sequence[tuple[datetime, int, str]], *, title: str,
               x_label: str = "") -> str:
    """A rank over time (``(moment, rank, tooltip)`` at each change) as a step
    line with a dot per change: rank 1 at the top, whole ranks on the axis."""
    frame = _Frame(title, x_label, "rank")
    points = [(t, r, tip) for t, r, tip in points if t is not None and is_number(r)]
    if not points:
        return frame.empty()
    worst = max(2, max(r for _, r, _ in points))
    frame.y_domain = (worst, 1)  # inverted: the best rank on top
    step = max(1, math.ceil((worst - 1) / 5))
    for tick in sorted({1, *range(1 + step, worst + 1, step), worst}):
        y = frame.y(tick)
        frame.parts.append(
            f'<line class="grid" x1="{frame.x0}" x2="{frame.x1}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e5e8ee"/>'
            f'<text x="{frame.x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f'{tick}</text>')
    xs = [_wall_seconds(t) for t, _, _ in points]
    frame.x_axis(xs, time_axis=True)
    path = [f"M{frame.x(xs[0]):.1f},{frame.y(points[0][1]):.1f}"]
    for x, (_, rank, _) in zip(xs[1:], points[1:], strict=True):
        path.append(f"H{frame.x(x):.1f} V{frame.y(rank):.1f}")
    path.append(f"H{frame.x1:.1f}")  # the rank holds until now
    frame.parts.append(f'<path class="step" d="{" ".join(path)}" fill="none" '
                       f'stroke="{COLOURS[0]}" stroke-width="2"/>')
    for x, (_, rank, tip) in zip(xs, points, strict=True):
        frame.parts.append(_dot(frame.x(x), frame.y(rank), tip, COLOURS[0]))
    return frame.svg()
