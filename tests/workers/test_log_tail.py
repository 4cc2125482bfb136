"""Reading what a fold prints while it runs: complete lines only, in order,
each once; the unfinished last line when the fold ends."""
from workers.harness import layout
from workers.log_tail import MAX_PENDING_BYTES, LogTail


def _write(workdir, relative, data: bytes):
    path = workdir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.write(data)


def test_complete_lines_come_once_and_a_partial_line_waits(tmp_path):
    tail = LogTail(tmp_path)
    assert tail.read() == []  # nothing printed yet
    _write(tmp_path, layout.STDOUT, b"epoch 1\nepoch 2\nepo")
    _write(tmp_path, layout.STDERR, b"warning: slow\r\n")
    assert tail.read() == [("stdout", "epoch 1"), ("stdout", "epoch 2"),
                           ("stderr", "warning: slow")]
    assert tail.read() == []
    _write(tmp_path, layout.STDOUT, b"ch 3\nlast words")
    assert tail.read() == [("stdout", "epoch 3")]
    assert tail.read(final=True) == [("stdout", "last words")]
    assert tail.read(final=True) == []


def test_undecodable_bytes_are_replaced_and_a_huge_line_is_not_held_back(tmp_path):
    tail = LogTail(tmp_path)
    _write(tmp_path, layout.STDOUT, b"caf\xe9 \x00\n" + b"x" * (MAX_PENDING_BYTES + 10))
    lines = tail.read()
    assert lines[0] == ("stdout", "caf\ufffd \ufffd")
    assert lines[1] == ("stdout", "x" * (MAX_PENDING_BYTES + 10))


def test_reads_are_bounded_and_resume_where_they_stopped(tmp_path):
    tail = LogTail(tmp_path)
    _write(tmp_path, layout.STDOUT, b"".join(b"line %d\n" % i for i in range(1000)))
    seen = []
    while batch := tail.read(max_bytes=1000):
        seen += [text for _, text in batch]
    assert seen == [f"line {i}" for i in range(1000)]


def test_a_symlink_planted_as_the_log_is_not_followed(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read\n")
    work = tmp_path / "work"
    (work / "output").mkdir(parents=True)
    (work / layout.STDOUT).symlink_to(secret)
    assert LogTail(work).read(final=True) == []
