"""Real processes for the reliability checks: gunicorn serving the app on loopback, a TCP
proxy that can cut the app off from PostgreSQL, and a small HTTP client that signs in.

Everything listens on 127.0.0.1 on free ports. The gunicorn process is started in its own
process group and always killed as a group (``GunicornServer.stop``).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PASSWORD, csrf_from, free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def server_environment(database_url: str, **extra: str) -> dict[str, str]:
    """The environment gunicorn runs the app with.

    The development configuration (``ESCALATE_ENV=development``) is used on purpose: the
    production one marks cookies Secure, which a plain-http client on loopback would never
    send back. Login throttling is off: fifty users signing in from 127.0.0.1 are not an
    attack. No scheduler runs in the web workers.
    """
    env = dict(os.environ)
    env.update(
        ESCALATE_ENV="development",
        DATABASE_URL=database_url,
        SECRET_KEY="reliability-tests-secret-key-0123456789abcdef",
        SCHEDULER_MODE="off",
        RATELIMIT_ENABLED="false",
        MAIL_SERVER="",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class GunicornServer:
    """``gunicorn -w N wsgi:app`` on a free loopback port, stopped as a process group.

    ``app_module`` and ``ready_path`` serve another WSGI app the same way (the benchmarks'
    minimal Flask page)."""

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 2,
        log_dir: Path,
        options: tuple[str, ...] = (),
        app_module: str = "wsgi:app",
        ready_path: str = "/auth/login",
        **env: str,
    ):
        self.port = free_port()
        self.workers = workers
        self.options = options
        self.app_module = app_module
        self.ready_path = ready_path
        self.log_path = log_dir / f"gunicorn-{self.port}.log"
        self._env = server_environment(database_url, **env)
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> GunicornServer:
        """Start gunicorn and wait until every worker answers (polling the sign-in page)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                GUNICORN,
                "-w",
                str(self.workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "60",
                "--graceful-timeout",
                "2",
                *self.options,
                self.app_module,
            ],
            cwd=ROOT,
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll until the app answers and all workers have booted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early; see {self.log_path}:\n{self.log()}")
            if len(self.worker_pids()) >= self.workers:
                try:
                    ready = self.base_url + self.ready_path  # always http on loopback
                    with urllib.request.urlopen(ready, timeout=5) as r:  # noqa: S310
                        if r.status == 200:
                            return
                except (OSError, urllib.error.URLError):
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not become ready in {timeout}s:\n{self.log()}")

    def worker_pids(self) -> list[int]:
        """The pids of the master's worker processes right now."""
        if self.process is None:
            return []
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            pids = [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []
        return [pid for pid in pids if _alive(pid)]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Kill the whole process group (master and workers) at once."""
        if self.process is None or self.process.poll() is not None:
            return
        # Nothing to shut down gracefully: the test has read what it needed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


class TcpProxy:
    """A TCP proxy on loopback (after psycopg's ``tests/fix_proxy.py``) that can be cut.

    ``cut()`` resets every open connection and refuses new ones (Toxiproxy's
    ``reset_peer``); ``restore()`` accepts and forwards again. The target never notices.
    """

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._open = threading.Event()
        self._open.set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._open.is_set():
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.5)
                if not self._open.is_set() or self._stopping.is_set():
                    break
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(a)
                self._sockets.discard(b)
            _reset(a)
            _reset(b)

    def cut(self) -> None:
        """Reset every connection through the proxy and refuse new ones."""
        self._open.clear()
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            _reset(sock)

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._stopping.set()
        self.cut()
        self._listener.close()
        self._thread.join(timeout=5)


def _alive(pid: int) -> bool:
    """False for a process that has exited (a zombie not yet reaped by the master)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN, as a dropped network path looks to the peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class Reply:
    """What came back: status, body text and the Location header of a redirect."""

    status: int
    text: str
    location: str = ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class WebClient:
    """A browser-like client for one person: its own cookies, CSRF tokens read from forms,
    redirects not followed (a 302 is the app's acknowledgement of a write)."""

    def __init__(self, base_url: str, timeout: float = 60.0):
        self.base_url = base_url
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect()
        )

    def request(self, method: str, path: str, data: dict | None = None, **kw) -> Reply:
        body = None
        headers = {}
        if data is not None:
            body = urllib.parse.urlencode(data, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if "files" in kw:
            body, content_type = _multipart(data or {}, kw["files"])
            headers["Content-Type"] = content_type
        req = urllib.request.Request(  # noqa: S310 - http on loopback only
            self.base_url + path, data=body, method=method, headers=headers
        )
        try:
            with self._opener.open(req, timeout=self.timeout) as response:
                return Reply(response.status, response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            return Reply(error.code, text, error.headers.get("Location", ""))

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, data: dict | None = None, **kw) -> Reply:
        return self.request("POST", path, data or {}, **kw)

    def form_token(self, path: str) -> str:
        page = self.get(path)
        assert page.status == 200, (path, page.status, page.text[:500])
        return csrf_from(page.text)

    def sign_in(self, email: str, password: str = PASSWORD) -> WebClient:
        token = self.form_token("/auth/login")
        reply = self.post(
            "/auth/login", {"email": email, "password": password, "csrf_token": token}
        )
        assert reply.status == 302, (reply.status, reply.text[:500])
        return self


def _multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = "----escalate-reliability-boundary"
    lines: list[bytes] = []
    for name, value in fields.items():
        lines += [
            f"--{boundary}".encode(),
            f'Content-Disposition: form-data; name="{name}"'.encode(),
            b"",
            str(value).encode(),
        ]
    for name, (filename, content) in files.items():
        lines += [
            f"--{boundary}".encode(),
            f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'.encode(),
            b"Content-Type: application/octet-stream",
            b"",
            content,
        ]
    lines += [f"--{boundary}--".encode(), b""]
    return b"\r\n".join(lines), f"multipart/form-data; boundary={boundary}"
