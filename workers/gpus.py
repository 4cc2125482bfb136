"""GPUs on a runner: which it has, which a slot and a fold get, and how much
GPU memory a fold used.

A runner finds its GPUs with ``nvidia-smi`` (or is told them with ``--gpu``).
Its slots share them out (slot ``i`` of ``n`` gets GPUs ``i``, ``i + n``, ...)
so that no two folds ever hold the same device, and a fold needing ``k`` GPUs
gets the first ``k`` of its slot's. The fold's GPU memory peak is the device
memory in use on its GPUs, sampled while it runs, above what was in use when
it started (the devices are the slot's alone).
"""
import logging
import shutil
import subprocess
import time
from pathlib import Path

logger = logging.getLogger(__name__)

QUERY = ["nvidia-smi", "--query-gpu=index,uuid,name,memory.total",
         "--format=csv,noheader,nounits"]
# Device nodes every CUDA program opens, besides its GPUs' own /dev/nvidiaN.
CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                 "/dev/nvidia-modeset")


class GpuSpecError(ValueError):
    """A fold needs more GPUs than its slot holds."""


def parse_nvidia_smi(text: str) -> list[dict]:
    """The GPUs of ``nvidia-smi --query-gpu=index,uuid,name,memory.total
    --format=csv,noheader,nounits``: ``[{"index", "uuid", "name", "memory_mb"}]``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        try:
            memory_mb = int(float(parts[3]))
        except ValueError:
            memory_mb = None
        gpus.append({"index": parts[0], "uuid": parts[1], "name": parts[2],
                     "memory_mb": memory_mb})
    return gpus


def detect() -> list[dict]:
    """This machine's NVIDIA GPUs (none when ``nvidia-smi`` is missing or fails)."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(QUERY, capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("nvidia-smi failed; no GPU advertised: %s", exc)
        return []
    return parse_nvidia_smi(done.stdout)


def for_slot(gpus: list[dict], slot: int, slots: int) -> list[dict]:
    """The GPUs slot ``slot`` of ``slots`` holds: every ``slots``-th one."""
    return gpus[slot::slots]


def fold_devices(slot_gpus: list[dict], needed: int) -> tuple[str, ...]:
    """The device indices of the GPUs a fold needing ``needed`` gets."""
    if needed > len(slot_gpus):
        raise GpuSpecError(f"the fold needs {needed} GPU(s) and this slot has "
                           f"{len(slot_gpus)}")
    return tuple(g["index"] for g in slot_gpus[:needed])


def device_nodes(indices) -> list[str]:
    """The device files a fold on GPUs ``indices`` needs (those that exist)."""
    nodes = [*CONTROL_NODES, *(f"/dev/nvidia{i}" for i in indices)]
    return [n for n in nodes if Path(n).exists()]


def memory_used_mb(indices) -> dict[str, int]:
    """Device memory in use now on each of GPUs ``indices`` (MiB)."""
    if not indices or shutil.which("nvidia-smi") is None:
        return {}
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--id={','.join(indices)}", "--query-gpu=index,memory.used",
             "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return {}
    used = {}
    for line in done.stdout.splitlines():
        index, _, value = (p.strip() for p in line.partition(","))
        if index.isdigit() and value.replace(".", "", 1).isdigit():
            used[index] = int(float(value))
    return used


class GpuMemoryPeak:
    """The peak GPU memory a fold used on its devices, sampled at most once
    per ``interval_s`` while it runs (``peak`` is None without GPUs or
    without ``nvidia-smi``)."""

    def __init__(self, indices, interval_s: float = 1.0, read=memory_used_mb) -> None:
        self.indices = tuple(indices)
        self.interval_s = interval_s
        self.read = read
        self.baseline = read(self.indices) if self.indices else {}
        self.peak: int | None = None
        self.last = 0.0

    def sample(self, force: bool = False) -> None:
        if not self.baseline:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval_s:
            return
        self.last = now
        used = self.read(self.indices)
        if used:
            above = sum(max(0, used.get(i, 0) - self.baseline.get(i, 0)) for i in self.indices)
            self.peak = max(self.peak or 0, above * 2**20)

    def wrap(self, tick):
        """``tick`` (the sandbox's callback) that samples too."""
        if not self.baseline:
            return tick

        def sampled() -> None:
            self.sample()
            tick()

        return sampled
