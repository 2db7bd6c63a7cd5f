"""Upload bodies as the clients send them, turned into a pull stream for the ingest pipeline.

prefix.dev clients (rattler-build, pixi) send multipart/form-data with a ``file`` part whose
part headers carry ``X-File-Name`` and ``X-File-SHA256``, and an optional ``attestation``
part; older clients send the raw body with those as request headers. The multipart body is
parsed incrementally (``multipart.PushMultipartParser``): the file part's bytes go straight
to the ingest pipeline's hashing copy, so an upload is never held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from repoproxy.errors import RepoproxyError, TooLarge

MAX_ATTESTATION = 1024 * 1024
READ = 64 * 1024


class BadUpload(RepoproxyError):
    status = 400
    code = "bad-upload"


class MultipartUpload:
    """Pull the ``file`` part of a multipart body; keep small side parts (attestation)."""

    def __init__(self, body: IO[bytes], content_type: str, content_length: int | None) -> None:
        _, options = parse_options_header(content_type)
        boundary = options.get("boundary")
        if not boundary:
            raise BadUpload("multipart upload without a boundary")
        self._body = body
        self._remaining = content_length
        self._parser = PushMultipartParser(boundary, max_segment_count=16)
        self._events = self._iter_events()
        self.file_headers: dict[str, str] = {}
        self.filename: str | None = None
        self.attestation: bytes | None = None
        self._buffer = b""
        self._in_file = False
        self._file_done = False

    def _iter_events(self) -> Iterator[MultipartSegment | bytearray | None]:
        try:
            while not self._parser.closed:
                size = READ if self._remaining is None else min(READ, self._remaining)
                chunk = self._body.read(size) if size else b""
                if self._remaining is not None:
                    self._remaining -= len(chunk)
                yield from self._parser.parse(chunk)
                if not chunk:
                    break
        except MultipartError as e:
            raise BadUpload(f"malformed multipart body: {e}") from None
        if not self._parser.closed:
            raise BadUpload("truncated multipart body")

    def find_file(self) -> None:
        """Advance to the start of the ``file`` part, keeping side parts met on the way."""
        side: MultipartSegment | None = None
        side_data = bytearray()
        for event in self._events:
            if isinstance(event, MultipartSegment):
                if event.name == "file":
                    self.file_headers = {k.lower(): v for k, v in event.headerlist}
                    self.filename = event.filename
                    self._in_file = True
                    return
                side, side_data = event, bytearray()
            elif event is None:
                self._keep(side, side_data)
                side = None
            elif side is not None:
                side_data += event
                if len(side_data) > MAX_ATTESTATION:
                    raise TooLarge(f"multipart part {side.name!r} is too large")
        raise BadUpload("multipart upload has no 'file' part")

    def _keep(self, segment: MultipartSegment | None, data: bytearray) -> None:
        if segment is not None and segment.name == "attestation":
            self.attestation = bytes(data)

    def read(self, size: int) -> bytes:
        """Bytes of the file part; b"" at its end."""
        while self._in_file and len(self._buffer) < size:
            event = next(self._events, None)
            if event is None or isinstance(event, MultipartSegment):
                self._in_file = False
                self._file_done = True
                break
            self._buffer += bytes(event)
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def finish(self) -> None:
        """Read the rest of the body (after the file part) for side parts."""
        side: MultipartSegment | None = None
        side_data = bytearray()
        for event in self._events:
            if isinstance(event, MultipartSegment):
                side, side_data = event, bytearray()
            elif event is None:
                self._keep(side, side_data)
                side = None
            elif side is not None:
                side_data += event
                if len(side_data) > MAX_ATTESTATION:
                    raise TooLarge(f"multipart part {side.name!r} is too large")
