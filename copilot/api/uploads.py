"""Getting the table to the engine: a streamed multipart upload, or a file named inside the import folder.

An upload goes straight from the socket to a temporary file under ``<data dir>/uploads`` (the same
disk as the versions, so the engine can move it), never whole into memory. The user's file name is
kept only for its suffix and for display.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from copilot.api.schemas import SessionOptions
from copilot.errors import InputFileError, NotFound

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FILE_FIELD = "file"
MAX_FIELD_BYTES = 64 * 1024
MAX_NAME_CHARS = 255


def safe_filename(raw: str) -> str:
    """The last part of a client's file name, printable, at most 255 characters; ``upload`` if nothing is left."""
    name = "".join(ch for ch in raw.replace("\\", "/").rsplit("/", 1)[-1] if ch.isprintable()).strip()
    if name in {"", ".", ".."}:
        return "upload"
    if len(name) > MAX_NAME_CHARS:
        suffix = Path(name).suffix[:16]
        name = name[: MAX_NAME_CHARS - len(suffix)] + suffix
    return name


def resolve_import(import_dir: Path | None, name: str) -> Path:
    """The file ``name`` inside ``import_dir``, after following symlinks; nothing outside it, ever."""
    if import_dir is None:
        raise NotFound("creating a session from a server path is off: the server has no COPILOT_IMPORT_DIR")
    if "\0" in name:
        raise InputFileError("the path contains a NUL character")
    root = import_dir.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise InputFileError(f"{name}: not inside the import folder; name a file relative to it")
    if not path.is_file():
        raise NotFound(f"{name}: no such file in the import folder")
    return path


def copy_import(source: Path, folder: Path, max_file_mb: float) -> Path:
    """A private copy of an imported file for the engine to consume (the original stays untouched)."""
    if source.stat().st_size > max_file_mb * 1024 * 1024:
        raise InputFileError(f"{source.name}: larger than the limit of {max_file_mb:g} MiB (COPILOT_MAX_FILE_MB)")
    handle = _temporary(folder)
    try:
        with handle, source.open("rb") as original:
            shutil.copyfileobj(original, handle, 1024 * 1024)
    except BaseException:
        os.unlink(handle.name)
        raise
    return Path(handle.name)


@dataclass
class Upload:
    path: Path
    filename: str
    options: SessionOptions


async def receive_upload(request: Request, folder: Path) -> Upload:
    """Stream a ``multipart/form-data`` body: the ``file`` part to disk, the other fields to ``SessionOptions``."""
    kind, params = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(415, "send the table as multipart/form-data with a 'file' field and a 'target' field")
    form = _Form(folder)
    try:
        parser = MultipartParser(params[b"boundary"], form.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if not form.ended:
            raise HTTPException(400, "the multipart body ended before its closing boundary")
        return form.result()
    except (FormParserError, UnicodeDecodeError) as exc:
        form.discard()
        raise HTTPException(400, f"the body is not valid multipart/form-data: {exc}") from None
    except ClientDisconnect:
        form.discard()
        raise HTTPException(400, "the client went away during the upload") from None
    except BaseException:
        form.discard()
        raise


def _temporary(folder: Path) -> IO[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    return tempfile.NamedTemporaryFile(dir=folder, prefix="upload-", suffix=".part", delete=False)


class _Form:
    """The callbacks of the multipart parser, and what they collected."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fields: dict[str, str] = {}
        self.file: IO[bytes] | None = None
        self.filename = ""
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._header = [b"", b""]
        self._name = ""
        self._is_file = False
        self._value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._headers.clear,
            "on_header_field": lambda data, start, end: self._add_header(0, data[start:end]),
            "on_header_value": lambda data, start, end: self._add_header(1, data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": lambda data, start, end: self._data(data[start:end]),
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _add_header(self, which: int, data: bytes) -> None:
        self._header[which] += data

    def _header_end(self) -> None:
        self._headers[self._header[0].lower()] = self._header[1].strip(b" \t")
        self._header[:] = [b"", b""]

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        if b"name" not in options:
            raise FormParserError("a part has no name in its Content-Disposition header")
        self._name = options[b"name"].decode()
        self._is_file = b"filename" in options
        self._value.clear()
        if not self._is_file:
            if self._name == FILE_FIELD:
                raise FormParserError(f"the {FILE_FIELD!r} part has no filename; send it as a file upload")
            return
        if self._name != FILE_FIELD or self.file is not None:
            raise FormParserError(f"send one file, in the field {FILE_FIELD!r} (got a file in {self._name!r})")
        self.filename = safe_filename(options[b"filename"].decode())
        self.file = _temporary(self.folder)

    def _data(self, data: bytes) -> None:
        if self._is_file:
            assert self.file is not None
            self.file.write(data)
            return
        self._value += data
        if len(self._value) > MAX_FIELD_BYTES:
            raise FormParserError(f"the field {self._name!r} is longer than {MAX_FIELD_BYTES // 1024} KiB")

    def _part_end(self) -> None:
        if not self._is_file:
            self.fields[self._name] = self._value.decode()

    def _end(self) -> None:
        self.ended = True

    def result(self) -> Upload:
        if self.file is None:
            missing = {"type": "missing", "loc": ("body", FILE_FIELD), "msg": "Field required", "input": None}
            raise RequestValidationError([missing])
        self.file.close()
        try:
            options = SessionOptions.model_validate(self.fields)
        except ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        return Upload(Path(self.file.name), self.filename, options)

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            os.unlink(self.file.name)
