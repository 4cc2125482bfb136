"""DuckDB: read source files, run the transform, write the table as Parquet.

No Django here (errors are :class:`datarun.errors.InvalidDataset`, plain
Python). Connections never download anything: extension auto-install
and auto-load are off. :func:`materialise` also confines DuckDB to the files
it was given and the output folder, so a transform cannot read other server
files, and locks the configuration so that SQL cannot undo this.

The transform SQL is one query (``SELECT ...`` or ``WITH ... SELECT ...``).
It sees each source file as a view named after the file without its suffix
(``train.csv`` -> ``train``; characters other than letters, digits and ``_``
become ``_``) and, always, a view named ``source``: the only file when there
is one, else all files stacked by column name in file-name order
(``UNION ALL BY NAME``). Without a transform the table is ``source``.

CSV files are comma-separated and TSV files tab-separated; the header,
quoting and column types are detected (types from the first rows, or from all
rows when a later value does not fit), and a row with another number of
columns is an error that names the file and the line.
"""
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from datarun.errors import InvalidDataset

# DuckDB's own memory cap (its buffers; spills to ``temp_dir`` past it).
DEFAULT_MEMORY_LIMIT = "512MB"


@dataclass(frozen=True)
class TableInfo:
    n_rows: int
    # [{"name", "type" (DuckDB type), "nullable" (a null occurs in this table)}]
    schema: list[dict]


def connect(*, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that never installs or loads extensions by itself."""
    con = duckdb.connect(":memory:", config={
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "memory_limit": memory_limit,
    })
    con.execute("SET enable_progress_bar = false")  # it would write to the workers' logs
    return con


def view_name(file_name: str) -> str:
    stem = re.sub(r"\.(csv|tsv|parquet|jsonl|ndjson|json)(\.gz)?$", "", file_name,
                  flags=re.IGNORECASE)
    name = re.sub(r"\W", "_", stem, flags=re.ASCII)
    return name if not name[:1].isdigit() else f"_{name}"


def reader_sql(file_name: str, path: Path, *, sample_all: bool = False) -> str:
    """The DuckDB table function reading ``path`` as its ``file_name`` says."""
    lower = file_name.lower()
    quoted = _literal(str(path))
    if lower.endswith(".parquet"):
        return f"read_parquet({quoted})"
    if lower.endswith((".jsonl", ".ndjson")):
        return f"read_json_auto({quoted}, format='newline_delimited')"
    if lower.endswith(".json"):
        return f"read_json_auto({quoted})"
    # The delimiter comes from the suffix and no leading row is skipped: left
    # to guess, the sniffer may take a file with one bad row for a preamble
    # to skip, or for one column split on another character.
    delim = "\\t" if lower.endswith((".tsv", ".tsv.gz")) else ","
    options = f", delim='{delim}', skip=0"
    if lower.endswith(".gz"):
        options += ", compression='gzip'"
    if sample_all:
        options += ", sample_size=-1"
    return f"read_csv_auto({quoted}{options})"


def materialise(files: Mapping[str, Path] | Sequence[Path], *, transform_sql: str = "",
                out: Path, temp_dir: Path | None = None,
                memory_limit: str = DEFAULT_MEMORY_LIMIT) -> TableInfo:
    """Write the table (the transform of ``files``, or ``source``) to ``out`` as Parquet.

    ``files`` maps file names (which pick the reader and the view name) to
    local paths; a list of paths uses their own names. Raises
    :class:`~datarun.errors.InvalidDataset` when a file cannot be parsed or
    the transform fails.
    """
    if not isinstance(files, Mapping):
        files = {Path(p).name: p for p in files}
    # DuckDB checks the allowed paths against the path as written: resolve once.
    files = {name: Path(p).resolve() for name, p in files.items()}
    if not files:
        raise InvalidDataset("no source files")
    views = {}
    for file_name in sorted(files):
        view = view_name(file_name)
        if view in views or view == "source":
            raise InvalidDataset(f"{file_name}: its view name {view!r} is taken; rename the file")
        views[view] = file_name
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    query = transform_sql.strip().rstrip(";").strip() or "SELECT * FROM source"
    try:
        try:
            return _write(files, views, query, out, temp_dir, memory_limit, sample_all=False)
        except duckdb.ConversionException:
            # The CSV sniffer guesses types from the first rows; a later row that
            # does not fit costs one more pass with types guessed from all rows.
            return _write(files, views, query, out, temp_dir, memory_limit, sample_all=True)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _write(files, views, query, out, temp_dir, memory_limit, *, sample_all) -> TableInfo:
    con = connect(memory_limit=memory_limit)
    try:
        _confine(con, list(files.values()), out.parent, temp_dir)
        for view, file_name in views.items():
            con.execute(f"CREATE VIEW {_ident(view)} AS SELECT * FROM "
                        f"{reader_sql(file_name, files[file_name], sample_all=sample_all)}")
        stacked = " UNION ALL BY NAME ".join(f"SELECT * FROM {_ident(v)}" for v in views)
        con.execute(f"CREATE VIEW source AS {stacked}")
        # snappy: about 15% faster to write than zstd, for files about 20% larger.
        con.execute(f"COPY ({query}) TO {_literal(str(out))} (FORMAT parquet, COMPRESSION snappy)")
        return table_info(con, out)
    except duckdb.Error as exc:
        if sample_all or not isinstance(exc, duckdb.ConversionException):
            raise InvalidDataset(_explain(exc, files, query)) from exc
        raise
    finally:
        con.close()


def table_info(con: duckdb.DuckDBPyConnection, path: Path) -> TableInfo:
    """Row count and schema of a Parquet table (one scan for the null counts)."""
    table = f"read_parquet({_literal(str(path))})"
    columns = con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()
    counts = ", ".join(f"count({_ident(c[0])})" for c in columns)
    row = con.execute(f"SELECT count(*){', ' + counts if counts else ''} FROM {table}").fetchone()
    n_rows = row[0]
    schema = [{"name": name, "type": type_, "nullable": row[i + 1] < n_rows}
              for i, (name, type_, *_rest) in enumerate(columns)]
    return TableInfo(n_rows=n_rows, schema=schema)


def read_table(path: Path, *, columns: Sequence[str] | None = None):
    """A Parquet table as a pandas DataFrame (optionally only some columns)."""
    con = connect()
    try:
        selected = ", ".join(_ident(c) for c in columns) if columns else "*"
        return con.execute(f"SELECT {selected} FROM read_parquet(?)", [str(path)]).df()
    finally:
        con.close()


def _confine(con, files: list[Path], out_dir: Path, temp_dir: Path | None) -> None:
    """Allow only the source files and the output folder, then lock the settings."""
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute("SET temp_directory = ?", [str(temp_dir)])
    con.execute("SET allowed_paths = ?", [[str(p) for p in files]])
    dirs = [str(out_dir.resolve()) + "/"]
    if temp_dir is not None:
        dirs.append(str(temp_dir.resolve()) + "/")
    con.execute("SET allowed_directories = ?", [dirs])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _explain(exc: duckdb.Error, files: Mapping[str, Path], query: str) -> str:
    """DuckDB's message, with blob paths replaced by the file names users know."""
    text = str(exc).strip()
    named = [name for name, path in files.items() if str(path) in text]
    for name in named:
        text = text.replace(str(files[name]), name)
    # The first lines say what is wrong and where; the rest suggests reader
    # options that users do not set here.
    lines = text.splitlines()
    cut = next((i for i, line in enumerate(lines) if line.startswith("Possible")), len(lines))
    if any("not possible to automatically detect the CSV parsing dialect" in line
           for line in lines):
        lines = ["no consistent CSV layout found: the rows do not all have the same number "
                 "of comma-separated (tab-separated for .tsv) columns"]
        cut = 1
    message = "\n".join(line for line in lines[:cut] if line.strip())[:1000]
    if named:
        return f"{', '.join(named)}: cannot be read as a table: {message}"
    if query != "SELECT * FROM source":
        return f"the transform SQL failed: {message}"
    return f"the source files cannot be read as one table: {message}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
