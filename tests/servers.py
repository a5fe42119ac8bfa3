"""Real services on loopback for the tests: PostgreSQL 15, `mlflow server`, `git daemon`, and a
static HTTP server (git's dumb HTTP protocol). Each starts in a temporary directory and is stopped
by process ID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PG_BIN = next((Path(p) for p in ("/usr/lib/postgresql/15/bin",) if Path(p, "initdb").exists()),
              Path(shutil.which("initdb") or "/usr/bin/initdb").parent)
POSTGRES_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f}s")


def stop_process(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            time.sleep(0.1)


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` system user."""
    if os.geteuid() != 0:
        return command
    return ["su", POSTGRES_USER, "-s", "/bin/sh", "-c", " ".join(command)]


@contextlib.contextmanager
def postgres() -> Iterator[dict]:
    """A fresh PostgreSQL cluster on 127.0.0.1 with a database `mlflow` and a password-carrying
    role `tabtune` (password 's3cret-pw'); yields connection facts."""
    root = Path(tempfile.mkdtemp(prefix="tabtune-pg-", dir="/tmp"))
    data = root / "data"
    port = free_port()
    if os.geteuid() == 0:
        shutil.chown(root, POSTGRES_USER)
    root.chmod(0o755)
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True)
    log = root / "postgres.log"
    server = subprocess.Popen(
        _as_postgres(["exec", str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
                      "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
                      ">", str(log), "2>&1"]),
        start_new_session=True,
    )
    try:
        import psycopg

        def connect(dbname="postgres"):
            return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname,
                                   autocommit=True, connect_timeout=2)

        wait_for(lambda: connect().close() or True, "PostgreSQL")
        with connect() as conn:
            conn.execute("CREATE ROLE tabtune LOGIN PASSWORD 's3cret-pw' SUPERUSER")
            conn.execute("CREATE DATABASE mlflow OWNER tabtune")
            conn.execute("CREATE DATABASE optuna OWNER tabtune")
        yield {"host": "127.0.0.1", "port": port, "user": "tabtune", "password": "s3cret-pw",
               "url": lambda db: f"postgresql+psycopg://tabtune:s3cret-pw@127.0.0.1:{port}/{db}",
               "pid": server.pid}
    finally:
        stop_process(server.pid)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str) -> Iterator[str]:
    """`mlflow server` with proxied artifacts in a temp dir; yields its http:// URI."""
    root = Path(tempfile.mkdtemp(prefix="tabtune-server-"))
    port = free_port()
    log = open(root / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "2"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
        env={**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]},
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for(lambda: urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200,
                     "mlflow server", timeout=120)
        except TimeoutError:
            raise TimeoutError((root / "server.log").read_text()[-3000:]) from None
        yield uri
    finally:
        stop_process(server.pid)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def bare_clone(project_dir: Path, root: Path, name: str = "tabtune.git") -> tuple[Path, str]:
    """A bare clone of the project's committed HEAD; returns its path and commit."""
    target = root / name
    subprocess.run(["git", "clone", "--bare", "--quiet", str(project_dir), str(target)], check=True)
    commit = subprocess.run(["git", "-C", str(target), "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    return target, commit


@contextlib.contextmanager
def git_daemon(base_path: Path) -> Iterator[str]:
    """`git daemon` serving every repository under base_path; yields git://127.0.0.1:<port>."""
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base_path}", "--listen=127.0.0.1",
         f"--port={port}", str(base_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True, "git daemon")
        yield f"git://127.0.0.1:{port}"
    finally:
        stop_process(daemon.pid)


@contextlib.contextmanager
def dumb_http(base_path: Path) -> Iterator[str]:
    """A static file server over base_path: enough for git's dumb HTTP protocol."""
    for repo in base_path.glob("*.git"):
        subprocess.run(["git", "-C", str(repo), "update-server-info"], check=True)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(base_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).status == 200,
                 "static HTTP server")
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(server.pid)
