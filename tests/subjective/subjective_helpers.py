"""Helpers of the subjective tests: the crop size, and the server run as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "openjai" / "data" / "sample.png"
CROP = (160, 128)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``openjai subjective serve|view`` as a subprocess on a free port; kill() is a SIGKILL."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args, self.log = args, log
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_path: str = "/api/session") -> "Server":
        env = dict(os.environ, OMP_NUM_THREADS="1")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "openjai", "subjective", *self.args,
                                          "--port", str(self.port)], stdout=log, stderr=log, env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start within 60 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None
