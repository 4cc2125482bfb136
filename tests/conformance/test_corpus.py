"""The conformance corpus: small RAMP kits written the way public kits are
(DataFrames with text and date columns, text and numeric labels read as
``data[target].values``, pandas 3 strings with and without pyarrow, an external
data file, two-file submissions, time-ordered and grouped CV, multi-output
regression, detection (lists of circles per image), clustering combined with
classification, images read by the workflow from the kit's data folder), each
with a ``prepare_data.py`` that makes its data.

For each kit, ``ramp-test --save-output`` in the kit's own environment (the
reference: ramp-workflow's requirements, so no pyarrow unless the kit asks for
it), the platform (the REST API and a real worker) and ``datarun test`` give
the same per-fold and bagged scores, to 1e-9.
"""
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from datarun import ramp_kits
from tests.integration.helpers import signed_up
from tests.integration.test_cli_test_parity import (
    DATARUN,
    server_scores,
    starting_kit_files,
)
from workers.harness import run as harness

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

KITS_DIR = Path(__file__).resolve().parent / "kits"
# Kits that declare their own environment (requirements.txt) are scored in
# it: tests/conformance/test_environments.py.
KITS = sorted(p.name for p in KITS_DIR.iterdir()
              if (p / "problem.py").exists() and not (p / "requirements.txt").exists())
# Kits whose own environment has pyarrow: they ask for Arrow strings.
WITH_PYARROW = {"arrow_strings"}
RAMP_TEST = str(Path(sys.executable).parent / "ramp-test")
STEPS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def without_pyarrow(tmp_path_factory) -> Path:
    """A folder that, first on PYTHONPATH, makes pyarrow not installed."""
    folder = tmp_path_factory.mktemp("without_pyarrow")
    (folder / "pyarrow.py").write_text(
        "raise ImportError(\"pyarrow is not installed in this kit's environment\")\n")
    return folder


def _kit(name: str, tmp_path: Path) -> Path:
    kit_dir = tmp_path / name
    shutil.copytree(KITS_DIR / name, kit_dir)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=kit_dir, check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    return kit_dir


def start_ramp_test(name: str, kit_dir: Path, without_pyarrow: Path) -> "RampTest":
    """``ramp-test --save-output`` in the kit's own environment, on a copy of
    the kit, left running while the platform scores the same submission."""
    env = dict(os.environ)
    if name not in WITH_PYARROW:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(without_pyarrow),
                                                          env.get("PYTHONPATH")]))
    copy = kit_dir.with_name(kit_dir.name + "-ramp-test")
    shutil.copytree(kit_dir, copy)
    process = subprocess.Popen([RAMP_TEST, "--submission", "starting_kit", "--save-output"],
                               cwd=copy, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env, stdin=subprocess.DEVNULL)
    return RampTest(process, copy / "submissions" / "starting_kit" / "training_output")


@dataclass
class RampTest:
    process: subprocess.Popen
    output: Path

    def scores(self) -> tuple[list[pd.DataFrame], pd.DataFrame]:
        """Per-fold and bagged scores as ramp-test wrote them."""
        printed, _ = self.process.communicate(timeout=300)
        assert self.process.returncode == 0, printed[-6000:]
        folds = []
        while (self.output / f"fold_{len(folds)}" / "scores.csv").exists():
            folds.append(pd.read_csv(self.output / f"fold_{len(folds)}" / "scores.csv",
                                     index_col=0))
        bagged = pd.read_csv(self.output / "bagged_scores.csv", index_col=[0, 1])
        last = bagged.index.get_level_values("n_bag").max()
        return folds, bagged.xs(last, level="n_bag")


def start_datarun_test(kit_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "no_such_settings_module"}
    return subprocess.Popen([DATARUN, "test", str(kit_dir), "--submission", "starting_kit",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, stdin=subprocess.DEVNULL)


def test_the_harness_runs_kits_with_the_pandas_options_the_kit_was_loaded_with():
    assert harness.KIT_PANDAS_OPTIONS == ramp_kits.KIT_PANDAS_OPTIONS


def assert_scores_equal(name: str, reference, server: dict, local: dict | None = None) -> None:
    """Every fold's scores and the bagged ones equal ramp-test's, to 1e-9."""
    ref_folds, ref_bagged = reference
    names = list(ref_bagged.columns)
    assert set(server["scores"]) == set(names)
    assert len(server["folds"]) == len(ref_folds)
    for k, (ref, theirs) in enumerate(zip(ref_folds, server["folds"], strict=True)):
        for score in names:
            for step in STEPS:
                assert theirs["scores"][score][step] == pytest.approx(
                    ref.loc[step, score], abs=1e-9, rel=0), (name, k, score, step)
                if local is not None:
                    assert local["folds"][k]["scores"][step][score] == pytest.approx(
                        ref.loc[step, score], abs=1e-9, rel=0), (name, k, score, step)
    for score in names:
        for step in ("valid", "test"):
            expected = ref_bagged.loc[step, score]
            assert server["scores"][score][step]["bagged"] == pytest.approx(
                expected, abs=1e-9, rel=0), (name, score, step)
            if local is not None:
                assert local["scores"][score][step]["bagged"] == pytest.approx(
                    expected, abs=1e-9, rel=0), (name, score, step)


@pytest.mark.parametrize("name", KITS)
def test_kit_scores_equal_ramp_test_on_the_server_and_in_datarun_test(
        celery_worker_process, tmp_path, without_pyarrow, name):
    kit_dir = _kit(name, tmp_path)
    ramp_test = start_ramp_test(name, kit_dir, without_pyarrow)
    datarun_test = start_datarun_test(kit_dir)

    server = server_scores(signed_up(kit_dir, name), name, starting_kit_files(kit_dir))
    printed, errors = datarun_test.communicate(timeout=300)
    reference = ramp_test.scores()

    assert datarun_test.returncode == 0, printed[-3000:] + errors[-3000:]
    local = json.loads(printed)
    assert local["state"] == "scored", local.get("error")
    assert len(local["folds"]) == len(reference[0])
    assert_scores_equal(name, reference, server, local)


# Every kit of the corpus on the Docker backend too (the runtime image has
# pyarrow, like the server; each kit's code runs with its pandas options).
DOCKER_KITS = KITS


@pytest.mark.parametrize("name", DOCKER_KITS)
def test_kit_scores_equal_ramp_test_in_the_docker_sandbox(
        docker_worker, tmp_path, without_pyarrow, name):
    kit_dir = _kit(name, tmp_path)
    ramp_test = start_ramp_test(name, kit_dir, without_pyarrow)

    server = server_scores(signed_up(kit_dir, name), name, starting_kit_files(kit_dir))
    reference = ramp_test.scores()

    assert all(f["isolation"].startswith("docker") for f in server["folds"])
    assert_scores_equal(name, reference, server)
