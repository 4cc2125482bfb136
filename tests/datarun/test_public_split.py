"""The data a participant downloads: carved by the problem's own fold 0, in
the kit's own file format, loadable by the kit; never the private test set."""
import bz2
import gzip
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datarun import public_split, ramp_kits
from datarun.public_split import CannotCarve, carve_rows
from tests.conftest import EXAMPLES

CSV = b"a,b,y\n1,x,0\n2,\"q,uoted\",1\n3,z,0\n4,w,1\n"


def test_carve_rows_keeps_the_header_and_the_rows_of_each_part_in_file_order():
    parts = carve_rows(CSV, "train.csv", 4, {"train": np.array([3, 0]), "test": np.array([2, 1])})

    assert parts["train"] == b"a,b,y\n1,x,0\n4,w,1\n"
    assert parts["test"] == b"a,b,y\n2,\"q,uoted\",1\n3,z,0\n"


@pytest.mark.parametrize("name, pack, unpack", [
    ("train.csv.gz", gzip.compress, gzip.decompress),
    ("train.csv.bz2", bz2.compress, bz2.decompress),
])
def test_carve_rows_writes_compressed_csv_back_compressed(name, pack, unpack):
    parts = carve_rows(pack(CSV), name, 4, {"test": np.array([0])})

    assert unpack(parts["test"]) == b"a,b,y\n1,x,0\n"


def test_carve_rows_splits_npy_arrays_by_their_first_axis():
    buffer = io.BytesIO()
    np.save(buffer, np.arange(12).reshape(4, 3))

    parts = carve_rows(buffer.getvalue(), "train.npy", 4, {"test": np.array([2, 0])})

    assert np.load(io.BytesIO(parts["test"])).tolist() == [[0, 1, 2], [6, 7, 8]]


def test_carve_rows_refuses_a_file_whose_rows_are_not_the_samples():
    with pytest.raises(CannotCarve, match="has 4 rows but get_train_data returns 5"):
        carve_rows(CSV, "train.csv", 5, {"test": np.array([0])})


def test_a_prepared_kit_ships_fold_0_carved_from_the_training_data(tmp_path):
    kit = ramp_kits.prepare_kit(EXAMPLES / "iris", tmp_path / "prepared")
    public = tmp_path / "prepared" / "public" / "data"
    train = pd.read_csv(EXAMPLES / "iris" / "data" / "train.csv")
    private_test = pd.read_csv(EXAMPLES / "iris" / "data" / "test.csv")
    train_is, valid_is = ramp_kits.load_folds(tmp_path / "prepared")[0]

    assert kit.public_split["source"] == "carved"
    assert (kit.public_split["n_train"], kit.public_split["n_test"]) == (96, 24)
    pd.testing.assert_frame_equal(pd.read_csv(public / "test.csv"),
                                  train.iloc[np.sort(valid_is)].reset_index(drop=True))
    pd.testing.assert_frame_equal(pd.read_csv(public / "train.csv"),
                                  train.iloc[np.sort(train_is)].reset_index(drop=True))
    assert (public / "test.csv").read_bytes() != (EXAMPLES / "iris/data/test.csv").read_bytes()
    assert len(pd.read_csv(public / "test.csv").merge(private_test)) <= 1  # iris has twins
    assert public_split.read_record(public.parent)["files"].keys() == {"train.csv",
                                                                        "test.csv"}


def test_an_organisers_public_data_folder_is_shipped_instead(tmp_path):
    kit_dir = tmp_path / "iris"
    shutil.copytree(EXAMPLES / "iris", kit_dir)
    (kit_dir / "public_data").mkdir()
    train = pd.read_csv(kit_dir / "data" / "train.csv")
    train.iloc[:60].to_csv(kit_dir / "public_data" / "train.csv", index=False)
    train.iloc[60:90].to_csv(kit_dir / "public_data" / "test.csv", index=False)

    kit = ramp_kits.prepare_kit(kit_dir, tmp_path / "prepared")

    assert kit.public_split["source"] == "organiser"
    assert (kit.public_split["n_train"], kit.public_split["n_test"]) == (60, 30)


def test_a_kit_whose_data_cannot_be_carved_says_why(tmp_path):
    kit_dir = tmp_path / "iris"
    shutil.copytree(EXAMPLES / "iris", kit_dir)
    # get_train_data drops a row: the file's rows no longer match the samples.
    problem = (kit_dir / "problem.py").read_text()
    (kit_dir / "problem.py").write_text(problem.replace(
        "data = pd.read_csv(os.path.join(path, 'data', f_name))",
        "data = pd.read_csv(os.path.join(path, 'data', f_name)).iloc[1:]"))

    kit = ramp_kits.prepare_kit(kit_dir, tmp_path / "prepared")

    assert kit.public_split["source"] == "none"
    assert "train.csv has 120 rows but get_train_data returns 119" in kit.public_split["reason"]


def test_a_file_that_cannot_be_read_by_rows_cannot_be_carved():
    with pytest.raises(CannotCarve, match="could not be read by rows"):
        carve_rows(b"a,b\n\xff\xfe,1\n", "train.csv", 1, {"test": np.array([0])})
    with pytest.raises(CannotCarve, match="neither CSV"):
        carve_rows(b"...", "train.parquet", 1, {"test": np.array([0])})


def test_a_problem_prepared_before_public_splits_gets_one_at_its_first_download(tmp_path):
    ramp_kits.prepare_kit(EXAMPLES / "iris", tmp_path / "prepared", public=False)
    assert not (tmp_path / "prepared" / "public").exists()

    data_dir, record = ramp_kits.public_data(tmp_path / "prepared")
    again_dir, again = ramp_kits.public_data(tmp_path / "prepared")  # read, not made again

    assert sorted(p.name for p in data_dir.iterdir()) == ["test.csv", "train.csv"]
    assert record["source"] == "carved" and again == record and again_dir == data_dir


def test_an_image_kits_public_data_holds_its_images_and_the_starting_kit_runs_on_it(
        tmp_path):
    kit = tmp_path / "images"
    shutil.copytree(Path(__file__).resolve().parents[1] / "conformance" / "kits" / "images",
                    kit)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=kit, check=True,
                   capture_output=True, timeout=120)

    prepared = ramp_kits.prepare_kit(kit, tmp_path / "prepared")

    assert prepared.public_split["folders"] == ["data/imgs"]
    download = tmp_path / "download"
    shutil.copytree(tmp_path / "prepared" / "public" / "data", download / "data")
    shutil.rmtree(kit / "data")  # nothing read from the organiser's copy
    problem = ramp_kits.import_problem(tmp_path / "prepared" / "kit")
    X, y = problem.get_train_data(str(download))
    X_test, _ = problem.get_test_data(str(download))
    trained = problem.workflow.train_submission(
        str(tmp_path / "prepared" / "kit" / "submissions" / "starting_kit"), X, y)
    assert problem.workflow.test_submission(trained, X_test).shape == (len(X_test[1]), 3)
