"""The embedded broker (filesystem://, `make run`'s default) under concurrent
producers and consumers: every message is delivered once, whole, and no
consumer stops on a message it caught half-written (kombu's own transport
did: the fold worker died on "JSONDecodeError" with a few submissions a
second, and `manage.py up` with it)."""
import multiprocessing
import queue

import pytest
from kombu import Connection
from kombu.transport import resolve_transport

from config.filesystem_broker import Transport

pytestmark = pytest.mark.integration

PRODUCERS, CONSUMERS, EACH = 3, 2, 800
# Task messages are a few kB; larger ones widen the window between a file
# appearing and its last byte.
PADDING = "x" * 64_000


def options(root):
    folders = {name: root / name for name in ("in", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    return {"data_folder_in": str(folders["in"]), "data_folder_out": str(folders["in"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]), "store_processed": False,
            "polling_interval": 0.01}


def produce(root, producer):
    with Connection("filesystem://", transport_options=options(root)) as conn:
        with conn.SimpleQueue("sandbox") as q:
            for i in range(EACH):
                q.put({"id": f"{producer}-{i}", "padding": PADDING})


def consume(root, received, done):
    with Connection("filesystem://", transport_options=options(root)) as conn:
        with conn.SimpleQueue("sandbox") as q:
            while True:
                try:
                    message = q.get(timeout=0.2)
                except queue.Empty:
                    if done.is_set():
                        return
                    continue
                body = message.payload
                assert body["padding"] == PADDING, len(body["padding"])
                received.put(body["id"])
                message.ack()


def test_concurrent_producers_and_consumers_get_every_message_once_and_whole(tmp_path):
    # What `filesystem://` means in every process that loads the project
    # (importing config registers it).
    assert resolve_transport("filesystem") is Transport

    ctx = multiprocessing.get_context("fork")
    received, done = ctx.Queue(), ctx.Event()
    consumers = [ctx.Process(target=consume, args=(tmp_path, received, done))
                 for _ in range(CONSUMERS)]
    producers = [ctx.Process(target=produce, args=(tmp_path, p)) for p in range(PRODUCERS)]
    for p in consumers + producers:
        p.start()
    ids = []
    try:
        for p in producers:
            p.join(timeout=300)
            assert p.exitcode == 0
        done.set()
        while any(c.is_alive() for c in consumers) or not received.empty():
            try:
                ids.append(received.get(timeout=0.5))
            except queue.Empty:
                pass
        for c in consumers:
            c.join(timeout=60)
        # A consumer that met a half-written file stopped with an error.
        assert [c.exitcode for c in consumers] == [0] * CONSUMERS
    finally:
        for p in consumers + producers:
            if p.is_alive():
                p.kill()
    assert len(ids) == PRODUCERS * EACH
    assert set(ids) == {f"{p}-{i}" for p in range(PRODUCERS) for i in range(EACH)}
    # Nothing left behind: no message, no half-written file.
    assert list((tmp_path / "in").iterdir()) == []
    assert list((tmp_path / "processed").iterdir()) == []


def test_a_file_that_is_not_a_message_is_skipped_and_the_next_one_delivered(tmp_path, caplog):
    with Connection("filesystem://", transport_options=options(tmp_path)) as conn:
        with conn.SimpleQueue("sandbox") as q:
            (tmp_path / "in" / "0_garbage.sandbox.msg").write_bytes(b"\x00not json")
            q.put({"id": "after"})
            assert q.get(timeout=5).payload == {"id": "after"}
    assert "Skipped the broker file 0_garbage.sandbox.msg on queue sandbox" in caplog.text


def test_a_process_that_used_another_broker_folder_still_gets_its_messages(tmp_path):
    # kombu records a process's bindings once per process, not per folder:
    # the second folder's queue was never bound there, and its messages went
    # nowhere (seen in CI: a test had used a broker folder of its own before).
    for root in (tmp_path / "first", tmp_path / "second"):
        root.mkdir()
        with Connection("filesystem://", transport_options=options(root)) as conn:
            with conn.SimpleQueue("sandbox") as q:
                q.put({"id": root.name})
                message = q.get(timeout=5)
                message.ack()
                assert message.payload["id"] == root.name
