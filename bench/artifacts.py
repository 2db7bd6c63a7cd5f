"""Generic artifacts: upload and download throughput of one file through a real
``repoproxy serve``, beside a plain local file copy of the same bytes (the disk's own speed).

Prints medians over --repeat rounds (MiB/s) and the ratio ours/copy (1.0 = as fast as
copying the file on this disk; the server also hashes, fsyncs and sends it over loopback).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import requests
from _common import clean_env, fmt_ratio, median, timed

from repoproxy.testing.server import RunningServer, free_port


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "blob.bin"
        data.write_bytes(os.urandom(args.mib * 1024 * 1024))
        sha = hashlib.sha256(data.read_bytes()).hexdigest()
        srv = RunningServer(tmp / "root", free_port(), tmp / "server.log", clean_env()).start()
        try:
            token = srv.token("--admin", "--name", "bench")
            auth = {"Authorization": f"Bearer {token}"}
            requests.post(f"{srv.url}/api/v1/channels", json={"name": "b"}, headers=auth,
                          timeout=60).raise_for_status()
            url = f"{srv.url}/api/channels/b/artifacts/gra/blob/1/blob.bin"

            def upload() -> None:
                with open(data, "rb") as f:
                    requests.post(url + "?force=true", data=f, timeout=600, headers={
                        **auth, "X-File-SHA256": sha,
                        "Content-Type": "application/octet-stream"}).raise_for_status()

            def download() -> None:
                with requests.get(url, headers=auth, stream=True, timeout=600) as r, \
                        open(tmp / "out.bin", "wb") as out:
                    r.raise_for_status()
                    for chunk in r.iter_content(1024 * 1024):
                        out.write(chunk)

            def copy() -> None:
                shutil.copyfile(data, tmp / "copy.bin")
                with open(tmp / "copy.bin", "rb+") as f:
                    os.fsync(f.fileno())

            rates: dict[str, float] = {}
            for name, func in (("copy", copy), ("upload", upload), ("download", download)):
                rates[name] = args.mib / median([timed(func) for _ in range(args.repeat)])
            assert (tmp / "out.bin").read_bytes() == data.read_bytes()
        finally:
            srv.stop()
    print(f"{args.mib} MiB, median of {args.repeat} rounds")
    for name in ("copy", "upload", "download"):
        ratio = "" if name == "copy" else "  " + fmt_ratio(rates[name], rates["copy"], True)
        print(f"  {name:<9} {rates[name]:8.1f} MiB/s{ratio}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
