"""Upload endpoints in the forms existing clients speak (conda-protocol.md section 6)."""

from __future__ import annotations

from typing import Any

from pyramid.view import view_config

from repoproxy.domain import packages
from repoproxy.domain.permissions import Permissions
from repoproxy.errors import ChecksumMismatch, TooLarge
from repoproxy.models import Channel, PackageRecord
from repoproxy.pipeline.ingest import Prepared
from repoproxy.web.request import Request
from repoproxy.web.uploads import BadUpload, MultipartUpload


class NotAcceptable(ChecksumMismatch):
    """quetz answers a wrong checksum with 406; its clients expect that."""

    status = 406


def _flag(request: Request, name: str) -> bool:
    return str(request.GET.get(name, "")).lower() in ("1", "true", "yes")


def _check_length(request: Request) -> None:
    limit = request.services.settings["repoproxy.max_upload_size"]
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise TooLarge(f"upload of {request.content_length} bytes is over the limit of "
                       f"{limit} bytes")


def _ingest(request: Request, channel: Channel, read: Any, filename: str, *, sha256: str | None,
            subdir: str | None = None,
            upload: MultipartUpload | None = None) -> PackageRecord:
    """Run the one pipeline; a multipart body's side parts are read after the file part."""

    def side_parts(prepared: Prepared) -> None:
        if upload is not None:
            upload.finish()
            prepared.attestation = upload.attestation

    return packages.upload(request.services, channel, read, filename, actor=request.identity,
                           target_subdir=subdir, expected_sha256=sha256,
                           force=_flag(request, "force"), after_receive=side_parts)


def _created(request: Request, rec: PackageRecord) -> dict[str, Any]:
    request.response.status_int = 201
    return {"channel": rec.channel, "subdir": rec.subdir, "filename": rec.filename,
            "sha256": rec.sha256, "size": rec.size}


@view_config(route_name="api.upload", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_UPLOAD)
def prefix_upload(request: Request) -> Any:
    """``POST /api/v1/upload/<channel>``: multipart (current clients) or raw body (older)."""
    channel = request.context.channel
    _check_length(request)
    if (request.content_type or "").startswith("multipart/form-data"):
        upload = MultipartUpload(request.body_file, request.headers["Content-Type"],
                                 request.content_length)
        upload.find_file()
        filename = (upload.file_headers.get("x-file-name") or request.headers.get("X-File-Name")
                    or upload.filename)
        sha256 = upload.file_headers.get("x-file-sha256") or request.headers.get("X-File-SHA256")
        if not filename:
            raise BadUpload("the file part names no file (X-File-Name)")
        rec = _ingest(request, channel, upload.read, filename, sha256=sha256, upload=upload)
    else:
        filename = request.headers.get("X-File-Name")
        if not filename:
            raise BadUpload("raw upload without an X-File-Name header")
        rec = _ingest(request, channel, request.body_file.read, filename,
                      sha256=request.headers.get("X-File-SHA256"))
    return _created(request, rec)


@view_config(route_name="api.quetz_upload", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_UPLOAD)
def quetz_upload(request: Request) -> Any:
    """quetz form: raw body, ``?sha256=`` (406 when it does not match)."""
    md = request.matchdict
    channel = request.context.channel
    _check_length(request)
    try:
        rec = _ingest(request, channel, request.body_file.read, md["filename"],
                      sha256=request.GET.get("sha256"))
    except ChecksumMismatch as e:
        raise NotAcceptable(e.message) from None
    return _created(request, rec)


@view_config(route_name="channel.file", request_method="PUT", renderer="json",
             permission=Permissions.CHANNEL_UPLOAD)
def artifactory_upload(request: Request) -> Any:
    """Artifactory form (rattler-build ``upload artifactory``): ``PUT /<ch>/<subdir>/<file>``."""
    md = request.matchdict
    channel = request.context.channel
    _check_length(request)
    sha = request.headers.get("X-Checksum-Sha256") or request.headers.get("X-File-SHA256")
    rec = _ingest(request, channel, request.body_file.read, md["filename"], sha256=sha,
                  subdir=md["subdir"])
    return _created(request, rec)


