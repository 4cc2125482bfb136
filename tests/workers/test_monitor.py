"""The local sandbox's process-tree monitor on real processes."""
import subprocess
import sys
import time

import psutil
import pytest

from workers.sandbox.monitor import ProcessTreeMonitor, descendants

MIB = 2**20

# Holds 200 MiB, then, told to, forks a copy that shares those pages.
HOLDER = r"""
import os, sys, time
block = bytearray(200 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
print("alone", flush=True)
sys.stdin.readline()
if os.fork() == 0:
    time.sleep(60)
    os._exit(0)
print("forked", flush=True)
time.sleep(60)
"""


def wait_for_children(pid: int, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(psutil.Process(pid).children(recursive=True)) < n:
        assert time.monotonic() < deadline, "the process tree did not grow"
        time.sleep(0.01)


def test_descendants_are_the_whole_tree_psutil_finds():
    tree = subprocess.Popen(["sh", "-c", "sh -c 'sleep 30 & sleep 30 & wait' & sleep 30 & wait"],
                            start_new_session=True)
    try:
        wait_for_children(tree.pid, 4)
        assert sorted(descendants(tree.pid)) == sorted(
            p.pid for p in psutil.Process(tree.pid).children(recursive=True))
        assert len(descendants(tree.pid)) == 4
    finally:
        tree.kill()
        subprocess.run(["pkill", "-s", str(tree.pid)])
        tree.wait()


@pytest.fixture
def holder():
    """A process holding 200 MiB, alone until it is told to fork."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "alone"
        yield proc
    finally:
        ProcessTreeMonitor(proc.pid).kill()
        proc.wait()


def test_peak_memory_counts_forked_copies_once_and_a_lone_process_by_its_resident_size(holder):
    monitor = ProcessTreeMonitor(holder.pid, memory_limit=2048 * MIB)
    monitor.sample()
    resident = psutil.Process(holder.pid).memory_info().rss
    assert monitor.peak_memory >= 200 * MIB
    assert abs(monitor.peak_memory - resident) < 20 * MIB

    holder.stdin.write("fork\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "forked"
    wait_for_children(holder.pid, 1)
    monitor.sample()
    # Two processes of 200+ MiB resident each, sharing the 200 MiB:
    # counted once (proportional sizes), not twice.
    both = sum(p.memory_info().rss for p in monitor.processes())
    assert both >= 400 * MIB
    assert 200 * MIB <= monitor.peak_memory < 300 * MIB


def test_a_lone_process_over_the_limit_by_its_resident_size_is_measured_by_its_own_pages(
        holder):
    # Under a limit below its resident size the monitor reads its
    # proportional size: its own pages, which are all of them here.
    monitor = ProcessTreeMonitor(holder.pid, memory_limit=100 * MIB)
    monitor.sample()
    assert monitor.peak_memory > 100 * MIB
