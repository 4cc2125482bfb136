"""Submission uploads through the API: unsafe names, oversize files and hostile zips.

Multipart bodies are written by hand, as curl or a hostile client sends them:
Django's test client would strip the directories from file names itself.
Every refusal is a 400 whose message names the file and the reason, and
leaves nothing behind: no submission, no evaluation, no stored file.
"""
import io
import stat
import struct
import zipfile
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from databoard.models import Submission
from datarun import storage
from datarun.errors import InvalidSubmission
from datarun.models import Evaluation
from tests.databoard.test_api import (
    EVENT,
    STARTING_KIT,
    assert_error,
    client_for,
    make_event,
    signed_up,
)

pytestmark = pytest.mark.django_db

URL = f"/api/v1/events/{EVENT}/submissions/"
BOUNDARY = "datarun-test-boundary"
# Compressible like real code, and big enough for the limits below to bite.
LONG_ESTIMATOR = STARTING_KIT + b"# a comment that pads the file out\n" * 100


@pytest.fixture(autouse=True)
def storage_dir(settings, tmp_path):
    """A storage of its own per test, so that 'nothing stored' can be checked."""
    settings.DATARUN_STORAGE_DIR = tmp_path / "storage"
    return settings.DATARUN_STORAGE_DIR


@pytest.fixture
def alice():
    return signed_up("alice", make_event())


@pytest.fixture
def client(alice) -> APIClient:
    return client_for(alice)


def _disposition(field: str, file_name: str | None) -> str:
    header = f'Content-Disposition: form-data; name="{field}"'
    if file_name is None:
        return header
    if file_name.isprintable():
        escaped = file_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'{header}; filename="{escaped}"'
    return f"{header}; filename*=UTF-8''{quote(file_name, safe='')}"


def post(client: APIClient, files: list[tuple[str, str | None, bytes]], name: str = "first"):
    """POST a multipart body: ``files`` holds (field, file name or None for text, content)."""
    body = b""
    for field, file_name, content in [("name", None, name.encode()), *files]:
        body += (f"--{BOUNDARY}\r\n{_disposition(field, file_name)}\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode()
        body += content + b"\r\n"
    body += f"--{BOUNDARY}--\r\n".encode()
    return client.post(URL, data=body,
                       content_type=f"multipart/form-data; boundary={BOUNDARY}")


def post_files(client: APIClient, files: dict[str, bytes]):
    return post(client, [("files", file_name, data) for file_name, data in files.items()])


def post_zip(client: APIClient, data: bytes, archive_name: str = "submission.zip"):
    return post(client, [("archive", archive_name, data)])


def make_zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    return buffer.getvalue()


def patch_headers(data: bytes, **fields: int) -> bytes:
    """Overwrite fields in the local and central headers of a one-entry zip."""
    offsets = {  # field: (offset in local header, in central header, struct format)
        "flag_bits": (6, 8, "<H"), "compress_type": (8, 10, "<H"),
        "file_size": (22, 24, "<I"),
    }
    data = bytearray(data)
    for field, value in fields.items():
        local, central, fmt = offsets[field]
        struct.pack_into(fmt, data, data.index(b"PK\x03\x04") + local, value)
        struct.pack_into(fmt, data, data.index(b"PK\x01\x02") + central, value)
    return bytes(data)


def assert_refused(response, message: str) -> None:
    assert_error(response, 400, "invalid_submission", message)
    assert not Submission.objects.exists()
    assert not Evaluation.objects.exists()
    assert not (storage.root() / "blobs").exists()


def stored_files(response) -> dict[str, bytes]:
    assert response.status_code == 201, response.content
    evaluation = Evaluation.objects.get(id=response.json()["evaluation_id"])
    return {name: storage.blob_get(digest) for name, digest in evaluation.files.items()}


# --- file names ----------------------------------------------------------------------

PATH = "is a path; a submission file has a plain name, without '/' or '\\'"


@pytest.mark.parametrize("file_name", [
    "../estimator.py", "sub/estimator.py", "/etc/passwd", "..\\estimator.py",
    "C:\\estimator.py",
])
def test_a_file_name_with_a_path_is_refused(client, file_name):
    assert_refused(post_files(client, {file_name: STARTING_KIT}),
                   f"file name {file_name!r} {PATH}")


@pytest.mark.parametrize("file_name", [".", ".."])
def test_a_file_named_like_a_folder_is_refused(client, file_name):
    assert_refused(post_files(client, {file_name: STARTING_KIT}),
                   f"file name {file_name!r} names a folder, not a file")


def test_a_dot_file_is_refused(client):
    response = post_files(client, {"estimator.py": STARTING_KIT, ".env": b"TOKEN=1\n"})
    assert_refused(response,
                   "file name '.env' is a dot-file (a hidden file); those are not accepted")


@pytest.mark.parametrize(("file_name", "code_point"), [
    ("estimator.py\x00", "U+0000"), ("estimator\n.py", "U+000A"),
    ("rotamitse\u202e.py", "U+202E"),  # shows as "estimator.py" in some terminals
])
def test_a_file_name_with_an_unprintable_character_is_refused(client, file_name, code_point):
    assert_refused(post_files(client, {file_name: STARTING_KIT}),
                   f"file name {file_name!r} contains an unprintable character ({code_point})")


def test_an_over_long_file_name_is_refused(client):
    file_name = "e" * 200 + ".py"
    assert_refused(post_files(client, {file_name: STARTING_KIT}),
                   f"file name {'e' * 60 + '...'!r} is 203 characters long; the limit is 100")


def test_an_empty_file_name_is_refused_by_the_service(alice):
    # Over HTTP a file part with an empty name is no file at all (browsers send
    # one for an empty file input); every other caller is refused.
    from databoard import services
    from databoard.models import Event

    with pytest.raises(InvalidSubmission, match="file name '' is empty"):
        services.submission_create(event=Event.objects.get(), user=alice, name="first",
                                   files={"": STARTING_KIT})
    assert not Submission.objects.exists()


def test_a_file_not_in_the_workflow_is_refused_naming_the_expected_files(client):
    assert_refused(post_files(client, {"classifier.py": STARTING_KIT}),
                   "this problem needs exactly the files estimator.py; got classifier.py")


def test_a_file_uploaded_twice_is_refused(client):
    response = post(client, [("files", "estimator.py", STARTING_KIT),
                             ("files", "estimator.py", b"x = 1\n")])
    assert_refused(response, "estimator.py was uploaded twice")


def test_file_names_the_parser_would_rename_are_refused_not_renamed(client):
    # Django's own multipart parser would turn this into a valid "estimator.py".
    response = post_files(client, {"../../estimator.py": STARTING_KIT})
    assert_refused(response, "file name '../../estimator.py' is a path")


# --- missing files -------------------------------------------------------------------

EXPECTED = ("this problem needs the files estimator.py: upload each as a multipart file "
            "field named 'files' (with curl: -F files=@estimator.py), or all of them in one "
            "zip archive in a field named 'archive'")


def test_a_request_without_files_says_which_files_are_expected(client):
    assert_refused(post(client, []), EXPECTED)


def test_files_sent_as_text_fields_are_no_files(client):
    # curl -F files=estimator.py (without the @) sends the name as text.
    assert_refused(post(client, [("files", None, b"estimator.py")]), EXPECTED)


def test_a_file_part_with_an_empty_name_is_no_file(client):
    assert_refused(post(client, [("files", "", STARTING_KIT)]), EXPECTED)


def test_too_many_files_in_one_request_are_refused(client):
    files = [("files", f"f{i}.py", b"") for i in range(101)]
    assert_refused(post(client, files), "too many files in one request: the limit is 100")


# --- sizes ---------------------------------------------------------------------------

def test_an_oversize_file_is_refused_with_its_size_and_the_limit(client):
    data = b"#" * (3 * 1024 * 1024)
    assert_refused(post_files(client, {"estimator.py": data}),
                   "estimator.py is 3145728 bytes; the limit is 1048576 bytes per file")


def test_files_over_the_submission_limit_together_are_refused(client, settings):
    settings.DATARUN_MAX_SUBMISSION_BYTES = 1000
    assert_refused(post_files(client, {"estimator.py": LONG_ESTIMATOR}),
                   f"the submission's files are {len(LONG_ESTIMATOR)} bytes together; "
                   "the limit is 1000 bytes")


def test_code_that_is_not_utf8_is_accepted_byte_for_byte(client):
    # Python reads a source file in the encoding its coding line names.
    latin1 = b"# -*- coding: latin-1 -*-\n# r\xe9gression logistique\n" + STARTING_KIT
    assert stored_files(post_files(client, {"estimator.py": latin1})) == {
        "estimator.py": latin1}


# --- zip archives: accepted ------------------------------------------------------------

def test_a_zip_with_the_files_at_its_top_level_is_accepted(client):
    response = post_zip(client, make_zip({"estimator.py": STARTING_KIT}))
    assert stored_files(response) == {"estimator.py": STARTING_KIT}
    assert (response.json()["name"], response.json()["state"]) == ("first", "queued")


def test_a_zipped_folder_is_accepted_without_its_folder_and_macos_metadata(client):
    archive = make_zip({"my_submission/": b"", "my_submission/estimator.py": STARTING_KIT,
                        "__MACOSX/my_submission/._estimator.py": b"\x00\x05\x16\x07"})
    assert stored_files(post_zip(client, archive)) == {"estimator.py": STARTING_KIT}


def test_a_stored_uncompressed_zip_is_accepted(client):
    archive = make_zip({"estimator.py": STARTING_KIT}, compression=zipfile.ZIP_STORED)
    assert stored_files(post_zip(client, archive)) == {"estimator.py": STARTING_KIT}


def test_a_zip_inside_the_archive_is_just_a_file(client):
    # Never unpacked: it is estimator.py, whose bytes are not Python (the
    # pre-check refuses them before anything is queued).
    inner = make_zip({"estimator.py": STARTING_KIT})
    assert_refused(post_zip(client, make_zip({"estimator.py": inner})),
                   "estimator.py: source code string cannot contain null bytes")


def test_a_nested_archive_next_to_the_files_is_an_unexpected_file(client):
    archive = make_zip({"estimator.py": STARTING_KIT,
                        "more.zip": make_zip({"utils.py": b"x = 1\n"})})
    assert_refused(post_zip(client, archive),
                   "this problem needs exactly the files estimator.py; got estimator.py, more.zip")


# --- zip archives: refused ---------------------------------------------------------------

@pytest.mark.parametrize("entry", [
    "../estimator.py", "/estimator.py", "a/../../estimator.py", "..\\estimator.py",
    "C:/estimator.py",
])
def test_a_zip_slip_entry_is_refused(client, entry):
    response = post_zip(client, make_zip({entry: STARTING_KIT}))
    assert_refused(response, f"submission.zip: entry {entry!r} points outside the archive "
                             "(an absolute path or '..')")


def test_a_symbolic_link_in_a_zip_is_refused(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("estimator.py")
        link.create_system = 3  # unix
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    assert_refused(post_zip(client, buffer.getvalue()), "submission.zip: entry 'estimator.py' "
                   "is a symbolic link; put the file itself in the archive")


def test_a_zip_bomb_is_refused_by_its_compression_ratio(client):
    bomb = make_zip({"estimator.py": b"\x00" * (50 * 1024 * 1024)})
    assert len(bomb) < 100_000
    response = post_zip(client, bomb)
    assert_refused(response, "submission.zip: entry 'estimator.py' is compressed ")
    assert ("(52428800 bytes from " in response.json()["error"]["message"])
    assert response.json()["error"]["message"].endswith(
        "entries compressed more than 100:1 are refused as possible zip bombs")


def test_a_zip_bomb_that_lies_about_its_size_is_refused_as_corrupt(client):
    # The headers claim 1000 bytes; the data inflates to 50 MiB. Only the
    # declared 1000 bytes are ever inflated, and they fail the checksum.
    bomb = patch_headers(make_zip({"estimator.py": b"\x00" * (50 * 1024 * 1024)}),
                         file_size=1000)
    assert zipfile.ZipFile(io.BytesIO(bomb)).getinfo("estimator.py").file_size == 1000
    assert_refused(post_zip(client, bomb), "submission.zip: entry 'estimator.py' is corrupt "
                   "(Bad CRC-32 for file 'estimator.py')")


def test_decompression_stops_at_the_limit_whatever_the_headers_say(client, monkeypatch):
    # Stands in for an archive whose declared sizes zipfile believes: the bytes
    # really inflated are capped too.
    from datarun import submission_files

    monkeypatch.setattr(submission_files, "_check_declared_sizes", lambda *args: None)
    bomb = make_zip({"estimator.py": b"\x00" * (50 * 1024 * 1024)})
    assert_refused(post_zip(client, bomb), "submission.zip: estimator.py unpacks to more "
                   "than 1048576 bytes, the limit per file")


def test_a_zip_member_over_the_file_limit_is_refused(client, settings):
    settings.DATARUN_MAX_SUBMISSION_FILE_BYTES = 1000
    assert_refused(post_zip(client, make_zip({"estimator.py": LONG_ESTIMATOR})),
                   f"submission.zip: estimator.py unpacks to {len(LONG_ESTIMATOR)} bytes; "
                   "the limit is 1000 bytes per file")


def test_a_zip_unpacking_to_more_than_the_submission_limit_is_refused(client, settings):
    settings.DATARUN_MAX_SUBMISSION_BYTES = 2000
    archive = make_zip({"estimator.py": LONG_ESTIMATOR})
    assert len(archive) < 2000 < len(LONG_ESTIMATOR)
    assert_refused(post_zip(client, archive), f"submission.zip unpacks to "
                   f"{len(LONG_ESTIMATOR)} bytes; the limit is 2000 bytes")


def test_an_oversize_archive_is_refused_with_its_size_and_the_limit(client, settings):
    settings.DATARUN_MAX_SUBMISSION_BYTES = 100
    archive = make_zip({"estimator.py": STARTING_KIT})
    assert_refused(post_zip(client, archive),
                   f"submission.zip is {len(archive)} bytes; the limit is 100 bytes for an archive")


def test_a_zip_with_too_many_entries_is_refused(client):
    archive = make_zip({f"f{i}.py": b"" for i in range(101)})
    assert_refused(post_zip(client, archive),
                   "submission.zip has 101 entries; the limit is 100 files and folders")


def test_an_encrypted_zip_entry_is_refused(client):
    archive = patch_headers(make_zip({"estimator.py": STARTING_KIT}), flag_bits=0x1)
    assert_refused(post_zip(client, archive), "submission.zip: entry 'estimator.py' is "
                   "encrypted; upload an archive without a password")


def test_an_unreadable_compression_method_is_refused(client):
    archive = patch_headers(make_zip({"estimator.py": STARTING_KIT}), compress_type=9)
    assert_refused(post_zip(client, archive), "submission.zip: entry 'estimator.py' uses a "
                   "compression method that cannot be read (zip method 9); use deflate")


@pytest.mark.parametrize("data", [
    b"this is not a zip", make_zip({"estimator.py": STARTING_KIT})[:-30], b"",
])
def test_a_file_that_is_not_a_readable_zip_is_refused(client, data):
    assert_refused(post_zip(client, data),
                   "submission.zip is not a zip archive that can be read (")


def test_a_zip_with_damaged_data_is_refused_as_corrupt(client):
    archive = bytearray(make_zip({"estimator.py": LONG_ESTIMATOR}))
    start = archive.index(b"estimator.py") + len("estimator.py")
    archive[start + 10:start + 40] = b"\xff" * 30
    assert_refused(post_zip(client, bytes(archive)),
                   "submission.zip: entry 'estimator.py' is corrupt (")


def test_a_nul_in_a_zip_entry_name_is_refused(client):
    archive = make_zip({"estimator.pyX.txt": STARTING_KIT}).replace(b"pyX", b"py\x00")
    assert_refused(post_zip(client, archive), "submission.zip: entry 'estimator.py\\x00.txt' "
                   "contains an unprintable character (U+0000)")


@pytest.mark.parametrize("entries", [
    {"a/estimator.py": STARTING_KIT, "b/utils.py": b""},
    {"outer/inner/estimator.py": STARTING_KIT},
    {"estimator.py": STARTING_KIT, "sub/estimator.py": STARTING_KIT},
])
def test_files_in_subfolders_of_a_zip_are_refused(client, entries):
    response = post_zip(client, make_zip(entries))
    assert_refused(response, "is in a subfolder; put the submission files at the top level "
                             "of the archive, or all in one folder")


def test_a_dot_file_in_a_zip_is_refused(client):
    archive = make_zip({"estimator.py": STARTING_KIT, ".env": b"TOKEN=1\n"})
    assert_refused(post_zip(client, archive), "submission.zip: entry '.env' is a dot-file "
                   "(a hidden file); those are not accepted")


def test_a_file_twice_in_a_zip_is_refused(client):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("estimator.py", STARTING_KIT)
        archive.writestr("estimator.py", b"x = 1\n")
    assert_refused(post_zip(client, buffer.getvalue()),
                   "submission.zip has estimator.py twice")


def test_an_empty_zip_says_which_files_are_expected(client):
    assert_refused(post_zip(client, make_zip({})),
                   "this problem needs exactly the files estimator.py; got none")


def test_files_and_an_archive_together_are_refused(client):
    response = post(client, [("files", "estimator.py", STARTING_KIT),
                             ("archive", "submission.zip", make_zip({}))])
    assert_refused(response, "send the files either in 'files' fields or in one zip "
                             "'archive', not both")


def test_two_archives_are_refused(client):
    archive = make_zip({"estimator.py": STARTING_KIT})
    response = post(client, [("archive", "a.zip", archive), ("archive", "b.zip", archive)])
    assert_refused(response, "send one zip archive, not 2")
