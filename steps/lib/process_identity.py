"""This process as recorded on what it runs (an Optuna trial, a trial's child run): host and
pid, so that after a crash another process on the same host can tell the worker is gone."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Worker:
    """This process, as recorded on each trial it runs (host and pid identify it after a crash)."""

    host: str
    pid: int

    @classmethod
    def this(cls) -> Worker:
        return cls(socket.gethostname(), os.getpid())

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"

    @classmethod
    def parse(cls, text: str) -> Worker | None:
        host, _, pid = str(text).rpartition(":")
        return cls(host, int(pid)) if host and pid.isdigit() else None

    def is_dead_here(self) -> bool:
        """True only when the worker ran on this host and its process is gone."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
