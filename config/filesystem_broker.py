"""kombu's filesystem transport (the embedded broker), with its messages
written whole before any consumer can see them.

kombu 5 creates a message file under its final name and then writes it; a
consumer polling the folder at that moment renames the empty file away,
fails to decode it and its worker stops ("Unrecoverable error:
JSONDecodeError"), taking ``manage.py up`` down with it. Seen with a few
submissions a second on the 2-core machine. Here a message is written to a
hidden name in the same folder and renamed into place (atomic on one file
system), and a consumer takes a message by renaming it into the processed
folder (also atomic: of two consumers, one wins, the other moves on), so a
message is read once, whole. A file that still does not decode (written by
something else) is logged and skipped instead of stopping the worker.

The exchange tables (which queues a fanout or direct exchange delivers to,
in the control folder) had the same fault, worse: two processes binding at
once (a worker starting, Flower inspecting the workers, each inspection
binding its reply queue) could truncate the table under a reader, which
failed the same way, or drop one of the two bindings. Here a table changes
under an exclusive lock on a file of its own, is written whole to a hidden
name and renamed into place; readers need no lock.

``config.celery`` registers it as the ``filesystem`` transport, so the
broker URL stays ``filesystem://`` in every process (web, workers, Flower).
"""
import logging
import os
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.transport.filesystem import LOCK_EX, exchange_queue_t, lock, unlock
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)


def _write_whole(path: str, data: bytes) -> None:
    """Write ``path`` so that a reader sees it whole or not at all: to a
    hidden name beside it (without the ".msg" ending: no consumer takes it,
    no queue counts it), then renamed into place."""
    partial = os.path.join(os.path.dirname(path), f".{uuid.uuid4()}.partial")
    try:
        with open(partial, "wb") as f:
            f.write(data)
        os.replace(partial, path)
    except OSError:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise


def _of_queue(name: str, queue: str) -> bool:
    """Whether the file ``name`` is a message of ``queue`` (kombu's naming:
    ``<ms>_<uuid>.<queue>.msg``)."""
    return name.partition(".")[2] == f"{queue}.msg"


def _binding(routing_key, pattern, queue):
    return exchange_queue_t(routing_key or "", pattern or "", queue or "")


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # kombu's naming: the millisecond first, so that a sorted listing is
        # first in, first out, and the queue after the first dot.
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        try:
            _write_whole(os.path.join(self.data_folder_out, name), str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to {self.data_folder_out!r}: {exc}") from exc

    def _get(self, queue):
        for name in sorted(os.listdir(self.data_folder_in)):
            if not _of_queue(name, queue):
                continue
            taken = os.path.join(self.processed_folder, name)
            try:
                os.rename(os.path.join(self.data_folder_in, name), taken)
            except FileNotFoundError:
                continue  # another consumer took it first
            except OSError as exc:
                raise ChannelError(
                    f"Cannot take {name!r} from {self.data_folder_in!r} into "
                    f"{self.processed_folder!r} (both must be on one file system): {exc}"
                ) from exc
            try:
                with open(taken, "rb") as f:
                    payload = f.read()
                if not self.store_processed:
                    os.remove(taken)
            except OSError as exc:
                raise ChannelError(f"Cannot read {taken!r}: {exc}") from exc
            try:
                return loads(bytes_to_str(payload))
            except ValueError as exc:
                logger.error("Skipped the broker file %s on queue %s (%d bytes): "
                             "not a message (%s)", name, queue, len(payload), exc)
        raise Empty()

    def waiting(self, queue) -> list[bytes]:
        """The messages of ``queue`` no consumer has taken yet, as stored
        (what the reaper looks for); one taken meanwhile is left out."""
        raws = []
        for entry in os.scandir(self.data_folder_in):
            if _of_queue(entry.name, queue):
                try:
                    with open(entry.path, "rb") as f:
                        raws.append(f.read())
                except FileNotFoundError:
                    continue
        return raws

    # --- Exchange tables ---------------------------------------------------

    def _read_table(self, file):
        try:
            table = loads(bytes_to_str(file.read_bytes()))
        except FileNotFoundError:
            return []
        return [exchange_queue_t(*q) for q in table]

    def _change_table(self, exchange, change):
        file = self._exchange_file(exchange)
        try:
            self.control_folder.mkdir(exist_ok=True)
            with open(f"{file}.lock", "a") as guard:
                lock(guard, LOCK_EX)
                try:
                    queues = self._read_table(file)
                    changed = change(queues)
                    if changed != queues:
                        _write_whole(str(file), str_to_bytes(dumps(changed)))
                finally:
                    unlock(guard)
        except OSError as exc:
            raise ChannelError(f"Cannot update the exchange table {file}: {exc}") from exc

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        try:
            return self._read_table(file)
        except OSError as exc:
            raise ChannelError(f"Cannot read the exchange table {file}: {exc}") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        binding = _binding(routing_key, pattern, queue)
        self._change_table(exchange,
                           lambda queues: queues if binding in queues else [binding, *queues])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        # The queue's messages go (kombu's virtual channel), then its binding.
        virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        binding = _binding(routing_key, pattern, queue)
        self._change_table(exchange, lambda queues: [q for q in queues if q != binding])


# The exchanges and bindings a process has declared, per broker folder.
_states: dict[str, virtual.BrokerState] = {}


class Transport(filesystem.Transport):
    """kombu keeps one record of declared bindings per process for every
    filesystem broker, and does not bind again a queue it has recorded: a
    process (or a child it forked) that opened another broker folder before
    never wrote the binding into this one's table, and its messages went to
    no queue. Here the record is per control folder."""

    Channel = Channel

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        folder = client.transport_options.get("control_folder", "control")
        self.state = _states.setdefault(os.path.abspath(folder), virtual.BrokerState())
