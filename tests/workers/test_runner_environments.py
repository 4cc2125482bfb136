"""A runner builds a problem's environment only from what matches its hashes:
the lock must be the one the ticket names, every file the one the lock names.
(The platform here is a stand-in answering the two runner API calls; the
real runner, platform and build: tests/integration/test_pools.py.)"""
import hashlib
from pathlib import Path

import pytest

from datarun import environments
from workers.runner_environments import EnvironmentUnavailable, ensure_environment

GOOD = b"the wheel the lock names"


class Platform:
    def __init__(self, packages: list[dict], files: dict[str, bytes]):
        self.packages, self.files = packages, files

    def lock(self) -> environments.Lock:
        return environments.Lock.from_json("", self.packages, environments.python_tag())

    def environment(self, lock_hash: str) -> dict:
        return {"lock_hash": lock_hash, "python": environments.python_tag(),
                "requirements": "", "packages": self.packages}

    def fetch_wheel(self, sha256: str, dest: Path) -> None:
        dest.write_bytes(self.files[sha256])


def package(filename: str = "thing-1.0-py3-none-any.whl", content: bytes = GOOD) -> dict:
    return {"name": "thing", "version": "1.0", "sha256": hashlib.sha256(content).hexdigest(),
            "filename": filename}


def build(platform: Platform, lock_hash: str, tmp_path: Path) -> Path:
    return ensure_environment(platform, lock_hash, tmp_path / "envs", tmp_path / "wheels")


def test_a_lock_other_than_the_tickets_is_refused(tmp_path):
    platform = Platform([package()], {})
    with pytest.raises(EnvironmentUnavailable, match="not the .* the ticket names"):
        build(platform, "a" * 64, tmp_path)
    assert not (tmp_path / "envs" / ("a" * 64)).exists()


def test_a_file_other_than_the_locked_one_is_not_used(tmp_path):
    platform = Platform([package()], {})
    platform.files[package()["sha256"]] = b"something else"
    with pytest.raises(EnvironmentUnavailable, match="does not have the sha256 its lock names"):
        build(platform, platform.lock().hash, tmp_path)
    assert list((tmp_path / "wheels").iterdir()) == []
    assert environments.venv_python(tmp_path / "envs", platform.lock().hash) is None


def test_a_file_name_that_is_a_path_is_refused(tmp_path):
    platform = Platform([package(filename="../../outside.whl")], {package()["sha256"]: GOOD})
    with pytest.raises(EnvironmentUnavailable, match="not a wheel with a sha256"):
        build(platform, platform.lock().hash, tmp_path)
    assert not (tmp_path / "outside.whl").exists()
