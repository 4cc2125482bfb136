"""Submission files as participants send them: safe names, size limits, zip archives.

Every refusal is an :class:`InvalidSubmission` whose message names the file and
says what is wrong with it. Archives are read in memory and never extracted to
disk; what they unpack to is capped while it is decompressed, not only by the
sizes the archive declares.
"""
import io
import lzma
import stat
import zipfile
import zlib

from django.conf import settings

from datarun.errors import InvalidSubmission

MAX_NAME_LENGTH = 100
MAX_ARCHIVE_ENTRIES = 100  # files and folders together
# Python source compresses about 4:1; a member that deflates more than this
# (and is big enough for it to matter) is treated as a zip bomb.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECKED_FROM_BYTES = 64 * 1024
READABLE_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                    zipfile.ZIP_LZMA}
# What Finder's "Compress" adds next to the files: resource forks, never code.
MACOS_METADATA = "__MACOSX"
# Everything zipfile raises on archives that are damaged or crafted to lie.
CORRUPT_ARCHIVE_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error,
                          lzma.LZMAError, NotImplementedError)


def expected_file_names(workflow_elements: list[str]) -> list[str]:
    """One file per workflow element: ``<element>.py`` unless the element names its extension."""
    return sorted(e if "." in e else f"{e}.py" for e in workflow_elements)


def file_name_problem(name: str) -> str | None:
    """What makes ``name`` unsafe as a submission file name, or None when it is fine."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    for char in name:
        if not char.isprintable():
            return f"contains an unprintable character (U+{ord(char):04X})"
    if "/" in name or "\\" in name:
        return "is a path; a submission file has a plain name, without '/' or '\\'"
    if name in (".", ".."):
        return "names a folder, not a file"
    if name.startswith("."):
        return "is a dot-file (a hidden file); those are not accepted"
    return None


def _shown(name: str) -> str:
    return repr(name if len(name) <= 60 else name[:60] + "...")


def check_file_name(name: str) -> None:
    problem = file_name_problem(name)
    if problem:
        raise InvalidSubmission(f"file name {_shown(name)} {problem}")


def check_file_size(name: str, size: int) -> None:
    limit = settings.DATARUN_MAX_SUBMISSION_FILE_BYTES
    if size > limit:
        raise InvalidSubmission(f"{name} is {size} bytes; the limit is {limit} bytes per file")


def check_total_size(size: int) -> None:
    limit = settings.DATARUN_MAX_SUBMISSION_BYTES
    if size > limit:
        raise InvalidSubmission(
            f"the submission's files are {size} bytes together; the limit is {limit} bytes"
        )


def check_archive_size(archive_name: str, size: int) -> None:
    limit = settings.DATARUN_MAX_SUBMISSION_BYTES
    if size > limit:
        raise InvalidSubmission(
            f"{archive_name} is {size} bytes; the limit is {limit} bytes for an archive"
        )


def validate_files(expected: list[str], files: dict[str, bytes]) -> None:
    """Refuse unsafe names, names other than ``expected`` (sorted) and files over the limits."""
    names = sorted(files)
    for name in names:
        check_file_name(name)
    if names != expected:
        raise InvalidSubmission(
            f"this problem needs exactly the files {', '.join(expected)}; "
            f"got {', '.join(names) or 'none'}"
        )
    for name in names:
        check_file_size(name, len(files[name]))
    check_total_size(sum(len(data) for data in files.values()))


def files_from_zip(archive_name: str, data: bytes) -> dict[str, bytes]:
    """The files in a zip archive, by name, read in memory under hard byte caps.

    The files sit at the archive's top level or all in one folder (as when a
    folder is zipped); folder entries and macOS metadata are skipped. Refused:
    entries that point outside the archive, symbolic links, encrypted entries,
    duplicates, subfolders, more than ``MAX_ARCHIVE_ENTRIES`` entries, members
    compressed more than ``MAX_COMPRESSION_RATIO``:1 (from 64 KiB), members over
    ``DATARUN_MAX_SUBMISSION_FILE_BYTES`` and archives unpacking to more than
    ``DATARUN_MAX_SUBMISSION_BYTES``. A zip inside the archive is just a file.
    """
    check_archive_size(archive_name, len(data))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except CORRUPT_ARCHIVE_ERRORS as exc:
        raise InvalidSubmission(
            f"{archive_name} is not a zip archive that can be read ({exc})"
        ) from exc
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ARCHIVE_ENTRIES:
            raise InvalidSubmission(
                f"{archive_name} has {len(entries)} entries; the limit is "
                f"{MAX_ARCHIVE_ENTRIES} files and folders"
            )
        members = [info for info in entries if _is_member(archive_name, info)]
        names = _member_names(archive_name, members)
        _check_declared_sizes(archive_name, members, names)
        return _read_members(archive, archive_name, members, names)


def _entry_error(archive_name: str, entry: str, problem: str) -> InvalidSubmission:
    return InvalidSubmission(f"{archive_name}: entry {_shown(entry)} {problem}")


def _is_member(archive_name: str, info: zipfile.ZipInfo) -> bool:
    """Check one entry; True when it is a file to read, False for a folder or metadata."""
    entry = info.orig_filename
    parts = entry.replace("\\", "/").split("/")
    problem = None
    if entry.startswith(("/", "\\")) or entry[1:2] == ":" or ".." in parts:
        problem = "points outside the archive (an absolute path or '..')"
    elif "\x00" in entry:
        problem = "contains an unprintable character (U+0000)"
    elif stat.S_ISLNK(info.external_attr >> 16):
        problem = "is a symbolic link; put the file itself in the archive"
    elif parts[0] == MACOS_METADATA or info.is_dir():
        return False
    elif info.flag_bits & 0x1:
        problem = "is encrypted; upload an archive without a password"
    elif info.compress_type not in READABLE_METHODS:
        problem = (f"uses a compression method that cannot be read "
                   f"(zip method {info.compress_type}); use deflate")
    if problem:
        raise _entry_error(archive_name, entry, problem)
    return True


def _member_names(archive_name: str, members: list[zipfile.ZipInfo]) -> list[str]:
    """Submission file names of the members: without their one shared folder, if any."""
    paths = [info.filename.split("/") for info in members]
    folders = {tuple(parts[:-1]) for parts in paths}
    if len(folders) == 1 and len(next(iter(folders))) == 1:
        paths = [parts[1:] for parts in paths]
    names = []
    for info, parts in zip(members, paths, strict=True):
        if len(parts) > 1:
            raise _entry_error(archive_name, info.filename,
                    "is in a subfolder; put the submission files at the top level of the "
                    "archive, or all in one folder")
        problem = file_name_problem(parts[0])
        if problem:
            raise _entry_error(archive_name, info.filename, problem)
        if parts[0] in names:
            raise InvalidSubmission(f"{archive_name} has {parts[0]} twice")
        names.append(parts[0])
    return names


def _check_declared_sizes(archive_name: str, members: list[zipfile.ZipInfo],
                          names: list[str]) -> None:
    file_limit = settings.DATARUN_MAX_SUBMISSION_FILE_BYTES
    for info, name in zip(members, names, strict=True):
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_CHECKED_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise _entry_error(archive_name, info.filename,
                    f"is compressed {ratio:.0f}:1 ({info.file_size} bytes from "
                    f"{info.compress_size}); entries compressed more than "
                    f"{MAX_COMPRESSION_RATIO}:1 are refused as possible zip bombs")
        if info.file_size > file_limit:
            raise InvalidSubmission(f"{archive_name}: {name} unpacks to {info.file_size} "
                                    f"bytes; the limit is {file_limit} bytes per file")
    total = sum(info.file_size for info in members)
    limit = settings.DATARUN_MAX_SUBMISSION_BYTES
    if total > limit:
        raise InvalidSubmission(f"{archive_name} unpacks to {total} bytes; "
                                f"the limit is {limit} bytes")


def _read_members(archive: zipfile.ZipFile, archive_name: str,
                  members: list[zipfile.ZipInfo], names: list[str]) -> dict[str, bytes]:
    # The declared sizes were checked, but a crafted archive can lie about
    # them: never decompress more than the limits, whatever it declares.
    file_limit = settings.DATARUN_MAX_SUBMISSION_FILE_BYTES
    room = settings.DATARUN_MAX_SUBMISSION_BYTES
    files = {}
    for info, name in zip(members, names, strict=True):
        try:
            with archive.open(info) as member:
                data = member.read(min(file_limit, room) + 1)
        except CORRUPT_ARCHIVE_ERRORS as exc:
            raise _entry_error(archive_name, info.filename, f"is corrupt ({exc})") from exc
        if len(data) > file_limit:
            raise InvalidSubmission(f"{archive_name}: {name} unpacks to more than "
                                    f"{file_limit} bytes, the limit per file")
        if len(data) > room:
            raise InvalidSubmission(f"{archive_name} unpacks to more than "
                                    f"{settings.DATARUN_MAX_SUBMISSION_BYTES} bytes, the limit")
        room -= len(data)
        files[name] = data
    return files
