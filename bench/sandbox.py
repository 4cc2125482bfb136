"""Per-fold overhead of each sandbox backend against the bare in-process run.

For one fold of an example kit's starting kit, prints for each backend:
  - start-up: from the worker calling the backend to the harness starting
    inside the sandbox (fork or container creation, process start, imports
    outside the harness);
  - wind-down: from the harness writing its result to the worker holding
    checked predictions (process exit, container removal, reading the .npy);
  - total per fold, cold (first fold of a fresh backend: fork server start or
    image lookup included) and repeated (median of --repeat folds);
  - the ratio of the repeated total to the bare run: the harness called in
    this process, its imports already loaded (what the fold costs at best).

Backends: local (bubblewrap, when bwrap works here), local without
bubblewrap, and docker (when a daemon and the runtime image are there) three
ways: a cold container per fold (DATARUN_WARM_CONTAINERS=0), a warm container
that is ready when the fold comes (the slot was idle, or its last fold ran
longer than the warm-up), and warm containers for folds back to back (a
pool of DATARUN_WARM_CONTAINERS per slot, 3 by default: the first folds find
theirs ready, later ones may find the next still importing). It also prints
the memory one warm container holds while it waits. "overhead" is the issue's
per-fold figure: total minus the fold's compute (train + validate + test;
a cold container's imports are overhead).
Usage: python bench/sandbox.py [--kit iris] [--repeat 10]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kit", default="iris")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="datarun-bench-sandbox-", dir="/var/tmp"))
    os.environ.setdefault("DATARUN_HOME", str(home))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from datarun import ramp_kits, storage
    from datarun.contract import FoldTicket
    from workers.fold_io import prepare_workdir, read_outcome
    from workers.harness import layout
    from workers.harness.run import main as harness_main
    from workers.sandbox import Limits, SandboxFailure
    from workers.sandbox.docker_backend import DockerSandbox
    from workers.sandbox.local import LocalSandbox, bwrap_available

    kit = ROOT / "datarun" / "examples" / args.kit
    prepared = home / "prepared"
    info = ramp_kits.prepare_kit(kit, prepared)
    code = (kit / "submissions" / "starting_kit" / "estimator.py").read_bytes()
    train_is, _ = ramp_kits.load_folds(prepared)[0]
    spec = FoldTicket(
        fold_run_id=1, evaluation_id=1, fold_index=0, attempt=1,
        inputs=ramp_kits.fold_input_digests(prepared, 0),
        files={"estimator.py": storage.blob_put(code)}, limits={}, n_train=info.n_train,
        n_test=info.n_test, prediction_shape=info.prediction_shape,
    )
    inputs = ramp_kits.fold_inputs(prepared, 0)
    files = {"estimator.py": storage.blob_path(spec.files["estimator.py"])}

    def lay_out(workdir: Path, link_inputs: bool) -> None:
        prepare_workdir(spec, workdir, inputs=inputs, files=files, link_inputs=link_inputs)
    limits = Limits(wall_time_s=120, memory_mb=2048)

    # The bare run: the harness in this process, imports warm.
    bare = []
    for i in range(args.repeat + 1):
        workdir = home / f"bare-{i}"
        workdir.mkdir()
        prepare_workdir(spec, workdir, inputs=inputs, files=files)
        t0 = time.perf_counter()
        harness_main(workdir)
        if i:  # the first run pays the imports
            bare.append(time.perf_counter() - t0)
        shutil.rmtree(workdir)
    bare_s = statistics.median(bare)

    backends = []
    if bwrap_available():
        backends.append(("local (bubblewrap)", "auto", lambda: LocalSandbox(work_dir=home)))
    backends.append(("local (rlimits only)", "off", lambda: LocalSandbox(work_dir=home)))
    backends.append(("docker, cold", None, lambda: DockerSandbox(work_dir=home, warm=False)))
    backends.append(("docker, warm, ready", "ready", lambda: DockerSandbox(work_dir=home)))
    backends.append(("docker, warm, back to back", None, lambda: DockerSandbox(work_dir=home)))

    print(f"kit {args.kit}, fold 0 of the starting kit ({len(train_is)} training rows); "
          f"bare in-process run, median of {args.repeat}: {bare_s * 1000:.1f} ms\n")
    header = (f"{'backend':27} {'cold total':>11} {'start-up':>9} {'wind-down':>10} "
              f"{'total':>8} {'harness':>8} {'overhead':>9} {'ratio':>7}")
    print(header)
    print(f"{'':27} {'(ms)':>11} {'(ms, median of repeated folds)':>46}")
    overheads = {}
    waiting_memory = []
    for name, bwrap, make in backends:
        if bwrap in ("auto", "off"):
            os.environ["DATARUN_LOCAL_BWRAP"] = bwrap
            LocalSandbox._bwrap = None
            if LocalSandbox._server is not None:
                LocalSandbox._server.close()
                LocalSandbox._server = None
        try:
            backend = make()
            rows = []
            for _ in range(args.repeat + 1):
                if bwrap == "ready":
                    backend.wait_until_warm()
                rows.append(_one_fold(backend, spec, limits, layout, lay_out, read_outcome))
            if bwrap == "ready":
                backend.wait_until_warm()
                waiting_memory = backend.waiting_memory()
            backend.close()
        except SandboxFailure as exc:
            print(f"{name:27} unavailable: {exc}")
            continue
        cold, repeated = rows[0], rows[1:]

        def med(key, repeated=repeated):
            return statistics.median(r[key] for r in repeated) * 1000

        total = med("total")
        overheads[name] = statistics.median(r["total"] - r["compute"] for r in repeated) * 1000
        print(f"{name:27} {cold['total'] * 1000:11.0f} {med('start'):9.1f} "
              f"{med('end'):10.1f} {total:8.1f} {med('harness'):8.1f} "
              f"{overheads[name]:9.1f} {total / (bare_s * 1000):7.2f}")
    print("\nratio = repeated total / bare in-process run. start-up + harness + wind-down "
          "= total; overhead = total - (train + validate + test).")
    if waiting_memory:
        print(f"one warm container waiting for its fold holds "
              f"{statistics.median(waiting_memory) / 2**20:.0f} MiB (resident + swap, median of "
              f"{len(waiting_memory)}; page cache left out)")
    cold_ms = overheads.get("docker, cold")
    for name in ("docker, warm, ready", "docker, warm, back to back"):
        if cold_ms and name in overheads:
            print(f"{name}: per-fold overhead {overheads[name]:.0f} ms against "
                  f"{cold_ms:.0f} ms cold ({overheads[name] / cold_ms:.2f}x)")
    if LocalSandbox._server is not None:
        LocalSandbox._server.close()
    shutil.rmtree(home, ignore_errors=True)


def _one_fold(backend, spec, limits, layout, lay_out, read_outcome) -> dict:
    workdir = Path(tempfile.mkdtemp(dir=backend.workdir_parent()))
    lay_out(workdir, backend.inputs_read_only)
    t0 = time.time()
    result = backend.run(workdir, limits, heartbeat=lambda: None)
    outcome = read_outcome(spec, workdir, result, limits)
    t1 = time.time()
    harness = json.loads((workdir / layout.RESULT).read_text())
    backend.cleanup(workdir)
    if outcome.error:
        raise SystemExit(f"the fold failed: {outcome.error}")
    return {
        "total": t1 - t0,
        "start": harness["harness_started"] - t0,
        "end": t1 - harness["harness_ended"],
        "harness": harness["harness_ended"] - harness["harness_started"],
        "compute": harness["train_time"] + harness["valid_time"] + harness["test_time"],
    }


if __name__ == "__main__":
    main()
