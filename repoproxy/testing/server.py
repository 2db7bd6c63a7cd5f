"""A real ``repoproxy serve`` on a free loopback port, for e2e tests and benchmarks.

Kept apart from :mod:`repoproxy.testing.fixtures` because it needs no pytest: bench/ scripts
run in environments without it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    def __init__(self, root: Path, port: int, log_path: Path, env: dict[str, str],
                 workers: int = 1) -> None:
        self.root, self.port, self.log_path, self.env = root, port, log_path, env
        self.workers = workers
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> RunningServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process until stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "repoproxy", "serve", "--root", str(self.root),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        # not left running: a caller that sees the error has no handle to stop it with
        self.proc.kill()
        self.proc.wait(timeout=20)
        self.proc = None
        raise RuntimeError("server did not start in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def token(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "repoproxy", "token", "create", "--root", str(self.root),
             *args], capture_output=True, text=True, check=True, env=self.env, timeout=60,
        )
        return out.stdout.strip()
