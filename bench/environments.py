"""Problems' own runtime environments: what building one costs, and what a
fold in one costs against the shared runtime.

For the conformance kit that pins pandas 2.2 and scikit-learn 1.5
(tests/conformance/kits/pinned_environment), prints:
  - resolve: pip resolving the kit's requirements to a lock (network: PyPI or
    the configured index);
  - cold build: an empty wheel folder and an empty pip cache, so every
    locked file is downloaded, then installed into a new venv;
  - warm build: the same lock again with the wheel folder full (no network):
    what a second worker, or a rebuild after pruning, pays;
  - the venv's size on disk and the wheel folder's;
  - the Docker image of the environment (when a daemon and the runtime image
    are there): its offline build from the wheel folder, and its size
    against the runtime image it is layered on;
  - preparing the kit's data in the environment (its own get_train_data,
    get_test_data and get_cv in the venv's interpreter);
  - first-fold latency after a build: a fresh local sandbox (fork server
    started with the environment's interpreter, its imports, one fold of the
    starting kit), and a second fold on the warm fork server; against the same
    two on the shared runtime (the worker's own interpreter), as ratios;
  - with Docker, a slot's next fold of the environment in the warm container
    of its image started meanwhile, against a cold container.

Usage: python bench/environments.py [--repeat 3]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KIT = ROOT / "tests" / "conformance" / "kits" / "pinned_environment"
# The starting kit with DataFrame.map (pandas 2.1+ and 3) instead of
# applymap (pandas < 3 only): the same submission runs in both runtimes.
PORTABLE = "applymap("


def layout_fold(workdir: Path, kit: Path, inputs: Path, submission: Path) -> None:
    from workers.harness import layout

    for sub in (layout.INPUT_DIR, layout.SUBMISSION_DIR, layout.OUTPUT_DIR, layout.TMP_DIR):
        (workdir / sub).mkdir(parents=True)
    shutil.copyfile(kit / "problem.py", workdir / layout.PROBLEM_FILE)
    for name, target in (("X_train.pkl", layout.X_TRAIN), ("y_train.pkl", layout.Y_TRAIN),
                         ("X_test.pkl", layout.X_TEST)):
        shutil.copyfile(inputs / "sandbox" / name, workdir / target)
    import numpy as np

    with np.load(inputs / "folds.npz") as folds:
        np.savez(workdir / layout.FOLD, train_is=folds["train_0"], valid_is=folds["valid_0"])
    shutil.copyfile(submission, workdir / layout.SUBMISSION_DIR / "estimator.py")


def fold_seconds(interpreter: Path | None, kit: Path, inputs: Path, submission: Path,
                 work: Path) -> tuple[float, float]:
    """First fold on a fresh local sandbox, then a second on the same fork server."""
    from workers.harness import layout
    from workers.sandbox import Limits
    from workers.sandbox.local import LocalSandbox

    sandbox = LocalSandbox(work_dir=work)
    sandbox.close()
    limits = Limits(wall_time_s=300, memory_mb=4096)
    times = []
    for _ in range(2):
        started = time.perf_counter()
        workdir = Path(tempfile.mkdtemp(dir=sandbox.workdir_parent()))
        layout_fold(workdir, kit, inputs, submission)
        result = sandbox.run(workdir, limits, heartbeat=lambda: None,
                             **({"interpreter": interpreter} if interpreter else {}))
        times.append(time.perf_counter() - started)
        outcome = json.loads((workdir / layout.RESULT).read_text())
        if result.exit_code != 0 or outcome.get("status") != "ok":
            sys.exit(f"the fold failed: {outcome}\n{result.stderr[-2000:]}")
        sandbox.cleanup(workdir)
    sandbox.close()
    return times[0], times[1]


def docker_fold_seconds(venv: Path, wheels: Path, kit: Path, inputs: Path, submission: Path,
                        work: Path, warm: int) -> tuple[float, float]:
    """Two folds of the environment in the Docker sandbox, its image built
    already: the first, then the next (with ``warm``, in the container
    started meanwhile, once it is ready: what a slot's next fold finds)."""
    from workers.harness import layout
    from workers.sandbox import Limits
    from workers.sandbox.docker_backend import DockerSandbox

    sandbox = DockerSandbox(env_wheels_dir=wheels, warm=warm, work_dir=work)
    limits = Limits(wall_time_s=300, memory_mb=4096)
    times = []
    try:
        for k in range(2):
            if k and warm:
                sandbox.wait_until_warm()
            started = time.perf_counter()
            workdir = Path(tempfile.mkdtemp(dir=sandbox.workdir_parent()))
            layout_fold(workdir, kit, inputs, submission)
            result = sandbox.run(workdir, limits, heartbeat=lambda: None,
                                 interpreter=venv / "bin" / "python")
            times.append(time.perf_counter() - started)
            outcome = json.loads((workdir / layout.RESULT).read_text())
            if result.exit_code != 0 or outcome.get("status") != "ok":
                sys.exit(f"the Docker fold failed: {outcome}\n{result.stderr[-2000:]}")
            sandbox.cleanup(workdir)
    finally:
        sandbox.close()
    return times[0], times[1]


def image_figures(venv: Path, wheels: Path) -> dict | None:
    """Time building the environment's Docker image (none there before) and
    its size against the runtime image's; None without Docker."""
    try:
        from workers.sandbox import SandboxFailure
        from workers.sandbox.docker_backend import DockerSandbox, docker_client

        sandbox = DockerSandbox(env_wheels_dir=wheels)
        runtime = docker_client().images.get(sandbox.image)
    except Exception:  # noqa: BLE001 - no daemon, no runtime image: no figures
        return None
    from datarun import environments

    environments.remove_images(venv.name)
    started = time.perf_counter()
    try:
        ref = sandbox.environment_image(venv, heartbeat=lambda: None, no_cache=True)
    except SandboxFailure as exc:
        sys.exit(f"the image build failed: {exc}")
    build_s = time.perf_counter() - started
    size = docker_client().images.get(ref.split("@")[0]).attrs["Size"]
    environments.remove_images(venv.name)
    return {"build_s": build_s, "size": size, "runtime_size": runtime.attrs["Size"],
            "extra": size - runtime.attrs["Size"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fold latency runs (median)")
    args = parser.parse_args()

    from datarun import environments, ramp_kits

    home = Path(tempfile.mkdtemp(prefix="datarun-bench-environments-", dir="/var/tmp"))
    try:
        kit = home / "kit"
        shutil.copytree(KIT, kit)
        subprocess.run([sys.executable, "prepare_data.py"], cwd=kit, check=True)
        submission = home / "estimator.py"
        submission.write_text((kit / "submissions" / "starting_kit" / "estimator.py")
                              .read_text().replace(PORTABLE, "map("))
        source = environments.PipSource(
            index_url=os.environ.get("DATARUN_ENV_INDEX_URL", ""),
            find_links=tuple(p for p in os.environ.get("DATARUN_ENV_FIND_LINKS", "").split(",")
                             if p))

        started = time.perf_counter()
        lock = environments.resolve(environments.kit_requirements(kit), source)
        resolve_s = time.perf_counter() - started

        # Cold: nothing downloaded yet, pip's own cache empty too.
        os.environ["XDG_CACHE_HOME"] = str(home / "pip-cache")
        wheels, venv = home / "wheels", home / "envs" / lock.hash
        started = time.perf_counter()
        environments.download(lock, wheels, source)
        download_s = time.perf_counter() - started
        environments.build_venv(lock, venv, wheels)
        cold_s = time.perf_counter() - started

        shutil.rmtree(venv)
        started = time.perf_counter()
        environments.download(lock, wheels, source)
        environments.build_venv(lock, venv, wheels)
        warm_s = time.perf_counter() - started
        python = venv / "bin" / "python"

        image = image_figures(venv, wheels)

        started = time.perf_counter()
        environments.prepare_in_environment(python, kit, home / "env-inputs")
        prepare_s = time.perf_counter() - started
        shared_inputs = home / "shared-inputs"
        ramp_kits.prepare_kit(kit, shared_inputs, public=False)

        work = home / "work"
        env_runs = [fold_seconds(python, kit, home / "env-inputs", submission, work)
                    for _ in range(args.repeat)]
        shared_runs = [fold_seconds(None, kit, shared_inputs, submission, work)
                       for _ in range(args.repeat)]
        docker = {}
        if image:
            from workers.sandbox.docker_backend import DockerSandbox

            DockerSandbox(env_wheels_dir=wheels).environment_image(venv, heartbeat=lambda: None)
            for warm in (0, 1):
                runs = [docker_fold_seconds(venv, wheels, kit, home / "env-inputs", submission,
                                            home / "docker-work", warm)
                        for _ in range(args.repeat)]
                docker[warm] = statistics.median(r[1] for r in runs)
            environments.remove_images(venv.name)
        env_first = statistics.median(r[0] for r in env_runs)
        env_next = statistics.median(r[1] for r in env_runs)
        shared_first = statistics.median(r[0] for r in shared_runs)
        shared_next = statistics.median(r[1] for r in shared_runs)

        mib = 2**20
        print(f"lock: {len(lock.packages)} packages, {lock.hash[:12]} "
              f"(pandas {dict((p.name, p.version) for p in lock.packages)['pandas']})")
        print(f"resolve (pip, index):           {resolve_s:7.1f} s")
        print(f"cold build (download + venv):   {cold_s:7.1f} s  (download {download_s:.1f} s)")
        print(f"warm build (wheels on disk):    {warm_s:7.1f} s  "
              f"(cold / warm {cold_s / warm_s:.1f}x)")
        print(f"venv size:                      {environments.folder_bytes(venv) / mib:7.0f} MiB")
        print(f"wheel folder:                   {environments.folder_bytes(wheels) / mib:7.0f} MiB")
        if image:
            print(f"Docker image build (offline):   {image['build_s']:7.1f} s  "
                  f"(image {image['size'] / mib:.0f} MiB, runtime image "
                  f"{image['runtime_size'] / mib:.0f} MiB: +{image['extra'] / mib:.0f} MiB)")
        else:
            print("Docker image build:             skipped (no Docker daemon or runtime image)")
        print(f"prepare the kit's data in it:   {prepare_s:7.1f} s")
        print(f"first fold, environment:        {env_first:7.2f} s  "
              f"(shared runtime {shared_first:.2f} s, ratio {env_first / shared_first:.2f})")
        print(f"next fold, environment:         {env_next:7.2f} s  "
              f"(shared runtime {shared_next:.2f} s, ratio {env_next / shared_next:.2f})")
        if docker:
            print(f"next fold, environment, Docker: {docker[1]:7.2f} s in a warm container "
                  f"(cold container {docker[0]:.2f} s, ratio {docker[1] / docker[0]:.2f})")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
