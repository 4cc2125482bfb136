#!/usr/bin/env python3
"""Build the Datarun image (web, worker, beat, Flower), with or without a registry.

    python3 deploy/web/build.py            # FROM python:3.11-slim-bookworm
    python3 deploy/web/build.py --offline  # from the offline runtime base image

The image is tagged ``datarun-web:<version>`` (pyproject.toml's version), the
tag docker-compose.yml runs. The offline build pulls no image: it starts from
``datarun-runtime-base:<hash>``, the Debian root with Python that
``python3 deploy/runtime/build.py --offline`` makes, downloads the wheels of
requirements.txt on this machine (with its pip configuration), installs them
into a copy of that base with the network off, and builds
deploy/web/Dockerfile on the result with pip told to use no index.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy"))

from buildtools import image_exists, run  # noqa: E402

from workers.sandbox.image import requirements_tag  # noqa: E402

REPOSITORY = "datarun-web"
DEPS_REPOSITORY = "datarun-web-deps"
DOCKERFILE = ROOT / "deploy" / "web" / "Dockerfile"
REQUIREMENTS = ROOT / "requirements.txt"
# pip evaluates environment markers (redis needs async-timeout only where
# `python_full_version < "3.11.3"`) for the Python that runs it, whatever
# --python-version says. PEP 508 defines those markers from the `platform`
# module, so pip runs here with `platform` answering as the base's Python.
PIP_AS_PYTHON = (
    "import platform, runpy, sys; version = sys.argv.pop(1); "
    "platform.python_version = lambda: version; "
    "platform.python_version_tuple = lambda: tuple(version.split('.')); "
    "sys.argv[0] = 'pip'; runpy.run_module('pip', run_name='__main__', alter_sys=True)"
)


# Dependencies published only as source: built into wheels here first (they
# are pure Python), so that the download below can stay binary-only.
SDIST_ONLY = ["jsonpath-rw==1.4.0"]  # needed by mlcroissant


def image_tag() -> str:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return f"{REPOSITORY}:{version}"


def build_offline_deps(base: str) -> str:
    """``base`` with requirements.txt installed from wheels downloaded here."""
    digest = hashlib.sha256(base.encode() + b"\0" + REQUIREMENTS.read_bytes()).hexdigest()
    tag = f"{DEPS_REPOSITORY}:{digest[:16]}"
    if image_exists(tag):
        print(f"reusing {tag}")
        return tag
    python = run("docker", "run", "--rm", "--network", "none", base, "/opt/venv/bin/python",
                 "-c", "import platform; print(platform.python_version())",
                 capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="datarun-wheels-") as wheels:
        run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels,
            *SDIST_ONLY)
        run(sys.executable, "-c", PIP_AS_PYTHON, python, "download", "--quiet",
            "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
            "--find-links", wheels, "-r", REQUIREMENTS, "-d", wheels)
        container = f"datarun-web-deps-{os.getpid()}"
        # `docker run` + `docker commit` rather than a build step, so that the
        # wheels are mounted, not copied into a layer of the image.
        run("docker", "run", "--name", container, "--network", "none", "--user", "0",
            "-v", f"{wheels}:/wheels:ro", "-v", f"{REQUIREMENTS}:/requirements.txt:ro",
            base, "/opt/venv/bin/python", "-m", "pip", "install", "--quiet", "--no-cache-dir",
            "--disable-pip-version-check", "--no-index", "--find-links", "/wheels",
            "-r", "/requirements.txt")
        try:
            run("docker", "commit", container, tag, stdout=subprocess.DEVNULL)
        finally:
            run("docker", "rm", container, stdout=subprocess.DEVNULL)
    return tag


def build(base: str, pip_options: str, tag: str) -> None:
    # The classic builder takes FROM images from the local store and asks no
    # registry for them.
    run("docker", "build", "--quiet", "-f", DOCKERFILE,
        "--build-arg", f"BASE={base}", "--build-arg", f"PIP_OPTIONS={pip_options}",
        "--label", f"org.datarun.base={base}", "-t", tag, ROOT,
        env={**os.environ, "DOCKER_BUILDKIT": "0"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true",
                        help="build on the offline runtime base image, pulling no image")
    parser.add_argument("--base", help="base image of the offline build "
                        "(default: datarun-runtime-base:<hash of the runtime requirements>)")
    args = parser.parse_args()
    tag = image_tag()
    if args.offline:
        base = args.base or f"datarun-runtime-base:{requirements_tag()}"
        if not image_exists(base):
            sys.exit(f"{base} is not on this Docker daemon; make it first with "
                     "`python3 deploy/runtime/build.py --offline`")
        build(build_offline_deps(base), "--no-index", tag)
    else:
        build("python:3.11-slim-bookworm", "", tag)
    print(f"built {tag}")


if __name__ == "__main__":
    main()
