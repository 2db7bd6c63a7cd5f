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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: the conda index files the front serves from public channels (repoproxy's INDEX_FILES)
STATIC_INDEXES = (
    r"repodata\.json", r"repodata\.json\.zst", r"repodata_shards\.msgpack\.zst",
    r"run_exports\.json", r"run_exports\.json\.zst",
)
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
    indexes = "|".join(STATIC_INDEXES)
    index_cache = f"public, max-age={cfg.index_max_age}"
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

        # index files of public channels, straight from the tree (the link under public/
        # exists only while the channel is public); anything else falls back to repoproxy.
        # A missing file is nginx's 404 turned into repoproxy's answer (error_page): one
        # system call less per request than try_files, which stats before opening
        log_not_found off;
        # (a subdir's indexes, or the channel's channeldata.json)
        location ~ "^/[^/]+/(?:[^/]+/(?:{indexes})|channeldata\\.json)$" {{
            root {public};
            limit_except GET {{
                proxy_pass http://$repoproxy_upstream;
            }}
            gzip_static on;
            gzip_vary on;
            add_header Cache-Control "{index_cache}";
            error_page 404 = @repoproxy;
        }}
        location ~ "^/[^/]+/[^/]+/shards/[0-9a-f]{{64}}\\.msgpack\\.zst$" {{
            root {public};
            limit_except GET {{
                proxy_pass http://$repoproxy_upstream;
            }}
            add_header Cache-Control "public, max-age=31536000, immutable";
            error_page 404 = @repoproxy;
        }}
        # the same for public subchannels (/C/SUB/...), through their own links C+SUB (a
        # subchannel leaves the view before its removal commits, as a channel does)
        location ~ "^/([^/]+)/([^/]+)/((?:[^/]+/(?:{indexes})|channeldata\\.json))$" {{
            alias {public}/$1+$2/$3;
            limit_except GET {{
                proxy_pass http://$repoproxy_upstream;
            }}
            gzip_static on;
            gzip_vary on;
            add_header Cache-Control "{index_cache}";
            error_page 404 = @repoproxy;
        }}
        location ~ "^/([^/]+)/([^/]+)/([^/]+/shards/[0-9a-f]{{64}}\\.msgpack\\.zst)$" {{
            alias {public}/$1+$2/$3;
            limit_except GET {{
                proxy_pass http://$repoproxy_upstream;
            }}
            add_header Cache-Control "public, max-age=31536000, immutable";
            error_page 404 = @repoproxy;
        }}

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
