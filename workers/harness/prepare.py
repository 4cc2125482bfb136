"""``python -m workers.harness.prepare KIT OUT``: a kit's data as its own
environment makes it, and the checks of its import done there.

Run by the trusted side with the interpreter of the problem's environment
(:func:`datarun.environments.prepare_in_environment`), never in a
participant's sandbox: it reads the test labels. The kit's own
``get_train_data``, ``get_test_data`` and ``get_cv`` run with that
environment's libraries, as ``ramp-test`` runs them, and the objects they
return are pickled by those same libraries, so that a fold unpickles them
with the versions that made them. The checks the server makes of a kit at
import (labels through ``Predictions``, numeric predictions, sizes) are made
here too, on these objects, and reported as JSON.

The network is cut (the caller runs this under ``bwrap --unshare-net``
where it can), and every attempt to use it is refused here too and reported
with the module that made it: folds run without network, so a kit whose
``problem.py`` or starting kit imports a package that needs the network at
import could never run. Writes, under ``OUT``:

    sandbox/X_train.pkl, y_train.pkl, X_test.pkl   what a fold reads
    trusted/y_test.pkl                             never enters a fold
    folds.npz                                      train_<k>, valid_<k>
    summary.json                                   sizes, checks, package versions and
                                                   the kit folders folds read
                                                   (:mod:`workers.harness.kit_files`)
    error.json                                     instead, when a step failed
"""
import json
import os
import pickle
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from workers.harness.kit_files import with_kit_folders
from workers.harness.predictions import prediction_shape
from workers.harness.run import use_kit_pandas_options

REPORTED_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "ramp-workflow")
NETWORK_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                  "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg")
STARTING_KIT = Path("submissions") / "starting_kit"


class PrepareError(Exception):
    """A step of the preparation failed; ``message`` is for the organiser."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NetworkGuard:
    """Refuses the network to Python code and remembers who asked for it
    (an audit hook: it sees every socket call, from any module)."""

    def __init__(self):
        self.attempts: list[dict] = []
        self.step = ""
        self._stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])

    def install(self) -> None:
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if event not in NETWORK_EVENTS:
            return
        # socket.connect/sendto/sendmsg: (socket, address); getaddrinfo: (host, port, ...).
        target = args[1] if event in ("socket.connect", "socket.sendto", "socket.sendmsg") \
            else args[:2] if event == "socket.getaddrinfo" else args[0]
        self.attempts.append({"step": self.step, "call": event, "target": repr(target)[:200],
                              "module": self._caller()})
        raise PermissionError(f"no network while the kit is prepared ({event} {target!r})")

    def _caller(self) -> str:
        """The innermost module outside the standard library on the stack."""
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if not filename.startswith("<"):  # <frozen importlib._bootstrap> and the like
                filename = os.path.realpath(filename)
                if not filename.startswith(self._stdlib) \
                        and filename != os.path.realpath(__file__):
                    return frame.f_globals.get("__name__") or filename
            frame = frame.f_back
        return "the standard library"

    def check(self) -> None:
        """Fail the preparation if the step just done tried the network."""
        tried = [a for a in self.attempts if a["step"] == self.step]
        if tried:
            first = tried[0]
            raise PrepareError(
                f"{self.step} tried to use the network: module {first['module']} called "
                f"{first['call']}({first['target']}). Folds run without network, so this "
                "cannot work: remove the package or the call, or make it work offline")


def main(kit_dir: str, out_dir: str) -> int:
    kit, out = Path(kit_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    guard = NetworkGuard()
    guard.install()
    try:
        summary = prepare(kit, out, guard)
    except PrepareError as exc:
        (out / "error.json").write_text(json.dumps({"message": exc.message,
                                                    "network": guard.attempts}))
        return 2
    (out / "summary.json").write_text(json.dumps(summary))
    return 0


def _step(guard: NetworkGuard, step: str, call):
    """``call()`` as ``step``: a network attempt or an exception fails it,
    named."""
    guard.step = step
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - the organiser's code, reported
        guard.check()
        raise PrepareError(f"{step} failed: {type(exc).__name__}: {exc}") from exc
    guard.check()
    return result


def _harness_needs():
    """What the fold harness imports in every fold, imported once here: an
    environment whose ramp-workflow does not work with its other packages
    fails now, at import, not in every fold of every submission."""
    import rampwf.prediction_types  # noqa: F401
    import rampwf.score_types  # noqa: F401
    import rampwf.workflows  # noqa: F401
    from rampwf.utils.importing import import_module_from_source
    return import_module_from_source


def _versions() -> str:
    found = []
    for name in REPORTED_PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"no {name}")
    return ", ".join(found)


def prepare(kit: Path, out: Path, guard: NetworkGuard) -> dict:
    import numpy as np

    try:
        import_module_from_source = _step(guard, "importing ramp-workflow", _harness_needs)
    except PrepareError as exc:
        raise PrepareError(
            f"{exc.message}. The folds run with ramp-workflow and it does not work in this "
            f"environment ({_versions()}): pin versions of ramp-workflow, numpy, pandas and "
            "scikit-learn that work together (ramp-workflow 0.7.0 runs with the newest)"
        ) from exc
    use_kit_pandas_options()
    problem = _step(guard, "importing problem.py",
                    lambda: import_module_from_source(str(kit / "problem.py"), "problem"))
    starting_kit_errors = {}
    for path in sorted((kit / STARTING_KIT).glob("*.py")):
        shown = (STARTING_KIT / path.name).as_posix()
        try:
            _step(guard, f"importing {shown}",
                  lambda p=path: import_module_from_source(str(p), p.stem))
        except PrepareError as exc:
            if guard.attempts and guard.attempts[-1]["step"] == guard.step:
                raise
            # Not this check's business (the starting kit's run reports it),
            # but the organiser reads it in the build log.
            starting_kit_errors[shown] = exc.message
    X_train, y_train = _step(guard, "get_train_data", lambda: problem.get_train_data(str(kit)))
    X_test, y_test = _step(guard, "get_test_data", lambda: problem.get_test_data(str(kit)))
    folds = _step(guard, "get_cv", lambda: [
        (np.asarray(tr, dtype=np.int64), np.asarray(va, dtype=np.int64))
        for tr, va in problem.get_cv(X_train, y_train)])
    if not folds:
        raise PrepareError("get_cv returned no folds")
    X_train, train_folders = _step(guard, "naming the kit's folders X_train names",
                                   lambda: with_kit_folders(X_train, kit))
    X_test, test_folders = _step(guard, "naming the kit's folders X_test names",
                                 lambda: with_kit_folders(X_test, kit))
    truth = _step(guard, "Predictions(y_true=...) on the training labels",
                  lambda: np.asarray(problem.Predictions(y_true=y_train).y_pred))
    n_test = _step(guard, "Predictions(y_true=...) on the test labels",
                   lambda: len(problem.Predictions(y_true=y_test).y_pred))
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
    try:
        shape, shape_error = prediction_shape(truth), ""
    except ValueError as exc:
        shape, shape_error = None, str(exc)
    versions = {}
    for name in REPORTED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "n_train": len(truth),
        "n_test": n_test,
        "n_folds": len(folds),
        # None, with the reason, for labels that are neither numbers nor
        # lists of objects (the trusted side refuses the kit).
        "prediction_shape": shape,
        "prediction_error": shape_error,
        "prediction_dtype": str(truth.dtype),
        "prediction_kind": truth.dtype.kind,
        "kit_folders": sorted({*train_folders, *test_folders}),
        "starting_kit_import_errors": starting_kit_errors,
        "python": sys.version.split()[0],
        "packages": versions,
    }


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main(sys.argv[1], sys.argv[2]))
