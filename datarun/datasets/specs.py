"""Software-defined datasets: the YAML spec, parsed and checked.

A spec names a dataset's sources, an optional DuckDB SQL transform over them,
optional split rules and an optional refresh interval::

    name: sales
    title: Weekly sales
    sources:                  # a path (relative to the spec file), http(s) or s3 URL
      - {name: orders, url: https://example.org/orders.csv}
      - {name: stores, path: data/stores.parquet}
    transform: |              # the sources are views named after ``name``
      SELECT o.*, s.region FROM orders o JOIN stores s USING (store_id)
    split: {...}              # see datarun.datasets.splits
    refresh: {every: 1d}      # 30m, 6h, 1d, 1w

A source's name is the view the transform reads: its file's name without the
suffix (``orders`` for ``.../orders.csv``), as the version names the file.
Without a transform the table is the one source, or all sources stacked by
column name.

Pure: no Django. Every error is an :class:`InvalidDataset` whose message
names the field (``sources[1].url``) and, when the spec came from YAML text,
the file and line (``sales.yaml line 7: ...``). Unknown keys are refused, so
that a typo is never silently ignored.
"""
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import yaml

from datarun.errors import InvalidDataset

TOP_KEYS = ("name", "title", "description", "sources", "transform", "split", "refresh")
SOURCE_KEYS = ("name", "path", "url")
REFRESH_KEYS = ("every",)
# What DuckDB reads, by file suffix.
FORMATS = ("csv", "csv.gz", "tsv", "tsv.gz", "parquet", "jsonl", "ndjson", "json")
URL_SCHEMES = ("http", "https", "s3")
INTERVAL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
# A source's name is the SQL view the transform reads: a plain identifier.
SOURCE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
INTERVAL = re.compile(r"\s*(\d+)\s*([smhdw])\s*")


@dataclass(frozen=True)
class SourceSpec:
    name: str
    location: str  # an absolute path, or an http(s)/s3 URL

    @property
    def is_url(self) -> bool:
        return urlparse(self.location).scheme in URL_SCHEMES


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str = ""
    description: str = ""
    sources: tuple[SourceSpec, ...] = ()
    transform: str = ""
    split: dict | None = None
    refresh_every_s: int | None = None
    # The spec as applied, with paths made absolute: what a refresh re-applies.
    normalised: dict = field(default_factory=dict, compare=False)


class _Problem(Exception):
    """A problem at a field path, turned into an InvalidDataset with a line."""

    def __init__(self, path: tuple, message: str, *, named: bool = False):
        super().__init__(message)
        self.path = path
        self.message = message
        self.named = named  # the message names the field itself


def parse_spec_text(text: str, *, filename: str = "spec.yaml",
                    base_dir: Path | None = None) -> DatasetSpec:
    """Parse YAML text; relative source paths resolve against ``base_dir``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise InvalidDataset(_yaml_error(exc, filename)) from exc
    if node is None:
        raise InvalidDataset(f"{filename}: the spec is empty; it needs at least a name "
                             "and sources")
    lines: dict[tuple, int] = {}
    try:
        _index_lines(node, (), lines)
        data = yaml.safe_load(text)
        return _parse(data, base_dir=base_dir)
    except _Problem as problem:
        raise InvalidDataset(f"{filename} line {_line_of(problem.path, lines)}: "
                             f"{_describe(problem)}") from None


def parse_spec_file(path: Path) -> DatasetSpec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDataset(f"cannot read the spec {path}: {exc}") from exc
    return parse_spec_text(text, filename=path.name, base_dir=path.resolve().parent)


def parse_spec(data, *, base_dir: Path | None = None, where: str = "spec") -> DatasetSpec:
    """Check an already-loaded spec (a dict, e.g. from the API or the database)."""
    try:
        return _parse(data, base_dir=base_dir)
    except _Problem as problem:
        raise InvalidDataset(f"{where}: {_describe(problem)}") from None


def parse_interval(value) -> int:
    """``30m``, ``6h``, ``1d``, ``1w`` (or ``90s``) in seconds."""
    match = INTERVAL.fullmatch(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{value!r} is not an interval: write a positive number and a "
                         "unit, e.g. 30m, 6h, 1d or 1w")
    return int(match.group(1)) * INTERVAL_UNITS[match.group(2)]


def format_interval(seconds: int) -> str:
    for unit, size in sorted(INTERVAL_UNITS.items(), key=lambda kv: -kv[1]):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise ValueError(f"{seconds!r} is not a whole number of seconds")


# --- parsing ------------------------------------------------------------------


def _parse(data, *, base_dir: Path | None) -> DatasetSpec:
    if not isinstance(data, dict):
        raise _Problem((), "the spec must be a mapping with at least name and sources")
    _refuse_unknown(data, TOP_KEYS, ())
    name = _required_str(data, "name", ())
    if not DATASET_NAME.fullmatch(name):
        raise _Problem(("name",), f"{name!r} is not a dataset name: use 1-100 lower-case "
                       "letters, digits, '_' or '-', starting with a letter or digit")
    title = _optional_str(data, "title", ())
    description = _optional_str(data, "description", ())
    transform = _optional_str(data, "transform", ()).strip()

    raw_sources = data.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise _Problem(("sources",), "give a list of at least one source, each "
                       "{name: ..., url: ...} or {name: ..., path: ...}")
    sources = tuple(_parse_source(s, ("sources", i), base_dir)
                    for i, s in enumerate(raw_sources))
    seen: set[str] = set()
    for i, source in enumerate(sources):
        if source.name.lower() in seen:
            raise _Problem((("sources", i), "name"),
                           f"two sources are named {source.name!r}; names must differ")
        seen.add(source.name.lower())

    split = data.get("split")
    if split is not None:
        split = _check_split(split)

    refresh_every_s = None
    refresh = data.get("refresh")
    if refresh is not None:
        if not isinstance(refresh, dict):
            raise _Problem(("refresh",), "write refresh: {every: 1d} (30m, 6h, 1d, 1w)")
        _refuse_unknown(refresh, REFRESH_KEYS, ("refresh",))
        if "every" not in refresh:
            raise _Problem(("refresh",), "refresh needs every: (30m, 6h, 1d, 1w)")
        try:
            refresh_every_s = parse_interval(refresh["every"])
        except ValueError as exc:
            raise _Problem(("refresh", "every"), str(exc)) from None

    normalised = {"name": name, "title": title, "description": description,
                  "sources": [_source_dict(s) for s in sources]}
    if transform:
        normalised["transform"] = transform
    if split is not None:
        normalised["split"] = split
    if refresh_every_s is not None:
        normalised["refresh"] = {"every": format_interval(refresh_every_s)}
    return DatasetSpec(name=name, title=title, description=description, sources=sources,
                       transform=transform, split=split, refresh_every_s=refresh_every_s,
                       normalised=normalised)


def _parse_source(raw, path: tuple, base_dir: Path | None) -> SourceSpec:
    if not isinstance(raw, dict):
        raise _Problem((path,), "a source is {name: ..., url: ...} or {name: ..., path: ...}")
    _refuse_unknown(raw, SOURCE_KEYS, (path,))
    name = _required_str(raw, "name", (path,))
    if not SOURCE_NAME.fullmatch(name):
        raise _Problem((path, "name"), f"{name!r} cannot name a SQL view: use letters, "
                       "digits and '_', starting with a letter or '_'")
    has_url, has_path = "url" in raw, "path" in raw
    if has_url == has_path:
        raise _Problem((path,), f"source {name!r} needs exactly one of url "
                       "(http, https or s3) and path")
    if has_url:
        location = _required_str(raw, "url", (path,))
        parsed = urlparse(location)
        if parsed.scheme not in URL_SCHEMES or not parsed.netloc:
            raise _Problem((path, "url"), f"{location!r} is not an http(s):// or s3:// URL "
                           "(for a file on this server, write path:)")
        file_name = unquote(PurePosixPath(parsed.path).name)
    else:
        location = _required_str(raw, "path", (path,))
        if urlparse(location).scheme in URL_SCHEMES:
            raise _Problem((path, "path"), f"{location!r} is a URL: write url: instead")
        local = Path(location).expanduser()
        if not local.is_absolute():
            local = (base_dir or Path.cwd()) / local
        location = str(local.resolve())
        file_name = local.name
    key = "url" if has_url else "path"
    if _format_of(file_name) is None:
        raise _Problem((path, key), f"cannot tell the format of {location!r}: its file name "
                       f"must end with one of .{', .'.join(FORMATS)}")
    # A version names each file after its source's file name, and the
    # transform sees the file as a view named after it (orders.csv -> orders):
    # the spec's name must be that view's name.
    from datarun.datasets.duck import view_name

    if view_name(file_name).lower() != name.lower():
        raise _Problem((path, "name"), f"the file {file_name} is the view "
                       f"{view_name(file_name)!r} in the transform, not {name!r}: name the "
                       f"source {view_name(file_name)!r}")
    return SourceSpec(name=name, location=location)


def _format_of(file_name: str) -> str | None:
    lower = file_name.lower()
    return next((f for f in sorted(FORMATS, key=len, reverse=True)
                 if lower.endswith("." + f)), None)


def _source_dict(source: SourceSpec) -> dict:
    key = "url" if source.is_url else "path"
    return {"name": source.name, key: source.location}


def _check_split(split) -> dict:
    if not isinstance(split, dict):
        raise _Problem(("split",), "split must be a mapping (test cut, cv, named splits)")
    from datarun.datasets.splits import parse_split_spec

    try:
        # Normalised: defaults filled in, dates as ISO text (JSON-safe).
        return parse_split_spec(split).to_dict()
    except ValueError as exc:
        # Its messages name the field already (split.test.fraction ...).
        raise _Problem(("split",), str(exc), named=True) from None


def _refuse_unknown(mapping: dict, allowed: tuple, path: tuple) -> None:
    for key in mapping:
        if key not in allowed:
            hint = _closest(str(key), allowed)
            raise _Problem((*path, key), f"unknown key {key!r}"
                           + (f" (did you mean {hint!r}?)" if hint else "")
                           + f"; allowed: {', '.join(allowed)}")


def _closest(key: str, allowed: tuple) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _required_str(mapping: dict, key: str, path: tuple) -> str:
    if key not in mapping or mapping[key] is None or mapping[key] == "":
        raise _Problem((*path, key) if key in mapping else path, f"{key} is missing")
    value = mapping[key]
    if not isinstance(value, str):
        raise _Problem((*path, key), f"{key} must be text, not {_kind(value)}")
    return value


def _optional_str(mapping: dict, key: str, path: tuple) -> str:
    value = mapping.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Problem((*path, key), f"{key} must be text, not {_kind(value)}")
    return value


def _kind(value) -> str:
    return {list: "a list", dict: "a mapping", bool: "true/false"}.get(
        type(value), f"a {type(value).__name__}")


# --- messages and lines ---------------------------------------------------------


def _field_name(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, tuple):
            out += f"{part[0]}[{part[1]}]" if not out else f".{part[0]}[{part[1]}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(problem: _Problem) -> str:
    name = "" if problem.named else _field_name(problem.path)
    return f"{name}: {problem.message}" if name else problem.message


def _flat(path: tuple) -> tuple:
    flat: list = []
    for part in path:
        flat.extend(part if isinstance(part, tuple) else (part,))
    return tuple(flat)


def _index_lines(node, path: tuple, lines: dict) -> None:
    """Record the 1-based line of every key and item; refuse duplicate keys
    (PyYAML would keep the last one silently)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                lines[(*path, key)] = key_node.start_mark.line + 1
                raise _Problem((*path, key), f"{key!r} is given twice (lines {seen[key]} "
                               f"and {key_node.start_mark.line + 1})")
            seen[key] = key_node.start_mark.line + 1
            lines[(*path, key)] = key_node.start_mark.line + 1
            _index_lines(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), lines)


def _line_of(path: tuple, lines: dict) -> int:
    flat = _flat(path)
    while flat not in lines and flat:
        flat = flat[:-1]
    return lines.get(flat, 1)


def _yaml_error(exc: yaml.YAMLError, filename: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    context_mark = getattr(exc, "context_mark", None)
    text = getattr(exc, "problem", None) or str(exc)
    where = f"{filename} line {mark.line + 1}" if mark else filename
    context = getattr(exc, "context", None)
    if context and context_mark and context_mark.line != mark.line:
        # The error shows where the parser gave up; the cause is often where
        # the construct it was reading began (an unclosed bracket or quote).
        text += f" ({context} that starts on line {context_mark.line + 1})"
    elif context:
        text = f"{context}: {text}"
    return f"{where}: YAML syntax error: {text}"
