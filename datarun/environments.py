"""Runtime environments of problems, on the trusted side (no Django).

A problem that declares its packages (a RAMP kit's ``requirements.txt``, the
pip part of its ``environment.yml``, or an organiser's edit) runs its folds in
a venv of its own instead of the server's. The declared lines are resolved
once by pip into a **lock**: every package at an exact version with the
sha256 of the file pip chose. The lock's hash names the environment: one venv
per distinct lock, whatever problems share it.

Building downloads the locked files into a wheel folder shared by every
build (the warm cache), then installs them with ``--no-index
--require-hashes --no-deps``: what is installed is exactly what was locked,
and a build from a full wheel folder needs no network. pip never reads the
machine's own pip configuration: the index and wheel folders are the ones
Datarun is configured with (``DATARUN_ENV_INDEX_URL``,
``DATARUN_ENV_FIND_LINKS``).

The venv holds what the problem asks for plus what the fold harness needs
(:data:`HARNESS_NEEDS`), never the server's own packages (Django, Celery,
DuckDB, pyarrow) unless the problem lists them.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# What the harness (workers/harness) imports besides the standard library:
# ramp-workflow, which brings numpy, pandas, scikit-learn and scipy.
HARNESS_NEEDS = ("ramp-workflow",)
# Written last into a venv that built completely: a folder without it is
# a build that did not finish, never used.
READY_MARKER = ".datarun-ready"
LOCK_FILE = "datarun-lock.txt"
# The lock as a downloaded starting kit holds it (``datarun test`` installs it).
KIT_LOCK_FILE = "requirements-lock.txt"
CONDA_FILES = ("environment.yml", "environment.yaml")
# A kit holding one of these declares its own environment.
KIT_ENVIRONMENT_FILES = ("requirements.txt", KIT_LOCK_FILE, *CONDA_FILES)
LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s+--hash=sha256:([0-9a-f]{64})$")
PREPARED_FILES = ("sandbox/X_train.pkl", "sandbox/y_train.pkl", "sandbox/X_test.pkl",
                  "trusted/y_test.pkl", "folds.npz", "sandbox/kit_files.zip")
# Requirement lines are package names with version specifiers and markers:
# no pip options (which could point pip at other indexes or files on the
# server), no direct URLs or paths.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")
PIP_TIMEOUT_S = 1800


class EnvironmentError_(Exception):
    """Resolving or building failed; ``message`` names the package and pip's reason."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.message = message
        self.log = log


@dataclass(frozen=True)
class PipSource:
    """Where pip finds packages: an index (``""``: PyPI; ``"none"``: no index,
    only the wheel folders) and wheel folders."""

    index_url: str = ""
    find_links: tuple[str, ...] = ()

    def options(self) -> list[str]:
        opts = []
        if self.index_url == "none":
            opts.append("--no-index")
        elif self.index_url:
            opts += ["--index-url", self.index_url]
        for folder in self.find_links:
            opts += ["--find-links", folder]
        return opts


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    sha256: str
    filename: str


@dataclass(frozen=True)
class Lock:
    requirements: str
    packages: tuple[LockedPackage, ...]
    python: str

    @property
    def text(self) -> str:
        """The lock as a pip requirements file (``--require-hashes`` form)."""
        return "".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n"
                       for p in self.packages)

    @property
    def hash(self) -> str:
        return hashlib.sha256(f"python {self.python}\n{self.text}".encode()).hexdigest()

    def as_json(self) -> list[dict]:
        return [{"name": p.name, "version": p.version, "sha256": p.sha256,
                 "filename": p.filename} for p in self.packages]

    @classmethod
    def from_json(cls, requirements: str, packages: list[dict], python: str) -> "Lock":
        return cls(requirements, tuple(LockedPackage(**p) for p in packages), python)


def python_tag() -> str:
    """The interpreter every environment is made from (this one's base)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


# --- what a problem declares ---------------------------------------------------------

def parse_requirements(text: str) -> list[str]:
    """The requirement lines of ``text`` (comments and blank lines left out);
    raises :class:`EnvironmentError_` on a line that is not a plain requirement."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        problem = requirement_problem(line)
        if problem:
            raise EnvironmentError_(f"line {number} ({line!r}) {problem}")
        lines.append(line)
    return lines


def requirement_problem(line: str) -> str | None:
    """Why ``line`` is not a plain requirement (``"is a pip option: ..."``),
    or None when it is one."""
    if line.startswith("-"):
        return ("is a pip option: list packages only; the index and wheel folders are "
                "the server's (DATARUN_ENV_INDEX_URL)")
    if "://" in line or " @ " in line or line.startswith((".", "/")) or not NAME.match(line):
        return ("is not a package requirement such as 'pandas==2.2.3': URLs, paths and VCS "
                "links are not allowed")
    return None


def declares_environment(kit_dir: Path) -> bool:
    """Whether the kit declares its own environment (:data:`KIT_ENVIRONMENT_FILES`)."""
    return any((Path(kit_dir) / name).is_file() for name in KIT_ENVIRONMENT_FILES)


def kit_requirements(kit_dir: Path) -> str:
    """The packages a RAMP kit declares: its ``requirements.txt`` and the
    ``pip:`` part of its ``environment.yml`` (its conda packages are left
    out: environments are pip-only). Empty when it declares none."""
    kit_dir = Path(kit_dir)
    parts = []
    requirements = kit_dir / "requirements.txt"
    if requirements.is_file():
        parts.append(requirements.read_text(errors="replace"))
    conda = next((kit_dir / n for n in CONDA_FILES if (kit_dir / n).is_file()), None)
    if conda is not None:
        import yaml

        try:
            spec = yaml.safe_load(conda.read_text(errors="replace")) or {}
        except yaml.YAMLError as exc:
            raise EnvironmentError_(f"{conda.name} is not valid YAML: {exc}") from exc
        for dependency in (spec.get("dependencies") or []) if isinstance(spec, dict) else []:
            if isinstance(dependency, dict) and isinstance(dependency.get("pip"), list):
                parts.append("".join(f"{line}\n" for line in dependency["pip"]))
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts if p.strip())


def read_lock(text: str) -> Lock:
    """A lock written as :attr:`Lock.text` (a starting kit's
    ``requirements-lock.txt``), for this interpreter."""
    packages = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LOCK_LINE.match(line)
        if match is None:
            raise EnvironmentError_(f"line {number} of the lock ({line!r}) is not "
                                    "'name==version --hash=sha256:...'")
        name, version, sha = match.groups()
        packages.append(LockedPackage(name=name, version=version, sha256=sha, filename=""))
    if not packages:
        raise EnvironmentError_("the lock lists no package")
    return Lock(requirements="", packages=tuple(sorted(packages, key=lambda p: p.name)),
                python=python_tag())


def kit_lock(kit_dir: Path, source: "PipSource") -> Lock | None:
    """The environment a kit declares: its :data:`KIT_LOCK_FILE` as it is
    (a starting kit downloaded from an event), else its requirements
    resolved now; None when it declares none."""
    lock_file = Path(kit_dir) / KIT_LOCK_FILE
    if lock_file.is_file():
        return read_lock(lock_file.read_text(errors="replace"))
    requirements = kit_requirements(kit_dir)
    return resolve(requirements, source) if requirements.strip() else None


# --- pip ------------------------------------------------------------------------------

def _pip_env() -> dict[str, str]:
    """pip without the machine's configuration files or PIP_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1")
    return env


def _pip(args: list[str], *, cwd: Path | None = None, python: str = sys.executable
         ) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "pip", *args], cwd=cwd, env=_pip_env(),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=PIP_TIMEOUT_S)


def pip_reason(output: str, requirements: list[str] = ()) -> str:
    """pip's own explanation in ``output``: its ERROR lines and, for a
    conflict, the lines saying what caused it; a requirement pip names by
    its line in our temporary file is named by its text."""
    kept = []
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("ERROR:") and "ResolutionImpossible" not in line:
            kept.append(line[len("ERROR:"):].strip())
        elif line.startswith("The conflict is caused by"):
            kept.append("The conflict is caused by:")
            for cause in lines[i + 1:]:
                if not cause.strip():
                    break
                kept.append(cause.strip() + ";")
    text = " ".join(dict.fromkeys(kept)).rstrip(";")
    text = re.sub(r"-r \S+ \(line (\d+)\)",
                  lambda m: (requirements[int(m.group(1)) - 1]
                             if int(m.group(1)) <= len(requirements) else m.group(0)), text)
    return (text or (lines[-1] if lines else "pip failed with no message"))[:2000]


def resolve(requirements: str, source: PipSource) -> Lock:
    """The lock of ``requirements`` plus :data:`HARNESS_NEEDS` for this
    interpreter; :class:`EnvironmentError_` naming the package and pip's
    reason when they cannot be resolved."""
    lines = parse_requirements(requirements)
    if not lines:
        raise EnvironmentError_("the requirements list no package")
    names = {NAME.match(line).group(0).lower().replace("_", "-") for line in lines}
    needed = [n for n in HARNESS_NEEDS if n not in names]
    with tempfile.TemporaryDirectory(prefix="datarun-resolve-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("".join(f"{line}\n" for line in [*lines, *needed]))
        report = Path(tmp) / "report.json"
        done = _pip(["install", "--dry-run", "--ignore-installed", "--only-binary", ":all:",
                     "--progress-bar", "off", "--report", str(report), *source.options(),
                     "-r", str(req)])
        if done.returncode != 0:
            raise EnvironmentError_(
                "the requirements cannot be installed: "
                + pip_reason(done.stderr + "\n" + done.stdout, [*lines, *needed]),
                done.stdout + done.stderr)
        installed = json.loads(report.read_text())["install"]
    packages = []
    for item in installed:
        info = item.get("download_info") or {}
        sha = ((info.get("archive_info") or {}).get("hashes") or {}).get("sha256")
        name = item["metadata"]["name"]
        if not sha:
            raise EnvironmentError_(f"{name} comes from {info.get('url', 'nowhere')}, not a "
                                    "released file with a hash: it cannot be locked")
        packages.append(LockedPackage(
            name=re.sub(r"[-_.]+", "-", name).lower(), version=item["metadata"]["version"],
            sha256=sha, filename=info["url"].rsplit("/", 1)[-1]))
    return Lock(requirements="".join(f"{line}\n" for line in lines),
                packages=tuple(sorted(packages, key=lambda p: p.name)), python=python_tag())


def download(lock: Lock, wheels: Path, source: PipSource) -> str:
    """Put every locked file into ``wheels`` (those already there are reused,
    checked against their hash); returns pip's log."""
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [p for p in lock.packages if not file_has_hash(wheels / p.filename, p.sha256)]
    if not missing:
        return "every locked file is in the wheel folder already\n"
    with tempfile.TemporaryDirectory(prefix="datarun-download-", dir=wheels) as tmp:
        req = Path(tmp) / "lock.txt"
        req.write_text("".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n"
                               for p in missing))
        done = _pip(["download", "--no-deps", "--require-hashes", "--only-binary", ":all:",
                     "--dest", tmp, *source.options(), "--find-links", str(wheels),
                     "-r", str(req)])
        if done.returncode != 0:
            raise EnvironmentError_("downloading the packages failed: "
                                    + pip_reason(done.stderr + "\n" + done.stdout),
                                    done.stdout + done.stderr)
        for path in Path(tmp).iterdir():
            if path.suffix == ".whl":
                os.replace(path, wheels / path.name)
    return done.stdout + done.stderr


def file_has_hash(path: Path, sha256: str) -> bool:
    if not path.is_file():
        return False
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == sha256


def build_venv(lock: Lock, target: Path, wheels: Path) -> str:
    """Make the venv of ``lock`` at ``target`` from the files in ``wheels``,
    offline; returns pip's log. All or nothing: on failure ``target`` is
    removed; on success it holds :data:`READY_MARKER`."""
    if target.exists():
        shutil.rmtree(target)
    try:
        log = []
        done = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise EnvironmentError_(f"making the venv failed: {done.stderr.strip()[-500:]}")
        (target / LOCK_FILE).write_text(lock.text)
        done = _pip(["--python", str(target / "bin" / "python"), "install", "--no-index",
                     "--find-links", str(wheels), "--no-deps", "--require-hashes",
                     "-r", str(target / LOCK_FILE)])
        log.append(done.stdout + done.stderr)
        if done.returncode != 0:
            raise EnvironmentError_("installing the packages failed: "
                                    + pip_reason(done.stderr + "\n" + done.stdout),
                                    "".join(log))
        (target / READY_MARKER).write_text(lock.hash + "\n")
        return "".join(log)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def ensure_built(lock: Lock, environments_dir: Path, wheels: Path, source: PipSource) -> Path:
    """The interpreter of ``lock``'s venv under ``environments_dir``, built
    now if it is not there."""
    python = venv_python(environments_dir, lock.hash)
    if python is None:
        download(lock, wheels, source)
        build_venv(lock, Path(environments_dir) / lock.hash, wheels)
        python = venv_python(environments_dir, lock.hash)
    return python


def venv_python(environments_dir: Path, lock_hash: str) -> Path | None:
    """The interpreter of a built environment, None when it is not built here."""
    folder = Path(environments_dir) / lock_hash
    if not (folder / READY_MARKER).is_file():
        return None
    return folder / "bin" / "python"


def remove_images(lock_hash: str) -> list[str]:
    """Remove the Docker images built for an environment (the Docker
    backend labels them with its lock hash); those removed. Nothing where
    this machine has no Docker."""
    if not shutil.which("docker"):
        return []
    listed = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                             "--filter", f"label=org.datarun.environment={lock_hash}"],
                            capture_output=True, text=True, timeout=60)
    images = [line for line in listed.stdout.split() if line] if listed.returncode == 0 else []
    if images:
        subprocess.run(["docker", "rmi", *images], capture_output=True, timeout=300)
    return images


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*")
               if p.is_file() and not p.is_symlink())


# --- preparing a kit's inputs in its environment --------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NON_NUMERIC_PREDICTIONS = (
    "this problem's predictions are neither numbers nor lists of objects ({reason}): "
    "Datarun evaluates predictions that are numeric arrays (classification, regression, "
    "clustering, combined types) or, as ramp-workflow's detection, a list of objects of "
    "numbers per row")


def network_cut_command() -> list[str]:
    """The prefix that runs a command without network: bubblewrap's own
    network namespace (as the local sandbox has), the rest of the host as
    it is. Empty where bubblewrap cannot run (``DATARUN_LOCAL_BWRAP=off``, no
    user namespaces): then only the preparation's own guard refuses the
    network to Python code."""
    global _network_cut
    if _network_cut is None:
        command = ["bwrap", "--dev-bind", "/", "/", "--unshare-net", "--die-with-parent", "--"]
        works = (os.environ.get("DATARUN_LOCAL_BWRAP", "auto") != "off"
                 and shutil.which("bwrap") is not None
                 and subprocess.run([*command, "/bin/true"], capture_output=True).returncode == 0)
        _network_cut = command if works else []
    return _network_cut


_network_cut: list[str] | None = None


def prepare_in_environment(python: Path, kit_dir: Path, out_dir: Path,
                           timeout_s: float = 1800, *, public: bool = False) -> dict:
    """Run :mod:`workers.harness.prepare` with the environment's interpreter
    and no network: the kit's own code imports (``problem.py``, the starting
    kit's modules), loads its data and computes its folds with the
    environment's libraries, pickles them with those, and checks them as
    :func:`datarun.ramp_kits.prepare_kit` checks a kit on the shared runtime.
    ``public``: then :mod:`datarun.public_split` writes the participants'
    data there too (``out_dir/public``). Trusted code (the organiser's), run
    like ``manage.py import_ramp_kit`` runs it, outside the participants'
    sandbox. Returns the summary it wrote; :class:`EnvironmentError_` with
    the organiser's message when a step failed."""
    env = {"PATH": f"{Path(python).parent}:/usr/bin:/bin", "LANG": "C.UTF-8",
           "PYTHONPATH": str(PROJECT_ROOT), "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(out_dir)}
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def run(what: str, module: str) -> None:
        remaining = timeout_s - (time.monotonic() - started)
        try:
            done = subprocess.run([*network_cut_command(), str(python), "-m", module,
                                   str(kit_dir), str(out_dir)], cwd=kit_dir, env=env,
                                  capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  timeout=max(remaining, 1))
        except subprocess.TimeoutExpired as exc:
            raise EnvironmentError_(f"{what} in its environment took more than "
                                    f"{timeout_s:g} s") from exc
        if done.returncode != 0:
            raise EnvironmentError_(f"{what} in its environment failed: "
                                    + _prepare_failure(out_dir, done),
                                    done.stdout + done.stderr)

    run("preparing the kit's data", "workers.harness.prepare")
    summary = json.loads((out_dir / "summary.json").read_text())
    if summary["prediction_shape"] is None:
        raise EnvironmentError_(NON_NUMERIC_PREDICTIONS.format(
            reason=summary["prediction_error"]))
    from datarun import ramp_kits

    # The kit's folders its X names (images), for the folds and the public
    # data: checked and zipped here, on the trusted side.
    folders = summary.get("kit_folders", [])
    for folder in folders:
        if not isinstance(folder, str) or ramp_kits.kit_folder(folder, kit_dir) != folder:
            raise EnvironmentError_(f"the kit's X names {folder!r}, not a folder inside its "
                                    f"{ramp_kits.DATA_DIR}/")
    (out_dir / "sandbox" / ramp_kits.KIT_FILES).write_bytes(
        ramp_kits.kit_files_bytes(kit_dir, folders))
    if public:
        run("writing the public data", "datarun.public_split")
    summary["seconds"] = time.monotonic() - started
    return summary


def _prepare_failure(out_dir: Path, done: subprocess.CompletedProcess) -> str:
    try:
        return json.loads((out_dir / "error.json").read_text())["message"][:2000]
    except (OSError, ValueError, KeyError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return tail[0][:1000]


def install_prepared(prepared: Path, staging: Path) -> tuple[str, str]:
    """Put the files :func:`prepare_in_environment` wrote in ``staging`` in
    place of the prepared problem's (its public data too, when it wrote
    them); returns the new data hash and folds hash (computed as
    :func:`datarun.ramp_kits.prepare_kit` computes them)."""
    from datarun import public_split, ramp_kits

    for name in PREPARED_FILES:
        (prepared / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, prepared / name)
    if (staging / public_split.PUBLIC_DIR).is_dir():
        shutil.rmtree(prepared / public_split.PUBLIC_DIR, ignore_errors=True)
        os.replace(staging / public_split.PUBLIC_DIR, prepared / public_split.PUBLIC_DIR)
    shutil.rmtree(staging, ignore_errors=True)
    # The fold inputs' hashes, if any were made, were of the files just replaced.
    shutil.rmtree(prepared / "fold-inputs", ignore_errors=True)
    data_hash = hashlib.sha256()
    for name in PREPARED_FILES[:4]:
        data_hash.update((prepared / name).read_bytes())
    data_hash.update(ramp_kits.hashed_kit_files(prepared / PREPARED_FILES[5]))
    return data_hash.hexdigest(), ramp_kits.hash_folds(ramp_kits.load_folds(prepared))
