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

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            _as_postgres(["exec", str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
                          "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
                          ">>", str(log), "2>&1"]),
            start_new_session=True,
        )

    server = start()
    current = {"server": server}

    def restart(down_s: float = 3.0) -> None:
        """Stop the database (fast shutdown: clients are disconnected), wait, start it again on the
        same port and data: what a restart for an upgrade or a failover looks like to clients."""
        os.killpg(current["server"].pid, signal.SIGINT)
        current["server"].wait(timeout=60)
        time.sleep(down_s)
        current["server"] = start()
        wait_for(lambda: connect().close() or True, "PostgreSQL after restart")

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
               "pid": server.pid, "restart": restart}
    finally:
        stop_process(current["server"].pid)
        shutil.rmtree(root, ignore_errors=True)


class MlflowServer:
    """`mlflow server` with proxied artifacts under `root/artifacts`, on a fixed port, that can be
    stopped and started again (same port, backend store and artifact directory)."""

    def __init__(self, backend_store_uri: str, root: Path, port: int | None = None):
        self.backend_store_uri = backend_store_uri
        self.root = root
        self.artifacts = root / "artifacts"
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> str:
        self._log = open(self.root / "server.log", "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.backend_store_uri,
             "--artifacts-destination", str(self.artifacts), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "2"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root,
            env={**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]},
        )
        try:
            wait_for(lambda: urllib.request.urlopen(f"{self.uri}/health", timeout=2).status == 200,
                     "mlflow server", timeout=120)
        except TimeoutError:
            raise TimeoutError((self.root / "server.log").read_text()[-3000:]) from None
        return self.uri

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process.pid)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str) -> Iterator[str]:
    """`mlflow server` with proxied artifacts in a temp dir; yields its http:// URI."""
    with running_mlflow_server(backend_store_uri) as server:
        yield server.uri


@contextlib.contextmanager
def running_mlflow_server(backend_store_uri: str) -> Iterator[MlflowServer]:
    """Like `mlflow_server`, yielding the MlflowServer (its artifact directory, stop/start)."""
    server = MlflowServer(backend_store_uri, Path(tempfile.mkdtemp(prefix="tabtune-server-")))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def create_database(cluster: dict, name: str) -> str:
    """A new database on the session's PostgreSQL cluster; its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(host=cluster["host"], port=cluster["port"], user="postgres", dbname="postgres",
                         autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER tabtune')
    return cluster["url"](name)


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
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True,
                 "git daemon")
        yield f"git://127.0.0.1:{port}"
    finally:
        stop_process(daemon.pid)


@contextlib.contextmanager
def smart_http(base_path: Path, user: str, password: str) -> Iterator[str]:
    """git's smart HTTP protocol (`git http-backend` as CGI) behind basic auth, in a thread;
    yields host:port. Clients must send `user:password`, as a URL carrying them does."""
    import base64
    import http.server
    import threading

    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self._cgi()

        def do_POST(self):
            self._cgi()

        def _cgi(self):
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="tabtune"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            env = {**os.environ, "GIT_PROJECT_ROOT": str(base_path), "GIT_HTTP_EXPORT_ALL": "1",
                   "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "REMOTE_USER": user,
                   "CONTENT_LENGTH": str(length), "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
            body = self.rfile.read(length) if length else b""
            if self.headers.get("Content-Encoding") == "gzip":
                import gzip

                body = gzip.decompress(body)
                env["CONTENT_LENGTH"] = str(len(body))
            output = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            head, _, payload = output.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().split("\r\n"):
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers.append((key, value.strip()))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
