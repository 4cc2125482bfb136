"""What software a process runs: recorded with every run, by the server for
itself and by each runner for the folds it runs (standard library only)."""
import functools
import importlib.metadata
import platform
import socket

# The packages whose versions decide what a submission computes.
TRACKED_PACKAGES = ("numpy", "scipy", "pandas", "scikit-learn", "ramp-workflow", "pyarrow")


def software() -> dict:
    """This process's Python, key package versions and platform."""
    found = _software()
    return {**found, "packages": dict(found["packages"])}


@functools.cache
def _software() -> dict:
    # Read once per process (scanning the installed packages' metadata takes
    # a few ms, for every claim and every submission): what a process runs
    # does not change while it runs.
    packages = {}
    for name in TRACKED_PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    return {"python": platform.python_version(), "packages": packages,
            "platform": platform.platform(), "host": socket.gethostname()}
