"""Dataset specs: what an organiser reads when a spec is wrong, and what a
right one becomes."""
import textwrap

import pytest

from datarun.datasets.specs import (
    format_interval,
    parse_interval,
    parse_spec,
    parse_spec_file,
    parse_spec_text,
)
from datarun.errors import InvalidDataset

GOOD = """\
name: sales
title: Weekly sales
description: Orders joined with their store's region.
sources:
  - {name: orders, url: https://example.org/exports/orders.csv}
  - {name: stores, path: data/stores.parquet}
transform: |
  SELECT o.*, s.region FROM orders o JOIN stores s USING (store_id)
split:
  test: {method: shuffle, fraction: 0.25, seed: 3}
  cv: {method: kfold, n_splits: 3}
refresh: {every: 6h}
"""


def error(text: str, **kwargs) -> str:
    with pytest.raises(InvalidDataset) as info:
        parse_spec_text(textwrap.dedent(text), filename="sales.yaml", **kwargs)
    return info.value.message


def test_a_good_spec(tmp_path):
    spec = parse_spec_text(GOOD, filename="sales.yaml", base_dir=tmp_path)
    assert spec.name == "sales" and spec.title == "Weekly sales"
    assert [(s.name, s.location, s.is_url) for s in spec.sources] == [
        ("orders", "https://example.org/exports/orders.csv", True),
        # Relative paths resolve against the spec file's folder.
        ("stores", str(tmp_path / "data" / "stores.parquet"), False),
    ]
    assert spec.transform.startswith("SELECT o.*, s.region")
    assert spec.refresh_every_s == 6 * 3600
    assert spec.split["test"] == {"method": "shuffle", "fraction": 0.25, "seed": 3}
    # What is stored and re-applied by a refresh: paths absolute, defaults
    # filled in; it parses back to the same spec from anywhere.
    assert spec.normalised["sources"][1] == {"name": "stores",
                                             "path": str(tmp_path / "data/stores.parquet")}
    assert spec.normalised["refresh"] == {"every": "6h"}
    again = parse_spec(spec.normalised)
    assert again == spec and again.normalised == spec.normalised


def test_spec_file_paths_resolve_against_its_folder(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "iris.yaml").write_text(
        "name: iris\nsources:\n  - {name: train, path: ../train.csv}\n")
    spec = parse_spec_file(folder / "iris.yaml")
    assert spec.sources[0].location == str(tmp_path / "train.csv")
    assert spec.refresh_every_s is None and spec.split is None and spec.transform == ""


def test_yaml_syntax_error_names_the_line():
    message = error("""\
        name: sales
        sources:
          - {name: orders, url: https://example.org/orders.csv
        refresh: {every: 1d}
        """)
    assert message.startswith("sales.yaml line 4: YAML syntax error:")
    # The unclosed bracket is on line 3: the message points there too.
    assert "starts on line 3" in message


def test_a_tab_is_a_syntax_error_on_its_line():
    assert error("name: sales\nsources:\n\t- x\n").startswith("sales.yaml line 3: YAML syntax")


@pytest.mark.parametrize(("text", "expected"), [
    ("name: sales\nsources:\n  - {name: orders, url: https://e.org/orders.csv}\n"
     "refesh: {every: 1d}\n",
     "sales.yaml line 4: refesh: unknown key 'refesh' (did you mean 'refresh'?)"),
    ("name: sales\nsources:\n  - name: orders\n    urll: https://e.org/orders.csv\n",
     "sales.yaml line 4: sources[0].urll: unknown key 'urll' (did you mean 'url'?)"),
    ("name: sales\nsources:\n  - {name: orders, url: https://e.org/orders.csv}\n"
     "refresh: {every: 1d, at: '03:00'}\n",
     "sales.yaml line 4: refresh.at: unknown key 'at'"),
])
def test_unknown_keys_are_refused_with_their_line(text, expected):
    assert error(text).startswith(expected)


def test_missing_name():
    assert error("title: Sales\nsources:\n  - {name: orders, url: https://e.org/orders.csv}\n") \
        == "sales.yaml line 1: name is missing"


@pytest.mark.parametrize("every", ["1x", "0d", "d", "1.5h", "-1d", "10"])
def test_bad_refresh_interval(every):
    message = error(f"name: sales\nsources:\n  - {{name: orders, url: https://e.org/orders.csv}}\n"
                    f"refresh:\n  every: {every}\n")
    assert message.startswith("sales.yaml line 5: refresh.every: ")
    assert "e.g. 30m, 6h, 1d or 1w" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("[1, 2]\n", "sales.yaml line 1: the spec must be a mapping"),
    ("name: Sales Data\nsources: [{name: a, path: a.csv}]\n",
     "sales.yaml line 1: name: 'Sales Data' is not a dataset name"),
    ("name: sales\n", "sales.yaml line 1: sources: give a list of at least one source"),
    ("name: sales\nsources: []\n", "sales.yaml line 2: sources: give a list"),
    ("name: sales\nsources:\n  - {name: orders}\n",
     "sales.yaml line 3: sources[0]: source 'orders' needs exactly one of url"),
    ("name: sales\nsources:\n  - {name: orders, url: https://e.org/orders.csv, path: o.csv}\n",
     "sales.yaml line 3: sources[0]: source 'orders' needs exactly one of url"),
    ("name: sales\nsources:\n  - {name: orders, url: ftp://e.org/orders.csv}\n",
     "sales.yaml line 3: sources[0].url: 'ftp://e.org/orders.csv' is not an http(s):// or s3://"),
    ("name: sales\nsources:\n  - {name: orders, path: https://e.org/orders.csv}\n",
     "sales.yaml line 3: sources[0].path: 'https://e.org/orders.csv' is a URL: write url:"),
    ("name: sales\nsources:\n  - {name: orders, url: https://e.org/orders.xlsx}\n",
     "sales.yaml line 3: sources[0].url: cannot tell the format of"),
    ("name: sales\nsources:\n  - {name: orders, url: 's3://bucket/2024/orders-jan.csv'}\n",
     "sales.yaml line 3: sources[0].name: the file orders-jan.csv is the view 'orders_jan' "
     "in the transform, not 'orders': name the source 'orders_jan'"),
    ("name: sales\nsources:\n  - {name: orders, path: a/orders.csv}\n"
     "  - {name: orders, path: b/orders.csv}\n",
     "sales.yaml line 4: sources[1].name: two sources are named 'orders'"),
    ("name: sales\nsources:\n  - {name: 1st, path: 1st.csv}\n",
     "sales.yaml line 3: sources[0].name: '1st' cannot name a SQL view"),
    ("name: sales\nsources:\n  - {name: orders, path: orders.csv}\ntransform: [SELECT 1]\n",
     "sales.yaml line 4: transform: transform must be text, not a list"),
    ("name: sales\nsources:\n  - {name: orders, path: orders.csv}\nname: other\n",
     "sales.yaml line 4: name: 'name' is given twice (lines 1 and 4)"),
    ("name: sales\nsources:\n  - {name: orders, path: orders.csv}\nrefresh: 1d\n",
     "sales.yaml line 4: refresh: write refresh: {every: 1d}"),
    ("", "sales.yaml: the spec is empty"),
])
def test_bad_specs_name_the_field_and_line(text, expected):
    assert error(text).startswith(expected)


def test_split_errors_come_from_the_split_rules_with_the_split_line():
    message = error("""\
        name: sales
        sources:
          - {name: orders, path: orders.csv}
        split:
          test: {method: shuffle, fraction: 1.5}
        """)
    assert message.startswith("sales.yaml line 4: split.test.fraction")


def test_dict_specs_name_where_they_came_from():
    with pytest.raises(InvalidDataset, match=r"^dataset sales's stored spec: sources\[0\]"):
        parse_spec({"name": "sales", "sources": [{"name": "x"}]},
                   where="dataset sales's stored spec")


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("6h", 21600), ("1d", 86400), ("1w", 604800), ("90s", 90), (" 2d ", 172800),
])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds
    assert parse_interval(format_interval(seconds)) == seconds
