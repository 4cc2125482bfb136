"""Naming the runtime image: its tag is a hash of everything baked into it.

The tag covers the runtime requirements, the Dockerfile and the harness code,
so a worker always asks for the image that matches its own harness, and a
build is skipped when nothing it depends on changed. Standard library only:
the build script uses it before any virtual environment exists.
"""
import hashlib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "datarun-runtime"
RUNTIME_DIR = "deploy/runtime"
# The offline base image: a minimal Debian with these packages (build.py).
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "passwd", "tini")


def runtime_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The files the runtime image is built from, relative to ``root``."""
    files = [Path(RUNTIME_DIR, "Dockerfile"), Path(RUNTIME_DIR, "requirements.txt"),
             Path(RUNTIME_DIR, "entrypoint.sh"), Path("workers", "__init__.py")]
    files += sorted(p.relative_to(root) for p in (root / "workers" / "harness").glob("*.py"))
    return files


def runtime_tag(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256()
    for rel in runtime_files(root):
        digest.update(str(rel).encode() + b"\0")
        digest.update((root / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def runtime_image(root: Path = PROJECT_ROOT) -> str:
    return f"{REPOSITORY}:{runtime_tag(root)}"


def requirements_tag(root: Path = PROJECT_ROOT) -> str:
    """Tag of the offline base image: Debian packages plus the requirements."""
    digest = hashlib.sha256(f"{BASE_SUITE} {' '.join(BASE_PACKAGES)}\0".encode())
    digest.update((root / RUNTIME_DIR / "requirements.txt").read_bytes())
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    print(runtime_image())
