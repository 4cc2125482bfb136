"""RAMP kits uploaded as zip archives: checked, then unpacked under byte caps.

An organiser zips the kit's folder (or its contents, or downloads a GitHub
repository as a zip): ``problem.py`` sits at the archive's top level or in its
one top-level folder. Every refusal is an :class:`InvalidKit` that names the
entry and says what to fix; nothing is written outside ``dest``, and what a
member unpacks to is capped while it is decompressed, not only by the sizes
the archive declares. No Django here: the limits are arguments.
"""
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

from datarun.errors import InvalidKit, KitTooLarge
from datarun.submission_files import CORRUPT_ARCHIVE_ERRORS, MACOS_METADATA, READABLE_METHODS

MAX_KIT_ENTRIES = 20_000
# Data files (CSV) compress well, 10:1 and more; a zip bomb compresses ~1000:1.
MAX_COMPRESSION_RATIO = 200
RATIO_CHECKED_FROM_BYTES = 1024 * 1024
README_NAMES = ("README.md", "README.markdown", "README.txt", "README.rst", "README")
CHUNK = 1024 * 1024


def unpack_kit(archive: BinaryIO, dest: Path, *, archive_name: str = "the kit archive",
               max_archive_bytes: int, max_unpacked_bytes: int) -> Path:
    """Unpack the kit zip ``archive`` into ``dest`` (created); return the kit's folder.

    Refused: something that is not a zip, an archive over ``max_archive_bytes``,
    more than :data:`MAX_KIT_ENTRIES` entries, entries that point outside the
    archive, symbolic links, encrypted entries, members compressed more than
    :data:`MAX_COMPRESSION_RATIO`:1 (from 1 MiB), more than
    ``max_unpacked_bytes`` unpacked, and no ``problem.py`` at the top (or in
    the one top-level folder).
    """
    archive.seek(0, 2)
    size = archive.tell()
    archive.seek(0)
    if size > max_archive_bytes:
        raise KitTooLarge(f"{archive_name} is {size} bytes; the limit is {max_archive_bytes} "
                         "bytes: leave large data out of the kit (or ask the platform's "
                         "administrator to raise DATARUN_MAX_KIT_BYTES)")
    try:
        zf = zipfile.ZipFile(archive)
    except CORRUPT_ARCHIVE_ERRORS as exc:
        raise InvalidKit(f"{archive_name} is not a zip archive that can be read ({exc}); "
                         "zip the kit's folder (problem.py, data/, submissions/)") from exc
    with zf:
        entries = zf.infolist()
        if len(entries) > MAX_KIT_ENTRIES:
            raise InvalidKit(f"{archive_name} has {len(entries)} entries; the limit is "
                             f"{MAX_KIT_ENTRIES} files and folders")
        members = [info for info in entries if _is_member(archive_name, info)]
        prefix = _kit_prefix(archive_name, members)
        declared = sum(info.file_size for info in members)
        if declared > max_unpacked_bytes:
            raise KitTooLarge(f"{archive_name} unpacks to {declared} bytes; the limit is "
                             f"{max_unpacked_bytes} bytes")
        dest = Path(dest)
        dest.mkdir(parents=True)
        room = max_unpacked_bytes
        for info in members:
            parts = info.filename.split("/")[len(prefix):]
            if not parts or parts == [""]:
                continue
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            room = _extract(zf, info, target, archive_name, room, max_unpacked_bytes)
    return dest


def kit_readme(kit_dir: Path) -> str:
    """The text of the kit's README (the first of :data:`README_NAMES`), or ''."""
    for name in README_NAMES:
        path = Path(kit_dir) / name
        if path.is_file():
            return path.read_text(encoding="utf-8", errors="replace")
    return ""


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:80] + "...")


def _entry_error(archive_name: str, entry: str, problem: str) -> InvalidKit:
    return InvalidKit(f"{archive_name}: entry {_shown(entry)} {problem}")


def _is_member(archive_name: str, info: zipfile.ZipInfo) -> bool:
    """Check one entry; True for a file to unpack, False for a folder or metadata."""
    entry = info.orig_filename
    parts = entry.replace("\\", "/").split("/")
    problem = None
    if entry.startswith(("/", "\\")) or entry[1:2] == ":" or ".." in parts or "\\" in entry:
        problem = ("points outside the kit (an absolute path, '..' or '\\'); "
                   "zip the kit's folder with relative paths")
    elif any(not char.isprintable() for char in entry):
        problem = "contains an unprintable character"
    elif stat.S_ISLNK(info.external_attr >> 16):
        problem = "is a symbolic link; put the file itself in the archive"
    elif parts[0] == MACOS_METADATA or info.is_dir():
        return False
    elif info.flag_bits & 0x1:
        problem = "is encrypted; upload an archive without a password"
    elif info.compress_type not in READABLE_METHODS:
        problem = (f"uses a compression method that cannot be read "
                   f"(zip method {info.compress_type}); use deflate")
    else:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_CHECKED_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            problem = (f"is compressed {ratio:.0f}:1; entries compressed more than "
                       f"{MAX_COMPRESSION_RATIO}:1 are refused as possible zip bombs")
    if problem:
        raise _entry_error(archive_name, entry, problem)
    return True


def _kit_prefix(archive_name: str, members: list[zipfile.ZipInfo]) -> list[str]:
    """The folder parts in front of the kit: none, or the one top-level folder."""
    names = {info.filename for info in members}
    if "problem.py" in names:
        return []
    tops = {info.filename.split("/")[0] for info in members}
    if len(tops) == 1:
        top = next(iter(tops))
        if f"{top}/problem.py" in names:
            return [top]
    raise InvalidKit(f"{archive_name} has no problem.py at its top level (nor in its one "
                     "top-level folder): zip the kit's folder, the one holding problem.py, "
                     "data/ and submissions/")


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive_name: str,
             room: int, limit: int) -> int:
    # The declared sizes were checked, but a crafted archive can lie about
    # them: never decompress more than the room left, whatever it declares.
    try:
        with zf.open(info) as member, open(target, "wb") as out:
            while chunk := member.read(min(CHUNK, room + 1)):
                room -= len(chunk)
                if room < 0:
                    raise KitTooLarge(f"{archive_name} unpacks to more than {limit} bytes, "
                                     "the limit")
                out.write(chunk)
    except CORRUPT_ARCHIVE_ERRORS as exc:
        raise _entry_error(archive_name, info.filename, f"is corrupt ({exc})") from exc
    return room
