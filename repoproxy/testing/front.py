"""A real nginx running the front of ``repoproxy nginx-conf`` on a free loopback port, for
e2e tests and bench/front.py (no pytest needed)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

#: the internal location the tests and benchmarks use (web/front.py DEFAULT_ACCEL)
ACCEL = "/-/accel/"


def env_without_settings(**extra: str) -> dict[str, str]:
    """This process's environment without REPOPROXY_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    env.update(extra)
    return env


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def nginx_conf(root: Path, upstreams: list[str], listen: str, env: dict[str, str],
               writer: str | None = None, *extra: str) -> str:
    """The configuration exactly as the command prints it."""
    args = [sys.executable, "-m", "repoproxy", "nginx-conf", "--root", str(root),
            "--listen", listen, *extra]
    for upstream in upstreams:
        args += ["--upstream", upstream]
    if writer:
        args += ["--writer", writer]
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"nginx-conf failed: {out.stderr}")
    return out.stdout


class RunningNginx:
    """``nginx -p PREFIX -c FILE -e stderr`` in the foreground (the conf says daemon off)."""

    def __init__(self, conf: str, prefix: Path, port: int) -> None:
        self.conf, self.prefix, self.port = conf, prefix, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.prefix / "nginx.log"

    def start(self, timeout: float = 20) -> RunningNginx:
        if NGINX is None:
            raise RuntimeError("nginx is not installed")
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.conf)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process until stop()
        self.proc = subprocess.Popen([NGINX, "-p", str(self.prefix), "-c", str(conf),
                                      "-e", "stderr"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start in time")

    def stop(self, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code
