"""`artreg server` as a user runs it: a subprocess on a free port, over a data folder of its own. Used by
the end-to-end tests and the benchmarks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ARTREG = str(Path(sys.executable).parent / "artreg")


@dataclass
class RunningServer:
    data: Path
    process: subprocess.Popen[str] | None = None
    url: str = ""
    port: int = 0
    env: dict[str, str] = field(default_factory=lambda: {**os.environ, "ARTREG_PROGRESS": "0"})
    command: list[str] = field(default_factory=lambda: [ARTREG])  # what runs `artreg`
    args: list[str] = field(default_factory=list)  # more options of `artreg server`

    def start(self) -> None:
        """Starts (or restarts, on the same port and data) and waits for its `serving` line."""
        self.process = subprocess.Popen(
            [
                *self.command,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data",
                str(self.data),
                *self.args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "artreg server exited before serving"
        self.url = json.loads(line)["url"]
        # the port it was given, kept for restarts: the URL names --public-url's port when one is given
        self.port = self.port or int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        """kill -9: no shutdown, no flush."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
