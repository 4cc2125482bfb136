"""The runtime image: same library versions as the server, a tag that follows
what is baked in, and a clear message when a worker cannot find it."""
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, docker_unavailable
from workers.sandbox import SandboxFailure
from workers.sandbox.image import runtime_files, runtime_tag


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.split("[")[0].lower()] = version
    return pins


def test_the_sandbox_has_the_servers_versions_of_the_scientific_stack():
    server = _pins(ROOT / "requirements.txt")
    runtime = _pins(ROOT / "deploy" / "runtime" / "requirements.txt")
    for name in ("numpy", "scipy", "pandas", "pyarrow", "scikit-learn", "ramp-workflow"):
        assert runtime[name] == server[name], name


def test_the_tag_changes_with_the_harness_and_only_with_what_is_baked_in(tmp_path):
    for rel in runtime_files(ROOT):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    tag = runtime_tag(tmp_path)
    assert tag == runtime_tag(ROOT)
    (tmp_path / "README.md").write_text("not in the image")
    assert runtime_tag(tmp_path) == tag
    run_py = tmp_path / "workers" / "harness" / "run.py"
    run_py.write_text(run_py.read_text() + "\n# changed\n")
    assert runtime_tag(tmp_path) != tag


def test_a_worker_without_its_image_says_how_to_build_it():
    if reason := docker_unavailable():
        pytest.skip(reason)
    from workers.sandbox.docker_backend import DockerSandbox

    with pytest.raises(SandboxFailure) as failure:
        DockerSandbox(image="datarun-runtime:not-built").warm_up()
    assert str(failure.value) == (
        "the runtime image datarun-runtime:not-built is not on this worker's Docker daemon; "
        "build it with `python3 deploy/runtime/build.py` (or with `--offline` on a machine "
        "without an image registry), or set DATARUN_RUNTIME_IMAGE")
