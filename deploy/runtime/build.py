#!/usr/bin/env python3
"""Build the runtime image, with or without an image registry.

    python3 deploy/runtime/build.py            # FROM python:3.11-slim-bookworm
    python3 deploy/runtime/build.py --offline  # from Debian packages (debootstrap)

The image is tagged ``datarun-runtime:<hash>`` (see workers/sandbox/image.py);
an existing image with that tag is reused. The offline build needs root,
debootstrap, a Debian mirror (``--mirror`` or DATARUN_DEBIAN_MIRROR, default deb.debian.org) and a
package index for pip (this machine's pip configuration): it makes a minimal
Debian root with Python, installs the runtime requirements from wheels
downloaded on this machine, imports it as ``datarun-runtime-base:<hash>`` and
builds the same Dockerfile on it.
"""
import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy"))

from buildtools import image_exists, run  # noqa: E402

from workers.sandbox.image import (  # noqa: E402
    BASE_PACKAGES,
    BASE_SUITE,
    RUNTIME_DIR,
    requirements_tag,
    runtime_files,
    runtime_image,
)

BASE_REPOSITORY = "datarun-runtime-base"


def build_offline_base(mirror: str) -> str:
    tag = f"{BASE_REPOSITORY}:{requirements_tag()}"
    if image_exists(tag):
        print(f"reusing {tag}")
        return tag
    if os.geteuid() != 0:
        sys.exit("the offline build needs root (debootstrap and chroot)")
    if not shutil.which("debootstrap"):
        sys.exit("the offline build needs debootstrap: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="datarun-rootfs-", dir="/var/tmp") as tmp:
        rootfs = Path(tmp, "rootfs")
        run("debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", BASE_SUITE,
            rootfs, mirror)
        wheels = rootfs / "tmp" / "wheels"
        wheels.mkdir(parents=True)
        requirements = ROOT / RUNTIME_DIR / "requirements.txt"
        shutil.copy(requirements, rootfs / "tmp" / "requirements.txt")
        # Same Python minor version and C library as the chroot's: the wheels fit.
        run(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
            "--no-deps", "-r", requirements, "-d", wheels)
        run("chroot", rootfs, "/bin/sh", "-euc",
            "python3 -m venv /opt/venv && "
            "/opt/venv/bin/python -m pip install --quiet --no-cache-dir --no-index "
            "--disable-pip-version-check --find-links /tmp/wheels -r /tmp/requirements.txt",
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
        shutil.rmtree(wheels)
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc",
                         "usr/share/man", "usr/share/locale"):
            path = rootfs / leftover
            if path.is_dir():
                for child in path.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        (rootfs / "tmp" / "requirements.txt").unlink()
        archive = Path(tmp, "rootfs.tar")
        run("tar", "--numeric-owner", "-C", rootfs, "-cf", archive, ".")
        run("docker", "import", "--change", 'CMD ["/bin/sh"]', archive, tag)
    return tag


def build(base: str, pip_options: str) -> str:
    tag = runtime_image()
    with tempfile.TemporaryDirectory(prefix="datarun-runtime-") as ctx:
        for rel in runtime_files():
            (Path(ctx) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / rel, Path(ctx) / rel)
        run("docker", "build", "--quiet", "-f", Path(ctx, RUNTIME_DIR, "Dockerfile"),
            "--build-arg", f"BASE={base}", "--build-arg", f"PIP_OPTIONS={pip_options}",
            "--label", f"org.datarun.base={base}", "-t", tag, ctx,
            env={**os.environ, "DOCKER_BUILDKIT": "0"})
    return tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true",
                        help="build from Debian packages, pulling no image")
    parser.add_argument("--mirror", help="Debian mirror for the offline build",
                        default=os.environ.get("DATARUN_DEBIAN_MIRROR",
                                               "http://deb.debian.org/debian"))
    parser.add_argument("--force", action="store_true", help="rebuild an existing tag")
    args = parser.parse_args()
    tag = runtime_image()
    # Offline, the base is made (or found) first: deploy/web/build.py builds on it too.
    base = build_offline_base(args.mirror) if args.offline else "python:3.11-slim-bookworm"
    if image_exists(tag) and not args.force:
        print(f"{tag} is up to date")
        return
    build(base, "--no-index" if args.offline else "")
    print(f"built {tag}")


if __name__ == "__main__":
    main()
