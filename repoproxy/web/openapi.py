"""The OpenAPI 3.1 document of the JSON API, served at ``GET /api/openapi.json``.

One document for the core's ``/api/...`` routes and those of the first-party plugins. A
plugin's paths carry ``x-repoproxy-plugin: <plugin>`` and are left out when that plugin is not
loaded (``repoproxy.plugins.block``), so the document served always describes the routes the
running server has. ``tests/functional/test_openapi.py`` compares the document's paths and
methods with the routes registered in the app, so a new ``/api/`` route without an entry here
fails the suite; ``tests/e2e/test_schemathesis.py`` fuzzes a live server with it.

Built from small helpers rather than kept as a static JSON file: the error body, the
parameters and the security requirements are written once and referenced everywhere.

Path parameters carry examples (``main``, ``fuzzpkg``) that name the data the API fuzz test
seeds, so generated requests reach existing data; the deleting operations name scratch data
(``scratch``, ``scratchpkg``) instead, so they cannot empty what the others read.

Every operation has a ``default`` response with the error body, so any status not listed
must still answer ``{"error": ..., "message": ..., "reasons"?: [...]}``.
"""

from __future__ import annotations

import copy
from typing import Any

from repoproxy import __version__

OPENAPI_VERSION = "3.1.0"

JSON = "application/json"

# --- schema helpers ------------------------------------------------------------------------
STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
NULLABLE_STR: dict[str, Any] = {"type": ["string", "null"]}
STR_LIST: dict[str, Any] = {"type": "array", "items": STR}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None,
        *, closed: bool = False) -> dict[str, Any]:
    """An object schema: ``required`` keys must be present, ``optional`` ones may be.

    Response objects stay open (plugins add fields to files and channels) unless ``closed``.
    """
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "additionalProperties": not closed,
    }
    if required:
        schema["required"] = sorted(required)
    return schema


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def string_map(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": values}


def path_param(name: str, description: str, example: str | None = None) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "path", "required": True,
                             "description": description, "schema": STR}
    if example is not None:
        param["example"] = example
    return param


def query(name: str, description: str, schema: dict[str, Any] | None = None,
          *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or STR}


def header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": STR}


def json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def ok(schema: dict[str, Any], description: str = "OK",
       content_type: str = JSON) -> dict[str, Any]:
    return {"description": description, "content": {content_type: {"schema": schema}}}


# a channel's file listing: every file (streamed) or, with `limit`, a page and its cursor
FILE_LISTING = obj({"channel": STR, "files": array(ref("FileItem")), "next": NULLABLE_STR})
FILE_LISTING_QUERY = [
    query("subdir", "Only this subdir"),
    query("limit", "Page size: answer at most this many files and `next` (without it: every "
          "file, in one answer)", {"type": "integer", "minimum": 1, "maximum": 1000}),
    query("after", "The `next` of the previous page (`<subdir>/<filename>`): files after it",
          {"type": "string", "pattern": "^[^/]+/.+$", "maxLength": 400}),
]


ERROR_RESPONSE = {"description": "Error: a specific 4xx saying what is wrong",
                  "content": {JSON: {"schema": ref("Error")}}}


def op(summary: str, tag: str, responses: dict[str, Any], *,
       parameters: list[dict[str, Any]] | None = None,
       body: dict[str, Any] | None = None, operation_id: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "operationId": operation_id,
        "tags": [tag],
        "responses": {**responses, "default": {"$ref": "#/components/responses/Error"}},
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    return operation


# --- parameters ----------------------------------------------------------------------------
CHANNEL = path_param("channel", "Channel name (CEP-26)", "main")
NAME_CHANNEL = path_param("name", "Channel name (CEP-26)", "main")
PACKAGE = path_param("name", "Package name", "fuzzpkg")
FAMILY = path_param("family", "Artifact family: `conda`, or `gra` (generic artifacts and "
                    "notebooks)", "conda")
SUBDIR = path_param("subdir", "Subdir (`noarch` or `<os>-<arch>`)", "noarch")
FILENAME = path_param("filename", "Package file name (`<name>-<version>-<build>.conda` or "
                      "`.tar.bz2`)")
POLICY_ID = path_param("id", "Policy id (a number) or name")
MIRROR = path_param("mirror", "Mirror name", "snakes")
ARTIFACT = [CHANNEL, FAMILY, PACKAGE]

# --- schemas -------------------------------------------------------------------------------
PRIVACY = {"type": "string", "enum": ["public", "authenticated", "private"]}
PERMISSION = {"type": "string", "enum": ["read", "write", "manage"]}

SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": STR, "message": STR}, {"reasons": STR_LIST}, closed=True),
    "Channel": obj({"name": STR, "description": STR, "privacy": PRIVACY, "created": STR}),
    "ChannelDetails": obj({
        "name": STR, "description": STR, "privacy": PRIVACY, "created": STR,
        "subdirs": STR_LIST, "package_files": string_map(INT), "url": STR,
    }, {
        "owners": STR_LIST, "last_updated": STR, "package_count": INT, "artifact_count": INT,
        "subchannel_count": INT, "mirror_count": INT, "parent": STR,
    }),
    "FileItem": obj({
        "subdir": STR, "filename": STR, "name": STR, "version": STR, "build": STR,
        "size": INT, "sha256": STR, "md5": STR, "indexed_timestamp": INT,
        "uploader": NULLABLE_STR, "uploaded_at": STR,
    }),
    "ArtifactFile": obj({
        "subdir": STR, "filename": STR, "name": STR, "version": STR, "build": STR,
        "build_number": INT, "size": INT, "sha256": STR, "md5": STR,
        "indexed_timestamp": INT, "uploader": NULLABLE_STR, "uploaded_at": STR,
        "platform": STR, "ckey": STR, "license": STR, "url": STR,
    }),
    "Member": obj({"channel": STR, "user": STR, "role": STR}, {"added": NULLABLE_STR}),
    "Token": obj({
        "id": STR, "name": STR, "owner": NULLABLE_STR, "role": STR, "channels": STR_LIST,
        "permission": PERMISSION, "created": NULLABLE_STR, "expires": NULLABLE_STR,
        "last_used": NULLABLE_STR, "revoked": BOOL,
    }),
    "Uploaded": obj({"channel": STR, "subdir": STR, "filename": STR, "sha256": STR,
                     "size": INT}),
    "Policy": obj({"id": INT, "name": STR, "description": STR, "filters": {"type": "object"},
                   "channels": STR_LIST, "created": STR, "updated": STR}),
    "PolicyBody": {
        "type": "object",
        "description": "name, description, channel_name and the policy's filters "
                       "(docs/policies.md); unknown fields are refused",
        "properties": {"name": STR, "description": STR, "channel_name": STR},
        "additionalProperties": True,
    },
    "Cve": obj({"id": STR, "status": STR}),
    "Mirror": obj({"id": STR, "name": STR, "channel": STR, "type": STR,
                   "mode": {"type": "string", "enum": ["active", "passive"]}, "source": STR,
                   "state": STR, "cron": NULLABLE_STR, "filters": {"type": "object"},
                   "counts": {"type": "object"}, "last_run_at": NULLABLE_STR,
                   "last_error": NULLABLE_STR, "created": STR, "updated": STR}),
    "MirrorBody": {
        "type": "object",
        "description": "name and channel (create), channel (update), run_now, and the "
                       "mirror's fields (docs/mirrors.md): mode, type, source, cron, subdirs, "
                       "only_specs, exclude_specs, include_specs, licenses, cve_score, "
                       "exclude_uncurated_cve_packages, date_from, date_to, "
                       "use_channel_policy, policy_id; unknown fields are refused",
        "properties": {"name": STR, "channel": STR, "run_now": BOOL, "source": STR,
                       "mode": {"type": "string", "enum": ["active", "passive"]}},
        "additionalProperties": True,
    },
}

# --- paths ---------------------------------------------------------------------------------
CORE_PATHS: dict[str, Any] = {
    "/api/openapi.json": {
        "get": op("This document", "meta", {"200": ok({"type": "object"})},
                  operation_id="openapi"),
    },
    "/api/v1/channels": {
        "get": op("Channels the caller may read", "channels",
                  {"200": ok(obj({"channels": array(ref("Channel"))}))},
                  operation_id="listChannels"),
        "post": op("Create a channel (admins; users become its first owner)", "channels",
                   {"201": ok(ref("ChannelDetails"), "Created")},
                   body=json_body(obj({"name": STR}, {"description": STR, "privacy": PRIVACY},
                                      closed=True)),
                   operation_id="createChannel"),
    },
    "/api/v1/channels/{name}": {
        "get": op("A channel's details", "channels", {"200": ok(ref("ChannelDetails"))},
                  parameters=[NAME_CHANNEL], operation_id="getChannel"),
        "patch": op("Change a channel's privacy or description", "channels",
                    {"200": ok(ref("Channel"))}, parameters=[NAME_CHANNEL],
                    body=json_body(obj({}, {"privacy": PRIVACY, "description": STR},
                                       closed=True)),
                    operation_id="patchChannel"),
        "delete": op("Delete a channel and its files", "channels",
                     {"200": ok(obj({"deleted": STR}))},
                     parameters=[path_param("name", "Channel name (CEP-26)", "scratch")],
                     operation_id="deleteChannel"),
    },
    "/api/v1/channels/{name}/files": {
        "parameters": [NAME_CHANNEL],
        "get": op("Every package file of a channel (all at once, or a page at a time)",
                  "channels", {"200": ok(FILE_LISTING)}, parameters=FILE_LISTING_QUERY,
                  operation_id="listChannelFiles"),
    },
    "/api/v1/channels/{name}/members": {
        "parameters": [NAME_CHANNEL],
        "get": op("A channel's members", "access",
                  {"200": ok(obj({"channel": STR, "members": array(ref("Member"))}))},
                  operation_id="listMembers"),
        "post": op("Add a member, or change a member's role", "access",
                   {"201": ok(obj({"channel": STR, "user": STR, "role": STR}), "Created")},
                   body=json_body(obj({"user": STR},
                                      {"role": {"type": "string",
                                                "enum": ["owner", "member"]}},
                                      closed=True)),
                   operation_id="addMember"),
    },
    "/api/v1/channels/{name}/members/{user}": {
        "parameters": [NAME_CHANNEL, path_param("user", "User name")],
        "delete": op("Remove a member", "access",
                     {"200": ok(obj({"channel": STR, "removed": STR}))},
                     operation_id="removeMember"),
    },
    "/api/v1/tokens": {
        "get": op("Tokens the caller may manage (never their secrets)", "access",
                  {"200": ok(obj({"tokens": array(ref("Token"))}))},
                  parameters=[query("channel", "Only service tokens covering this channel"),
                              query("user_id", "Only tokens of this user id")],
                  operation_id="listTokens"),
        "post": op("Create a token; the secret is in this answer only", "access",
                   {"201": ok({"allOf": [ref("Token"), obj({"token": STR})]}, "Created")},
                   body=json_body(obj({"name": STR}, {
                       "channels": {"oneOf": [STR_LIST, STR]},
                       "permission": PERMISSION,
                       "expires_in_days": {"type": "integer", "minimum": 1},
                       "admin": BOOL,
                       "user_id": STR,
                   }, closed=True)),
                   operation_id="createToken"),
    },
    "/api/v1/tokens/{id}": {
        "parameters": [path_param("id", "Token id")],
        "patch": op("Change a token's permission and/or name", "access",
                    {"200": ok(ref("Token"))},
                    body=json_body(obj({}, {"permission": PERMISSION, "name": STR},
                                       closed=True)),
                    operation_id="patchToken"),
        "delete": op("Revoke a token", "access", {"200": ok(obj({"revoked": STR}))},
                     operation_id="revokeToken"),
    },
    "/api/v1/whoami": {
        "get": op("The caller's identity and channel access", "access", {"200": ok(obj({
            "name": STR, "kind": STR, "role": NULLABLE_STR,
            "channels": string_map(PERMISSION), "token_id": NULLABLE_STR,
            "token_expires": NULLABLE_STR,
        }))}, operation_id="whoami"),
    },
    "/api/v1/audit": {
        "get": op("The audit log, one JSON object a line (admins)", "access",
                  {"200": ok(STR, "Newline-delimited JSON", "application/x-ndjson")},
                  parameters=[query("since", "Only entries at or after this ISO time"),
                              query("channel", "Only entries of this channel")],
                  operation_id="auditLog"),
    },
    "/api/v1/upload/{channel}": {
        "parameters": [CHANNEL],
        "post": op("Upload a package: multipart (file part) or raw body", "packages",
                   {"201": ok(ref("Uploaded"), "Created")},
                   parameters=[
                       header("X-File-Name", "Package file name (raw body)"),
                       header("X-File-SHA256", "Expected sha256 of the bytes"),
                       query("force", "Replace a file of the same name",
                             {"type": "string", "enum": ["true", "false", "1", "0"]}),
                   ],
                   body={"required": True, "content": {
                       "application/octet-stream": {"schema": {"type": "string",
                                                               "format": "binary"}},
                       "multipart/form-data": {"schema": obj({
                           "file": {"type": "string", "format": "binary"}})},
                   }},
                   operation_id="upload"),
    },
    "/api/channels/{channel}/upload/{filename}": {
        "parameters": [CHANNEL, FILENAME],
        "post": op("Upload a package (quetz form; 406 on a wrong sha256)", "packages",
                   {"201": ok(ref("Uploaded"), "Created")},
                   parameters=[query("sha256", "Expected sha256 of the bytes"),
                               query("force", "Replace a file of the same name")],
                   body={"required": True, "content": {"application/octet-stream": {
                       "schema": {"type": "string", "format": "binary"}}}},
                   operation_id="quetzUpload"),
    },
    "/api/v1/delete/{channel}/{subdir}/{filename}": {
        "parameters": [CHANNEL, SUBDIR,
                       {**FILENAME, "example": "scratchpkg-2.0-0.tar.bz2"}],
        "delete": op("Delete one package file", "packages",
                     {"200": ok(obj({"deleted": STR}))}, operation_id="deleteFile"),
    },
    "/api/v1/reindex/{channel}/{subdir}": {
        "parameters": [CHANNEL, SUBDIR],
        "post": op("Reconcile a subdir with its files and rebuild its index", "packages",
                   {"200": ok(obj({"channel": STR, "subdir": STR}))},
                   operation_id="reindex"),
    },
    "/api/v1/search": {
        "get": op("Search package names in every readable channel", "packages",
                  {"200": ok(obj({"query": STR, "family": STR, "count": INT,
                                  "results": array(obj({
                                      "channel": STR, "name": STR, "version": STR,
                                      "family": STR, "build": STR, "license": STR,
                                      "platforms": STR_LIST, "exact": BOOL}))}))},
                  parameters=[query("q", "Part of a package name", required=True),
                              query("family", "Artifact family: `conda` (default) or `gra`",
                                    {"type": "string", "enum": ["conda", "gra"]})],
                  operation_id="search"),
    },
    "/api/channels/{channel}/artifacts": {
        "parameters": [CHANNEL],
        "get": op("Package names of a channel", "details", {"200": ok(obj({
            "channel": STR, "packages": array(obj({
                "name": STR, "family": STR, "latest_version": STR, "license": STR,
                "summary": STR, "platforms": STR_LIST, "file_count": INT}))}))},
            operation_id="listPackages"),
    },
    "/api/channels/{channel}/artifacts/{family}/{name}": {
        "get": op("A package's summary", "details", {"200": ok(obj({
            "channel": STR, "name": STR, "family": STR, "summary": STR, "license": STR,
            "home": STR, "dev_url": STR, "doc_url": STR, "latest_version": STR,
            "versions": STR_LIST, "platforms": STR_LIST, "file_count": INT,
            "latest_release": INT}))}, parameters=ARTIFACT, operation_id="getPackage"),
        "delete": op("Delete every file of a package", "details",
                     {"200": ok(obj({"deleted": STR_LIST}))},
                     parameters=[CHANNEL, FAMILY, {**PACKAGE, "example": "scratchpkg"}],
                     operation_id="deletePackage"),
    },
    "/api/channels/{channel}/artifacts/{family}/{name}/files": {
        "parameters": ARTIFACT,
        "get": op("A package's files, newest first, a page at a time", "details",
                  {"200": ok(obj({"channel": STR, "name": STR, "total": INT, "offset": INT,
                                  "limit": INT, "files": array(ref("ArtifactFile"))}))},
                  parameters=[
                      query("subdir", "Only this subdir"),
                      query("version", "Only this version"),
                      query("build", "Only this build string"),
                      query("filename", "Only this file"),
                      query("limit", "Page size", {"type": "integer", "minimum": 1,
                                                   "maximum": 1000}),
                      query("offset", "Files to skip", {"type": "integer", "minimum": 0,
                                                        "maximum": 1000000000}),
                  ],
                  operation_id="listPackageFiles"),
    },
    "/api/channels/{channel}/artifacts/{family}/{name}/dependencies": {
        "parameters": ARTIFACT,
        "get": op("A version's dependencies, and the channel's packages that need it",
                  "details", {"200": ok(obj({
                      "channel": STR, "name": STR, "version": STR,
                      "dependencies": array(obj({"name": STR, "spec": STR, "raw": STR,
                                                 "subdirs": STR_LIST})),
                      "dependents": array(obj({"name": STR, "versions": STR_LIST}))}))},
                  parameters=[query("version", "Version (default: the latest)")],
                  operation_id="getDependencies"),
    },
    "/api/channels/{channel}/artifacts/{family}/{name}/dependents": {
        "parameters": ARTIFACT,
        "get": op("The channel's packages that depend on this one", "details",
                  {"200": ok(obj({"channel": STR, "name": STR, "dependents": array(obj({
                      "name": STR, "versions": STR_LIST}))}))},
                  parameters=[query("version", "Version (default: the latest)")],
                  operation_id="getDependents"),
    },
    "/api/channels/{channel}/artifacts/{family}/{name}/readme": {
        "parameters": ARTIFACT,
        "get": op("A package's description", "details", {"200": ok(obj({
            "channel": STR, "name": STR, "readme": STR,
            "source": {"type": ["string", "null"],
                       "enum": ["description", "summary", None]}}))},
            operation_id="getReadme"),
    },
}

# --- generic artifacts and notebooks (family gra) ---------------------------------------------
ARTIFACT_FILE = [CHANNEL, path_param("name", "Artifact name", "fuzzart"),
                 path_param("version", "Artifact version", "1.0"),
                 path_param("filename", "File name", "data.txt")]
SCHEMAS["GenericArtifact"] = obj({
    "channel": STR, "name": STR, "version": STR, "filename": STR, "family": STR,
    "kind": {"type": "string", "enum": ["file", "notebook"]}, "size": INT, "sha256": STR,
    "md5": STR, "description": STR, "uploader": STR, "uploaded_at": STR, "url": STR,
})
CORE_PATHS["/api/channels/{channel}/artifacts/gra/{name}/{version}/{filename}"] = {
    "parameters": ARTIFACT_FILE,
    "get": op("Download a generic artifact or notebook", "artifacts",
              {"200": ok({"type": "string", "format": "binary"}, "The file's bytes",
                         "application/octet-stream")},
              operation_id="downloadArtifact"),
    "post": op("Upload a generic artifact (any file; `.ipynb` files must be notebooks): raw "
               "body or multipart `file` part; 409 when it exists unless `force`", "artifacts",
               {"201": ok(ref("GenericArtifact"), "Created")},
               parameters=[
                   header("X-File-SHA256", "Expected sha256 of the bytes"),
                   query("force", "Replace a file of the same name and version",
                         {"type": "string", "enum": ["true", "false", "1", "0"]}),
                   query("description", "A short description"),
               ],
               body={"required": True, "content": {
                   "application/octet-stream": {"schema": {"type": "string",
                                                           "format": "binary"}},
                   "multipart/form-data": {"schema": obj({
                       "file": {"type": "string", "format": "binary"}})},
               }},
               operation_id="uploadArtifact"),
    "delete": op("Delete one generic artifact file", "artifacts",
                 {"200": ok(obj({"deleted": STR}))},
                 parameters=[CHANNEL, path_param("name", "Artifact name", "scratchart"),
                             path_param("version", "Artifact version", "1.0"),
                             path_param("filename", "File name", "data.txt")],
                 operation_id="deleteArtifact"),
}

# first-party plugins' routes, by plugin name
# --- subchannels; copy, move, remove (issue 15) ---------------------------------------------
SUB = path_param("sub", "Subchannel name (not a subdir's shape)", "dev")
ORIGIN = path_param("channel", "Origin channel, `C` or `C/SUB`", "main")
TRANSFER_BODY = {"package": STR, "version": STR, "subdir": STR, "file": STR}
TRANSFER_RESULT = obj({"action": STR, "source": STR, "files": STR_LIST,
                       "duplicates": STR_LIST}, {"destination": STR})
TRANSFER_PATHS: dict[str, Any] = {
    "/api/v1/channels/{name}/subchannels": {
        "parameters": [NAME_CHANNEL],
        "get": op("A channel's subchannels", "channels",
                  {"200": ok(obj({"channel": STR, "subchannels": array(ref("Channel"))}))},
                  operation_id="listSubchannels"),
        "post": op("Create a subchannel `C/SUB` (who manages C); served at /C/SUB/. Its "
                   "privacy is C's: a `privacy` other than C's is refused (400)", "channels",
                   {"201": ok(ref("ChannelDetails"), "Created")},
                   body=json_body(obj({"name": STR}, {"description": STR, "privacy": PRIVACY},
                                      closed=True)),
                   operation_id="createSubchannel"),
    },
    "/api/v1/channels/{name}/subchannels/{sub}": {
        "get": op("A subchannel's details (access follows its parent)", "channels",
                  {"200": ok(ref("ChannelDetails"))}, parameters=[NAME_CHANNEL, SUB],
                  operation_id="getSubchannel"),
        "delete": op("Delete a subchannel and its files", "channels",
                     {"200": ok(obj({"deleted": STR}))},
                     parameters=[NAME_CHANNEL, path_param("sub", "Subchannel name", "scratch")],
                     operation_id="deleteSubchannel"),
    },
    "/api/v1/channels/{name}/subchannels/{sub}/files": {
        "parameters": [NAME_CHANNEL, SUB],
        "get": op("Every package file of a subchannel (all at once, or a page at a time)",
                  "channels", {"200": ok(FILE_LISTING)}, parameters=FILE_LISTING_QUERY,
                  operation_id="listSubchannelFiles"),
    },
    "/api/v1/copy/{channel}": {
        "parameters": [ORIGIN],
        "post": op("Copy a package's files to another channel or subchannel (hard links; "
                   "the destination's policy may refuse: 422 with reasons)", "packages",
                   {"200": ok(TRANSFER_RESULT)},
                   body=json_body(obj({"package": STR, "destination": STR}, TRANSFER_BODY,
                                      closed=True)),
                   operation_id="copyPackage"),
    },
    "/api/v1/move/{channel}": {
        "parameters": [ORIGIN],
        "post": op("Move a package's files to another channel or subchannel (one commit)",
                   "packages", {"200": ok(TRANSFER_RESULT)},
                   body=json_body(obj({"package": STR, "destination": STR}, TRANSFER_BODY,
                                      closed=True)),
                   operation_id="movePackage"),
    },
    "/api/v1/remove/{channel}": {
        "parameters": [path_param("channel", "Channel, `C` or `C/SUB`", "scratch")],
        "post": op("Remove a package's files (all, one version, one subdir or one file)",
                   "packages", {"200": ok(TRANSFER_RESULT)},
                   body=json_body(obj({"package": STR}, TRANSFER_BODY, closed=True)),
                   operation_id="removePackage"),
    },
}
CORE_PATHS.update(TRANSFER_PATHS)

PLUGIN_PATHS: dict[str, dict[str, Any]] = {
    "repoproxy_badges": {
        "/api/channels/{channel}/badges/{name}/{kind}.svg": {
            "parameters": [CHANNEL, PACKAGE, path_param("kind", "Badge kind", "version")],
            "get": op("A shields-style SVG badge of a package", "badges",
                      {"200": ok(STR, "SVG image", "image/svg+xml")},
                      operation_id="badge"),
        },
    },
    "repoproxy_stats": {
        "/api/channels/{channel}/downloads": {
            "parameters": [CHANNEL],
            "get": op("Download totals of a channel", "stats", {"200": ok(obj({
                "channel": STR, "downloads": INT, "packages": string_map(INT),
                "files": array(obj({"subdir": STR, "filename": STR, "downloads": INT}))}))},
                operation_id="channelDownloads"),
        },
        "/api/v1/reports/downloads": {
            "get": op("Download report, per day, user and file (admins)", "stats", {"200": {
                "description": "JSON (default) or CSV (`format=csv`)",
                "content": {
                    JSON: {"schema": obj({"date_from": STR, "date_to": STR,
                                          "rows": array({"type": "object"})})},
                    "text/csv": {"schema": STR},
                }}},
                parameters=[
                    query("date_from", "First day (YYYY-MM-DD)", required=True),
                    query("date_to", "Last day (YYYY-MM-DD), at most a year later",
                          required=True),
                    query("user_names", "Comma-separated user names"),
                    query("channels", "Comma-separated channel names"),
                    query("format", "Answer format", {"type": "string",
                                                       "enum": ["json", "csv"]}),
                ],
                operation_id="downloadReport"),
        },
    },
    "repoproxy_sbom": {
        "/api/channels/{channel}/sbom/{subdir}": {
            "parameters": [CHANNEL, SUBDIR],
            "get": op("CycloneDX 1.6 SBOM of a channel subdir", "sbom",
                      {"200": ok({"type": "object"}, "CycloneDX JSON",
                                 "application/vnd.cyclonedx+json")},
                      operation_id="subdirSbom"),
        },
        "/api/channels/{channel}/sbom/{subdir}/{filename}": {
            "parameters": [CHANNEL, SUBDIR, FILENAME],
            "get": op("CycloneDX 1.6 SBOM of one package file", "sbom",
                      {"200": ok({"type": "object"}, "CycloneDX JSON",
                                 "application/vnd.cyclonedx+json")},
                      operation_id="fileSbom"),
        },
    },
    "repoproxy_policy": {
        "/api/v1/policies": {
            "get": op("Policies (channels limited to those the caller can read)", "policies",
                      {"200": ok(obj({"policies": array(ref("Policy"))}))},
                      operation_id="listPolicies"),
            "post": op("Create a policy (admins)", "policies",
                       {"201": ok(ref("Policy"), "Created")},
                       body=json_body(ref("PolicyBody")), operation_id="createPolicy"),
        },
        "/api/v1/policies/{id}": {
            "parameters": [POLICY_ID],
            "get": op("One policy", "policies", {"200": ok(ref("Policy"))},
                      operation_id="getPolicy"),
            "patch": op("Change a policy (admins)", "policies", {"200": ok(ref("Policy"))},
                        body=json_body(ref("PolicyBody")), operation_id="patchPolicy"),
            "delete": op("Delete a policy (admins)", "policies",
                         {"200": ok(obj({"deleted": INT, "channels": STR_LIST}))},
                         operation_id="deletePolicy"),
        },
        "/api/v1/policies/{id}/assign": {
            "parameters": [POLICY_ID],
            "post": op("Assign a policy to a channel (admins)", "policies",
                       {"200": ok(obj({"policy": INT, "assigned": STR,
                                       "rebuilt": STR_LIST}))},
                       body=json_body(obj({"channel": STR}, closed=True)),
                       operation_id="assignPolicy"),
        },
        "/api/v1/policies/{id}/unassign": {
            "parameters": [POLICY_ID],
            "post": op("Take a policy off a channel (admins)", "policies",
                       {"200": ok(obj({"policy": INT, "unassigned": STR,
                                       "rebuilt": STR_LIST}))},
                       body=json_body(obj({"channel": STR}, closed=True)),
                       operation_id="unassignPolicy"),
        },
        "/api/v1/policies/explain/{channel}/{filename}": {
            "parameters": [CHANNEL, path_param("filename", "File name, or subdir/file name")],
            "get": op("Which policy rules hide a file (channel managers)", "policies",
                      {"200": ok(obj({"channel": STR, "policy": {"type": ["object", "null"]},
                                      "files": array(obj({"subdir": STR, "filename": STR,
                                                          "hidden": BOOL,
                                                          "reasons": STR_LIST}))}))},
                      operation_id="explainPolicy"),
        },
    },
    "repoproxy_cve": {
        "/api/channels/{channel}/artifacts/conda/{name}/cves": {
            "parameters": [CHANNEL, PACKAGE],
            "get": op("CVEs that affect a package's files", "cve", {"200": ok(obj({
                "channel": STR, "name": STR, "cves": array(ref("Cve")),
                "files": string_map(STR_LIST)}))}, operation_id="packageCves"),
        },
        "/api/v1/cves": {
            "get": op("Every known CVE", "cve", {"200": ok(obj({"cves": array(ref("Cve"))}))},
                      operation_id="listCves"),
        },
        "/api/v1/cves/import": {
            "post": op("Import CVE data: one OSV record, a curated file, or a zip of OSV "
                       "records (admins)", "cve",
                       {"200": ok(obj({"records": INT, "new": INT, "updated": INT}))},
                       body={"required": True, "content": {"application/octet-stream": {
                           "schema": {"type": "string", "format": "binary"}}}},
                       operation_id="importCves"),
        },
        "/api/v1/cves/{id}": {
            "parameters": [path_param("id", "CVE id", "CVE-2024-0001")],
            "get": op("One CVE", "cve", {"200": ok(ref("Cve"))}, operation_id="getCve"),
            "patch": op("Set a CVE's curation status (admins)", "cve", {"200": ok(ref("Cve"))},
                        body=json_body(obj({"status": {"type": "string", "enum": [
                            "active", "reported", "mitigated", "cleared", "disputed",
                            "uncurated"]}}, closed=True)),
                        operation_id="patchCve"),
        },
        "/api/v1/cves/{id}/files": {
            "parameters": [path_param("id", "CVE id", "CVE-2024-0001")],
            "get": op("Files the CVE affects, in channels the caller may read", "cve",
                      {"200": ok(obj({"id": STR, "files": STR_LIST}))},
                      operation_id="cveFiles"),
        },
    },
    "repoproxy_mirror": {
        "/api/v1/mirrors": {
            "get": op("Mirrors (admins)", "mirrors",
                      {"200": ok(obj({"mirrors": array(ref("Mirror"))}))},
                      parameters=[query("channel", "Only the mirrors of this channel")],
                      operation_id="listMirrors"),
            "post": op("Create a mirror (admins)", "mirrors",
                       {"201": ok(ref("Mirror"), "Created")},
                       body=json_body(ref("MirrorBody")), operation_id="createMirror"),
        },
        "/api/v1/mirrors/{mirror}": {
            "parameters": [MIRROR],
            "get": op("One mirror: definition, state, last run, counts (admins)", "mirrors",
                      {"200": ok(ref("Mirror"))},
                      parameters=[query("channel", "The mirror's channel (checked if given)")],
                      operation_id="getMirror"),
            "patch": op("Change a mirror (admins)", "mirrors", {"200": ok(ref("Mirror"))},
                        body=json_body(ref("MirrorBody")), operation_id="patchMirror"),
            "delete": op("Delete a mirror (admins)", "mirrors",
                         {"200": ok(obj({"deleted": STR, "channel": STR}))},
                         parameters=[query("channel", "The mirror's channel",
                                           required=True)],
                         operation_id="deleteMirror"),
        },
        "/api/v1/mirrors/{mirror}/stop": {
            "parameters": [MIRROR],
            "post": op("Stop a mirror (a run in progress ends between two files)", "mirrors",
                       {"200": ok(ref("Mirror"))}, operation_id="stopMirror"),
        },
        "/api/v1/mirrors/{mirror}/restart": {
            "parameters": [MIRROR],
            "post": op("Restart a stopped mirror", "mirrors", {"200": ok(ref("Mirror"))},
                       operation_id="restartMirror"),
        },
        "/api/v1/mirrors/{mirror}/run": {
            "parameters": [MIRROR],
            "post": op("Ask for a run of an active mirror now", "mirrors",
                       {"200": ok(ref("Mirror"))}, operation_id="runMirror"),
        },
    },
    "repoproxy_watch": {
        "/api/v1/watch": {
            "get": op("The watch folder's status (admins)", "watch", {"200": ok(obj({
                "root": STR, "running": BOOL, "folders": array({"type": "object"}),
                "pending": INT, "processed": INT, "rejected": INT}))},
                operation_id="watchStatus"),
        },
    },
}

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "A repoproxy token: `Authorization: Bearer <token>`"},
    "basic": {"type": "http", "scheme": "basic",
              "description": "User and password, or user and token"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "A repoproxy token in the X-API-Key header"},
}


def document(plugins: set[str] | None = None, server_url: str | None = None
             ) -> dict[str, Any]:
    """The OpenAPI document; ``plugins``: names of the loaded plugins (None: all of them)."""
    paths = copy.deepcopy(CORE_PATHS)
    for plugin, plugin_paths in PLUGIN_PATHS.items():
        if plugins is None or plugin in plugins:
            for path, item in copy.deepcopy(plugin_paths).items():
                paths[path] = {**item, "x-repoproxy-plugin": plugin}
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "repoproxy",
            "version": __version__,
            "description": "JSON API of a self-hosted conda package server. The conda-facing "
                           "routes (`/<channel>/<subdir>/repodata.json` and package files) "
                           "are described in the README, not here.",
            "license": {"name": "BSD-3-Clause"},
        },
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "responses": {"Error": ERROR_RESPONSE},
            "securitySchemes": SECURITY_SCHEMES,
        },
        # anonymous access ({}) is allowed where the channel is public; otherwise any scheme
        "security": [{}, {"bearer": []}, {"basic": []}, {"apiKey": []}],
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def openapi_view(request: Any) -> dict[str, Any]:
    """``GET /api/openapi.json``: the document for the plugins this server has loaded."""
    # a blocked plugin's name stays in the manager, mapped to None
    loaded = {name for name, plugin in request.services.pm.list_name_plugin()
              if plugin is not None}
    return document(loaded, request.application_url)
