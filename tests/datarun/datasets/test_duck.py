"""DuckDB: settings that keep it offline, readers by file type, the transform's
views, confinement to the given files, and errors that name the file."""
import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datarun.datasets import duck
from datarun.errors import InvalidDataset


def test_connections_never_install_or_load_extensions_by_themselves():
    con = duck.connect()
    settings = con.execute(
        "SELECT current_setting('autoinstall_known_extensions'), "
        "current_setting('autoload_known_extensions')").fetchone()
    assert settings == (False, False)


def test_a_csv_becomes_a_parquet_table_with_its_schema(tmp_path):
    (tmp_path / "train.csv").write_text("id,x,label,day\n1,0.5,a,2024-01-01\n"
                                        "2,,b,2024-01-02\n3,2.5,a,2024-01-03\n")
    out = tmp_path / "out" / "table.parquet"

    info = duck.materialise([tmp_path / "train.csv"], out=out)

    assert info.n_rows == 3
    assert info.schema == [
        {"name": "id", "type": "BIGINT", "nullable": False},
        {"name": "x", "type": "DOUBLE", "nullable": True},
        {"name": "label", "type": "VARCHAR", "nullable": False},
        {"name": "day", "type": "DATE", "nullable": False},
    ]
    df = duck.read_table(out)
    assert df["label"].tolist() == ["a", "b", "a"]
    assert duck.read_table(out, columns=["id"]).columns.tolist() == ["id"]


def test_parquet_json_lines_tsv_and_gzipped_csv_are_read_by_their_suffix(tmp_path):
    pq.write_table(pa.table({"id": [1, 2], "x": [0.5, 1.5]}), tmp_path / "a.parquet")
    (tmp_path / "b.jsonl").write_text(json.dumps({"id": 3, "x": 2.5}) + "\n"
                                      + json.dumps({"id": 4, "x": None}) + "\n")
    (tmp_path / "c.tsv").write_text("id\tx\n5\t3.5\n")
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(b"id,x\n6,4.5\n"))
    files = {name: tmp_path / name for name in ["a.parquet", "b.jsonl", "c.tsv", "d.csv.gz"]}

    info = duck.materialise(files, out=tmp_path / "t.parquet")

    # Without a transform, several files are stacked by column name, in name order.
    assert info.n_rows == 6
    assert duck.read_table(tmp_path / "t.parquet")["id"].tolist() == [1, 2, 3, 4, 5, 6]


def test_the_transform_sees_one_view_per_file_and_source(tmp_path):
    (tmp_path / "people.csv").write_text("id,name\n1,ann\n2,bob\n")
    (tmp_path / "2024-scores.csv").write_text("id,score\n1,10\n2,20\n2,30\n")
    files = {"people.csv": tmp_path / "people.csv",
             "2024-scores.csv": tmp_path / "2024-scores.csv"}
    sql = """SELECT p.name, sum(s.score) AS total
             FROM people p JOIN _2024_scores s USING (id) GROUP BY p.name ORDER BY p.name;"""

    info = duck.materialise(files, transform_sql=sql, out=tmp_path / "t.parquet")

    assert [c["name"] for c in info.schema] == ["name", "total"]
    assert duck.read_table(tmp_path / "t.parquet")["total"].tolist() == [10, 50]
    single = duck.materialise({"people.csv": tmp_path / "people.csv"},
                              transform_sql="SELECT count(*) AS n FROM source",
                              out=tmp_path / "n.parquet")
    assert single.n_rows == 1


def test_the_transform_cannot_read_other_files_nor_write_elsewhere(tmp_path):
    (tmp_path / "train.csv").write_text("a\n1\n")
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    out = tmp_path / "out" / "t.parquet"

    with pytest.raises(InvalidDataset, match="transform SQL failed.*Permission"):
        duck.materialise({"train.csv": tmp_path / "train.csv"}, out=out,
                         transform_sql=f"SELECT * FROM read_csv('{tmp_path}/secret.csv')")
    with pytest.raises(InvalidDataset, match="transform SQL failed"):
        duck.materialise({"train.csv": tmp_path / "train.csv"}, out=out,
                         transform_sql="SELECT 1; COPY (SELECT 1) TO '/tmp/x.csv'")
    assert not out.exists()


def test_a_broken_csv_is_named_with_its_line_and_leaves_no_table(tmp_path):
    rows = ["a,b,c"] + [f"{i},{i / 2},x{i}" for i in range(30_000)]
    rows.insert(25_001, "1,2,3,4")  # line 25002 of the file
    (tmp_path / "blob").write_text("\n".join(rows) + "\n")
    out = tmp_path / "t.parquet"

    # The file's name, not the blob's path, is what the message shows.
    with pytest.raises(InvalidDataset) as broken:
        duck.materialise({"train.csv": tmp_path / "blob"}, out=out)

    message = broken.value.message
    assert message.startswith("train.csv: cannot be read as a table")
    assert "Line: 25002" in message and "Expected Number of Columns: 3 Found: 4" in message
    assert str(tmp_path) not in message
    assert not out.exists()


def test_a_short_file_with_one_bad_row_is_an_error_not_a_preamble_to_skip(tmp_path):
    # Left to guess, DuckDB's sniffer reads this as 1 row (skipping 100) or as
    # one '|'-separated column: both silently wrong.
    rows = "a,b\n" + "".join(f"{i},x{i}\n" for i in range(100)) + "1,2,3\n"
    (tmp_path / "train.csv").write_text(rows)
    with pytest.raises(InvalidDataset, match="train.csv: .*same number of comma-separated"):
        duck.materialise([tmp_path / "train.csv"], out=tmp_path / "t.parquet")


def test_a_type_that_changes_after_the_sniffed_rows_costs_a_second_pass_not_an_error(
        tmp_path):
    rows = ["id,x"] + [f"{i},{i}" for i in range(30_000)] + ["30000,not a number"]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")

    info = duck.materialise([tmp_path / "train.csv"], out=tmp_path / "t.parquet")

    assert info.n_rows == 30_001
    assert info.schema[1] == {"name": "x", "type": "VARCHAR", "nullable": False}


def test_files_whose_views_would_clash_are_refused(tmp_path):
    for name in ["train.csv", "train.parquet"]:
        (tmp_path / name).write_text("a\n1\n")
    with pytest.raises(InvalidDataset, match="view name 'train' is taken"):
        duck.materialise([tmp_path / "train.csv", tmp_path / "train.parquet"],
                         out=tmp_path / "t.parquet")


def test_the_materialised_table_is_plain_parquet(tmp_path):
    (tmp_path / "train.csv").write_text("a,b\n1,x\n")
    duck.materialise([tmp_path / "train.csv"], out=tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").to_pydict() == {"a": [1], "b": ["x"]}
