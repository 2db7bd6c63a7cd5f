"""The nginx front: a complete nginx.conf for ``nginx -p PREFIX -c FILE -e stderr``.

What nginx does by itself, and why it is safe (README "Production"):

- **index files and shards of public channels and subchannels** (``repodata.json`` and its
  ``.zst``/``.gz`` twins, the shard index, shards, ``run_exports.json``, ``channeldata.json``)
  straight from the tree, through ``<root>/public/<channel>`` (``<channel>+<sub>`` for
  ``/<channel>/<sub>/...``): that link exists only while the channel is public
  (storage/public.py keeps it in step with privacy changes, in order). Anything the link
  does not lead to (a private channel, an absent channel or file, a noarch index not
  built yet) falls back to repoproxy (``error_page 404 = @repoproxy``), which answers as
  without the front. Index files never list policy-hidden packages, and package files are
  never served from these locations;
- **package bytes** after repoproxy decided (access, hidden set, existence, the download
  count) and answered ``X-Accel-Redirect`` into the ``internal`` location (web/accel.py);
- **everything else** (private indexes, the API, uploads, pages) proxied to repoproxy.

Validators agree because repoproxy computes nginx's ETag (web/files.py ``stat_etag``) and
nginx is told to answer ``If-Modified-Since`` as WebOb does (``if_modified_since before``).

Speed: a static answer costs nginx what plain static serving costs (``_static_locations``):
no ``.gz`` looked for beside files that have no twin, ``Vary`` written rather than found out,
the location regexes JIT-compiled. There is no ``open_file_cache``: a cached descriptor would
go on serving a channel's indexes for up to ``open_file_cache_valid`` after the channel turned
private, whereas removing its link under public/ stops that at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: the conda index files the front serves from public channels (repoproxy's INDEX_FILES):
#: those with a gzip twin (web/files.py GZIP_TWINS; channeldata.json is the channel's own)...
TWIN_INDEXES = (r"repodata\.json", r"run_exports\.json")
#: ...and those without one, for which nginx must not look for a .gz at all
PLAIN_INDEXES = (r"repodata\.json\.zst", r"repodata_shards\.msgpack\.zst",
                 r"run_exports\.json\.zst")
STATIC_INDEXES = TWIN_INDEXES + PLAIN_INDEXES
#: the default internal location: '-' cannot start a channel name, so no channel is shadowed
DEFAULT_ACCEL = "/-/accel/"


@dataclass
class FrontConfig:
    root: Path
    listen: str
    readers: list[str]
    writer: str | None = None
    accel: str = DEFAULT_ACCEL
    index_max_age: int = 60
    max_upload_size: int = 1024**3
    user: str | None = None
    access_log: str | None = None
    worker_processes: str = "auto"
    extra: list[str] = field(default_factory=list)


def render(cfg: FrontConfig) -> str:
    root = Path(cfg.root).resolve()
    public = root / "public"
    channels = root / "channels"
    accel = "/" + cfg.accel.strip("/") + "/"
    writer = cfg.writer or cfg.readers[0]
    readers = "\n".join(f"        server {r};" for r in cfg.readers)
    user = f"user {cfg.user};\n" if cfg.user else ""
    access = f"access_log {cfg.access_log};" if cfg.access_log else "access_log off;"
    index_cache = f"public, max-age={cfg.index_max_age}"
    static = _static_locations(public, index_cache)
    extra = "".join(f"        {line}\n" for line in cfg.extra)
    return f"""\
# nginx front for repoproxy, written by `repoproxy nginx-conf` for the tree {root}
# run:  nginx -p PREFIX -c THIS_FILE -e stderr   (PREFIX: a writable directory for the pid
#       and temporary files); repoproxy behind it needs repoproxy.accel_redirect = {accel}
# When nginx starts as root its workers run as `user` below, who must be able to read the tree.
{user}daemon off;
worker_processes {cfg.worker_processes};
pid nginx.pid;
error_log stderr warn;
# the static locations below are regular expressions, matched on every request
pcre_jit on;

events {{
    worker_connections 4096;
}}

http {{
    types {{
        application/json json;
        application/zstd zst;
        application/x-bzip2 bz2;
        application/octet-stream conda;
    }}
    default_type application/octet-stream;
    {access}
    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;
    sendfile on;
    tcp_nopush on;
    server_tokens off;
    keepalive_requests 100000;
    # validators as repoproxy (WebOb) decides them: If-Modified-Since at or after the file's
    # mtime is a 304; ETags are mtime seconds + size on both sides (web/files.py stat_etag)
    if_modified_since before;
    etag on;
    # uploads stream to repoproxy, which refuses a bad one on its headers (no body buffered)
    client_max_body_size {cfg.max_upload_size};
    proxy_request_buffering off;
    proxy_http_version 1.1;
    proxy_read_timeout 300s;
    proxy_send_timeout 300s;

    # reads go to every reader, writes to the writer (one process owns writes and background
    # work; all of them share the tree and the catalog)
    upstream repoproxy_read {{
{readers}
        keepalive 64;
    }}
    upstream repoproxy_write {{
        server {writer};
        keepalive 16;
    }}
    map $request_method $repoproxy_upstream {{
        GET repoproxy_read;
        HEAD repoproxy_read;
        default repoproxy_write;
    }}

    server {{
        listen {cfg.listen};

        proxy_set_header Host $http_host;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;

        location / {{
            proxy_pass http://$repoproxy_upstream;
        }}
        location @repoproxy {{
            proxy_pass http://$repoproxy_upstream;
        }}
        # metrics are readable from loopback, and every request through the front comes
        # from loopback: scrape repoproxy itself, not through the front
        location = /-/metrics {{
            return 404;
        }}

{static}
        # package bytes, only after repoproxy answered X-Accel-Redirect (web/accel.py)
        location ^~ {accel} {{
            internal;
            alias {channels}/;
            # asked from outside (or a file gone since): repoproxy's own 404
            error_page 404 = @repoproxy;
            add_header Cache-Control $upstream_http_x_repoproxy_cache_control;
        }}
{extra}    }}
}}
"""


def _static_locations(public: Path, index_cache: str) -> str:
    """Index files and shards of public channels and subchannels, straight from the tree.

    The link under public/ exists only while the channel is public; anything else falls back
    to repoproxy. A missing file is nginx's 404 turned into repoproxy's answer (error_page):
    one system call less per request than try_files, which stats before opening. Only the
    files with a gzip twin look for one (``gzip_static``), and their ``Vary`` is a fixed
    header, as repoproxy sends it, not ``gzip_vary``, which opens the .gz of every request to
    decide it: for the other files, and for clients that do not take gzip, nginx makes the
    same system calls as it does serving a plain static file.
    """
    twins, plain = "|".join(TWIN_INDEXES), "|".join(PLAIN_INDEXES)
    shard = r"shards/[0-9a-f]{64}\.msgpack\.zst"
    kinds = (
        # (a subdir's twin indexes, or the channel's channeldata.json)
        (rf"(?:[^/]+/(?:{twins})|channeldata\.json)",
         f'gzip_static on;\n            add_header Vary Accept-Encoding;\n'
         f'            add_header Cache-Control "{index_cache}";'),
        (rf"[^/]+/(?:{plain})", f'add_header Cache-Control "{index_cache}";'),
        (rf"[^/]+/{shard}", 'add_header Cache-Control "public, max-age=31536000, immutable";'),
    )
    out = ["        log_not_found off;"]
    for scope, prefix, target in (
            ("channels", "^/[^/]+/", f"root {public};"),
            # public subchannels (/C/SUB/...), through their own links C+SUB (a subchannel
            # leaves the view before its removal commits, as a channel does)
            ("subchannels", "^/([^/]+)/([^/]+)/", f"alias {public}/$1+$2/$3;")):
        out.append(f"        # index files and shards of public {scope}")
        for pattern, headers in kinds:
            path = pattern if scope == "channels" else f"({pattern})"
            out.append(f'''        location ~ "{prefix}{path}$" {{
            {target}
            limit_except GET {{
                proxy_pass http://$repoproxy_upstream;
            }}
            {headers}
            error_page 404 = @repoproxy;
        }}''')
    return "\n".join(out)
