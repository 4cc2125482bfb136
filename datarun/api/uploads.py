"""Multipart uploads held in memory, capped, under the names the client sent.

Django's own parser renames uploads silently (``../estimator.py`` becomes
``estimator.py``, ``..`` is dropped) and spills large ones to temporary files.
Submissions need the opposite: the name as sent, so that an unsafe one is
refused with a message, and no byte past the submission limit kept anywhere.
"""
from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import DataAndFiles, MultiPartParser, get_encoding

from datarun.errors import InvalidSubmission


class Upload:
    """One uploaded file; its content is kept only when it fitted under the limit."""

    def __init__(self, name: str, size: int, content: bytes | None):
        self.name = name
        self.size = size
        self._content = content

    def read(self) -> bytes:
        if self._content is None:
            raise ValueError(f"{self.name} ({self.size} bytes) was over the limit, not kept")
        return self._content

    def close(self) -> None:
        """Django closes every upload after the request; there is nothing to release."""


class InMemoryUploadHandler(FileUploadHandler):
    """Keeps at most ``limit`` bytes of a request's files in memory; counts the rest."""

    def __init__(self, limit: int, request=None):
        super().__init__(request)
        self.room = limit

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.chunks: list[bytes] | None = []

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self.chunks is None:
            return
        if len(raw_data) > self.room:
            # Too big to keep: give back what this file held and only count it.
            self.room += sum(len(c) for c in self.chunks)
            self.chunks = None
            return
        self.chunks.append(raw_data)
        self.room -= len(raw_data)

    def file_complete(self, file_size: int) -> Upload:
        content = None if self.chunks is None else b"".join(self.chunks)
        return Upload(self.file_name, file_size, content)


class NameKeepingMultiPartParser(DjangoMultiPartParser):
    """Django's parser, keeping upload names as sent: Django strips paths and
    dots, and an unsafe name must be refused, not silently renamed."""

    def sanitize_file_name(self, file_name: str) -> str:
        return file_name


class SubmissionUploadParser(MultiPartParser):
    """``multipart/form-data`` with files kept whole up to DATARUN_MAX_SUBMISSION_BYTES.

    An upload over the limit arrives with its real ``size`` and no content, to
    be refused by size. A file part with an empty name is skipped, as browsers
    send one for an empty file input. Requests that a session authenticates
    are read by Django first (for the CSRF check), with its renaming parser.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        meta = parser_context["request"].META.copy()
        meta["CONTENT_TYPE"] = media_type
        handlers = [InMemoryUploadHandler(settings.DATARUN_MAX_SUBMISSION_BYTES)]
        try:
            parser = NameKeepingMultiPartParser(meta, stream, handlers,
                                                get_encoding(parser_context))
            data, files = parser.parse()
        except TooManyFilesSent as exc:
            raise InvalidSubmission(
                f"too many files in one request: the limit is "
                f"{settings.DATA_UPLOAD_MAX_NUMBER_FILES}"
            ) from exc
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from exc
        return DataAndFiles(data, files)
