"""Reading what a fold prints while it runs (no Django).

The harness sends the submission's stdout and stderr to files in the work
dir; a :class:`LogTail` reads what was added since its last call and returns
the complete lines, keeping a partial last line until it is finished (or the
fold ends).
"""
from pathlib import Path

from workers.harness import layout

STREAMS = (("stdout", layout.STDOUT), ("stderr", layout.STDERR))
# Read at most this much per stream per call: a fold printing in a tight loop
# must not make one call take long.
CHUNK_BYTES = 64 * 1024
# A partial line longer than this is returned as it is.
MAX_PENDING_BYTES = 16 * 1024


class LogTail:
    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.offsets = {name: 0 for name, _ in STREAMS}
        self.pending = {name: b"" for name, _ in STREAMS}

    def read(self, *, final: bool = False, max_bytes: int = CHUNK_BYTES
             ) -> list[tuple[str, str]]:
        """New ``(stream, line)`` pairs, reading at most ``max_bytes`` of each
        stream; ``final`` also returns an unfinished last line."""
        lines = []
        for name, relative in STREAMS:
            path = self.workdir / relative
            try:
                # Not a link the fold planted: only the file the harness writes.
                if path.is_symlink() or not path.is_file():
                    continue
                with open(path, "rb") as f:
                    f.seek(self.offsets[name])
                    data = f.read(max_bytes)
            except OSError:
                continue
            self.offsets[name] += len(data)
            data = self.pending[name] + data
            *complete, rest = data.replace(b"\r\n", b"\n").split(b"\n")
            if final or len(rest) > MAX_PENDING_BYTES:
                if rest:
                    complete.append(rest)
                rest = b""
            self.pending[name] = rest
            # NUL cannot be stored in a text column: shown as the replacement mark.
            lines += [(name, line.decode("utf-8", errors="replace").replace("\x00", "\ufffd"))
                      for line in complete]
        return lines
