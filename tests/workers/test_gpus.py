"""GPUs on a runner: what nvidia-smi says, how slots share GPUs out, the
fold's GPU memory peak, and the device request a GPU fold's container gets."""
import pytest

from workers import gpus
from workers.harness import layout
from workers.sandbox import Limits

SMI = """0, GPU-5d1a, NVIDIA H200, 143771
1, GPU-77b0, NVIDIA H200, 143771
2, GPU-9c2e, NVIDIA A100-SXM4-80GB, [N/A]
"""


def test_nvidia_smi_lists_each_gpu_with_its_index_name_and_memory():
    assert gpus.parse_nvidia_smi(SMI) == [
        {"index": "0", "uuid": "GPU-5d1a", "name": "NVIDIA H200", "memory_mb": 143771},
        {"index": "1", "uuid": "GPU-77b0", "name": "NVIDIA H200", "memory_mb": 143771},
        {"index": "2", "uuid": "GPU-9c2e", "name": "NVIDIA A100-SXM4-80GB", "memory_mb": None},
    ]
    # What nvidia-smi prints when the driver is missing is not a GPU.
    assert gpus.parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate "
                                 "with the NVIDIA driver.") == []


def test_slots_never_share_a_gpu_and_a_fold_gets_its_slots_first():
    four = [{"index": str(i), "name": "G"} for i in range(4)]
    shares = [gpus.for_slot(four, slot, 3) for slot in range(3)]
    assert [[g["index"] for g in share] for share in shares] == [["0", "3"], ["1"], ["2"]]
    assert gpus.fold_devices(shares[0], 2) == ("0", "3")
    assert gpus.fold_devices(shares[1], 0) == ()
    with pytest.raises(gpus.GpuSpecError, match="needs 2 GPU"):
        gpus.fold_devices(shares[1], 2)


def test_the_gpu_memory_peak_is_what_the_fold_added_on_its_devices():
    readings = iter([{"0": 500, "1": 100},      # before the fold
                     {"0": 1500, "1": 100},
                     {"0": 4500, "1": 2100},
                     {"0": 600, "1": 100}])
    peak = gpus.GpuMemoryPeak(("0", "1"), interval_s=0, read=lambda _: next(readings))
    ticks = []
    tick = peak.wrap(lambda: ticks.append(1))
    tick(), tick(), tick()
    assert ticks == [1, 1, 1]
    assert peak.peak == (4000 + 2000) * 2**20
    # No GPU (or no nvidia-smi): nothing measured, the callback unchanged.
    none = gpus.GpuMemoryPeak((), read=lambda _: pytest.fail("read without GPUs"))
    callback = ticks.clear
    assert none.wrap(callback) is callback and none.peak is None


def test_a_gpu_folds_container_asks_docker_for_its_devices_only(tmp_path):
    from workers.sandbox.docker_backend import DockerSandbox

    for name in (layout.INPUT_DIR, layout.SUBMISSION_DIR, layout.OUTPUT_DIR):
        (tmp_path / name).mkdir()
    sandbox = DockerSandbox()
    sandbox.warm_up()
    with_gpu = sandbox._create(tmp_path, Limits(wall_time_s=10, memory_mb=256,
                                                gpu_devices=("1",)))
    without = sandbox._create(tmp_path, Limits(wall_time_s=10, memory_mb=256))
    try:
        requests = with_gpu.attrs["HostConfig"]["DeviceRequests"]
        assert [(r["DeviceIDs"], r["Capabilities"]) for r in requests] == [(["1"], [["gpu"]])]
        assert not without.attrs["HostConfig"].get("DeviceRequests")
    finally:
        with_gpu.remove(force=True)
        without.remove(force=True)
