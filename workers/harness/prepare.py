"""``python -m workers.harness.prepare KIT OUT``: a kit's data as its own
environment makes it.

Run by the trusted side with the interpreter of the problem's environment
(:func:`datarun.environments.prepare_in_environment`), never in a
participant's sandbox: it reads the test labels. The kit's own
``get_train_data``, ``get_test_data`` and ``get_cv`` run with that
environment's libraries, as ``ramp-test`` runs them, and the objects they
return are pickled by those same libraries, so that a fold unpickles them
with the versions that made them. Writes, under ``OUT``:

    sandbox/X_train.pkl, y_train.pkl, X_test.pkl   what a fold reads
    trusted/y_test.pkl                             never enters a fold
    folds.npz                                      train_<k>, valid_<k>
    summary.json                                   sizes, package versions and
                                                   the kit folders folds read
                                                   (:mod:`workers.harness.kit_files`)
"""
import json
import os
import pickle
import sys
from importlib import metadata
from pathlib import Path

from workers.harness.kit_files import with_kit_folders
from workers.harness.predictions import prediction_shape
from workers.harness.run import use_kit_pandas_options

REPORTED_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "ramp-workflow")


def main(kit_dir: str, out_dir: str) -> int:
    import numpy as np
    from rampwf.utils.importing import import_module_from_source

    kit, out = Path(kit_dir), Path(out_dir)
    use_kit_pandas_options()
    problem = import_module_from_source(str(kit / "problem.py"), "problem")
    X_train, y_train = problem.get_train_data(str(kit))
    X_test, y_test = problem.get_test_data(str(kit))
    folds = [(np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64))
             for tr, va in problem.get_cv(X_train, y_train)]
    X_train, train_folders = with_kit_folders(X_train, kit)
    X_test, test_folders = with_kit_folders(X_test, kit)
    (out / "sandbox").mkdir(parents=True, exist_ok=True)
    (out / "trusted").mkdir(exist_ok=True)
    for name, obj in (("sandbox/X_train.pkl", X_train), ("sandbox/y_train.pkl", y_train),
                      ("sandbox/X_test.pkl", X_test), ("trusted/y_test.pkl", y_test)):
        with open(out / name, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    arrays = {}
    for k, (tr, va) in enumerate(folds):
        arrays[f"train_{k}"], arrays[f"valid_{k}"] = tr, va
    np.savez(out / "folds.npz", **arrays)
    truth = np.asarray(problem.Predictions(y_true=y_train).y_pred)
    versions = {}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    summary = {
        "n_train": len(truth),
        "n_test": len(problem.Predictions(y_true=y_test).y_pred),
        "n_folds": len(folds),
        "prediction_shape": prediction_shape(truth),
        "kit_folders": sorted({*train_folders, *test_folders}),
        "python": sys.version.split()[0],
        "packages": versions,
    }
    (out / "summary.json").write_text(json.dumps(summary))
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1], sys.argv[2]))
