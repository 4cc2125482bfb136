"""Unpacking uploaded kit zips (no Django, no database): what lands on disk
and what is refused before anything does."""
import io
import zipfile

import pytest

from datarun.errors import InvalidKit, KitTooLarge
from datarun.kit_archives import kit_readme, unpack_kit

LIMITS = {"max_archive_bytes": 10**7, "max_unpacked_bytes": 10**8}


def zipped(files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def test_the_one_top_folder_is_dropped_and_macos_metadata_skipped(tmp_path):
    kit = unpack_kit(zipped({"iris-main/problem.py": b"x = 1\n",
                             "iris-main/data/train.csv": b"a,b\n1,2\n",
                             "iris-main/README.md": b"# Iris\n",
                             "__MACOSX/iris-main/._problem.py": b"\x00"}),
                     tmp_path / "kit", **LIMITS)
    assert sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file()) == \
        ["README.md", "data/train.csv", "problem.py"]
    assert kit_readme(kit) == "# Iris\n"


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    bomb = zipped({"problem.py": b"", "data/train.csv": b"0" * (20 * 2**20)})
    with pytest.raises(InvalidKit, match="refused as possible zip bombs"):
        unpack_kit(bomb, tmp_path / "kit", **LIMITS)
    assert not (tmp_path / "kit").exists()


def test_what_unpacks_past_the_limit_is_refused(tmp_path):
    archive = zipped({"problem.py": b"", "data/train.csv": bytes(range(256)) * 1000})
    with pytest.raises(KitTooLarge, match="unpacks to 256000 bytes; the limit is 100000"):
        unpack_kit(archive, tmp_path / "kit", max_archive_bytes=10**7,
                   max_unpacked_bytes=100_000)


def test_an_encrypted_entry_is_refused_with_what_to_do(tmp_path):
    archive = zipped({"problem.py": b""})
    data = bytearray(archive.getvalue())
    # Set the "encrypted" flag bit in the central directory entry.
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x1
    with pytest.raises(InvalidKit, match="is encrypted; upload an archive without a password"):
        unpack_kit(io.BytesIO(bytes(data)), tmp_path / "kit", **LIMITS)


def test_two_top_folders_without_problem_py_on_top_say_what_to_zip(tmp_path):
    archive = zipped({"a/problem.py": b"", "b/data.csv": b""})
    with pytest.raises(InvalidKit, match="zip the kit's folder, the one holding problem.py"):
        unpack_kit(archive, tmp_path / "kit", **LIMITS)
