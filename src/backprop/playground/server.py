"""The playground's web server: the standard library's ``ThreadingHTTPServer``; the page
sends commands by POST and gets the newest frame in each answer, and pulls further frames
with ``GET /api/frame`` only while more are coming (docs/playground.md says why this stack).

Security, checked on every request before anything else:

- the server binds to 127.0.0.1 unless told otherwise;
- the random token printed in the URL must be in the query (``?token=``), compared in
  constant time;
- the ``Host`` header must name this server (``127.0.0.1:PORT``, ``localhost:PORT``): a page
  on another site that rebinds its DNS name to 127.0.0.1 is refused;
- an ``Origin`` header, when the browser sends one, must be this server's own;
- request bodies are bounded (:data:`MAX_BODY`), and so are sessions (:data:`MAX_SESSIONS`;
  the least recently used is closed for a new one) and open connections
  (:data:`MAX_CONNECTIONS`; one more is closed unanswered, and a connection that sends
  nothing for 30 s is closed);
- every response, the standard library's own error pages included, carries a
  Content-Security-Policy that lets the page load and fetch only from this server: no
  request leaves the machine.
"""

from __future__ import annotations

import hmac
import json
import secrets
import socket
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._validation import cut
from .session import CommandError, Session

__all__ = ["MAX_BODY", "MAX_CONNECTIONS", "MAX_SESSIONS", "PlaygroundServer", "make_server"]

MAX_BODY = 2 << 20  # bytes of a POST body (a dropped CSV file is at most 1 MiB of it)
MAX_SESSIONS = 8
# connections open at once, each a thread: a page uses 2 to 6 (a browser's limit per host);
# without a bound, connections that trickled a byte every 29 s (under the idle timeout) took
# a thread and a descriptor each until the process ran out
MAX_CONNECTIONS = 64
FRAME_WAIT_S = 5.0  # the longest a frame request waits while training runs
SESSION_GONE = (
    "this tab's session has ended (the playground keeps the {n} most recently used tabs, "
    "and forgets them when it restarts): reload the page to start again"
)
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class PlaygroundServer(ThreadingHTTPServer):
    """The HTTP server plus the playground's token, allowed hosts and sessions."""

    daemon_threads = True  # a waiting frame request never keeps the process alive
    allow_reuse_address = True

    def __init__(
        self, host: str, port: int, tutorial_start: dict[str, Any] | None = None, quiet: bool = True
    ) -> None:
        if ":" in host:  # an IPv6 address (::1): the server's socket is IPv4 unless told
            self.address_family = socket.AF_INET6
        super().__init__((host, port), PlaygroundHandler)
        self.token = secrets.token_urlsafe(24)
        self.tutorial_start = tutorial_start
        self.quiet = quiet
        self.port = self.server_address[1]
        names = {*LOOPBACK_NAMES, host if ":" not in host else f"[{host}]"}
        self.allowed_hosts = {f"{n}:{self.port}" for n in names}
        self.allowed_origins = {f"http://{h}" for h in self.allowed_hosts}
        self.sessions: dict[str, Session] = {}
        self.sessions_lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a thread of its own, or close it at once when
        :data:`MAX_CONNECTIONS` are open."""
        if not self.connections.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread was started: it would have given the slot back
            self.connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()

    @property
    def url(self) -> str:
        host = self.server_address[0]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/?token={self.token}"

    def new_session(self) -> Session:
        evicted = []
        with self.sessions_lock:
            while len(self.sessions) >= MAX_SESSIONS:
                oldest = min(self.sessions.values(), key=lambda s: s.last_seen)
                del self.sessions[oldest.sid]
                evicted.append(oldest)
            sid = secrets.token_urlsafe(12)
            session = Session(sid, self.tutorial_start)
            self.sessions[sid] = session
        for oldest in evicted:  # outside the lock: a close waits for its training thread
            oldest.close()  # (up to 5 s, during which every tab's request waited)
        return session

    def session(self, sid: str | None) -> Session | None:
        with self.sessions_lock:
            s = self.sessions.get(sid or "")
        if s is not None:
            s.last_seen = time.monotonic()
        return s

    def stop(self) -> None:
        """Close every session (waiting frame requests end) and stop serving."""
        self.stopping.set()
        with self.sessions_lock:
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for s in sessions:
            s.close()
        self.shutdown()


def _is_digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` takes ``'²'``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


class PlaygroundHandler(BaseHTTPRequestHandler):
    server: PlaygroundServer
    protocol_version = "HTTP/1.1"
    # a connection that sends nothing is closed after this long: connections left open
    # without a request (no token needed to open them) took every thread and descriptor
    timeout = 30
    # headers and body go out as two writes: with Nagle's algorithm the body waited for the
    # browser's delayed ACK, 40 ms a frame (train mode fell from 59 to 20 frames/s)
    disable_nagle_algorithm = True
    server_version = "backprop-playground"
    sys_version = ""
    # a request line the server cannot read (no version, HTTP/9.9, garbage) is answered as
    # HTTP/1.0, with headers: as HTTP/0.9 its error page went out bare, without the CSP
    default_request_version = "HTTP/1.0"

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # the page went away meanwhile
            self.close_connection = True

    # ---------------------------------------------------------------- checks
    def _refuse(self, status: HTTPStatus, why: str) -> None:
        # the connection ends with the refusal: a refused request's unread body (a cross-site
        # form's text/plain) was read as the next request on the connection
        self.close_connection = True
        self._send(status, "text/plain; charset=utf-8", f"{why}\n".encode())

    def _checked(self) -> dict[str, list[str]] | None:
        """The query, or None after refusing a request that fails a check (or, once the
        server is stopping, after closing the connection unanswered: a browser's keep-alive
        connection must not reach a stopped playground, whose sessions are gone)."""
        if self.server.stopping.is_set():
            self.close_connection = True
            return None
        host = self.headers.get("Host", "")
        if host not in self.server.allowed_hosts:
            self._refuse(HTTPStatus.FORBIDDEN, f"refused: Host {host!r} is not this playground")
            return None
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.allowed_origins:
            self._refuse(HTTPStatus.FORBIDDEN, f"refused: Origin {origin!r} is not this playground")
            return None
        if self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            self._refuse(HTTPStatus.FORBIDDEN, "refused: a request from another site")
            return None
        query = parse_qs(urlsplit(self.path).query)
        token = (query.get("token") or [""])[0]
        if not hmac.compare_digest(token.encode(), self.server.token.encode()):
            self._refuse(
                HTTPStatus.FORBIDDEN,
                "refused: this playground needs the token from the URL it printed at start",
            )
            return None
        return query

    # ---------------------------------------------------------------- responses
    def _send(self, status: HTTPStatus, ctype: str, body: bytes, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def end_headers(self) -> None:
        """Every response's security headers, then the blank line: here, so that the
        standard library's own error pages (501 for an unknown method, 414, 431, 400) have
        them too."""
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        super().end_headers()

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, "application/json", json.dumps(data).encode())

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        if not self.server.quiet:
            super().log_message(format, *args)

    # ---------------------------------------------------------------- GET
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        query = self._checked()
        if query is None:
            return
        path = urlsplit(self.path).path
        if path in STATIC:
            name, ctype = STATIC[path]
            body = _static(name)
            if name == "index.html":
                body = body.replace(b"__TOKEN__", self.server.token.encode())
            self._send(HTTPStatus.OK, ctype, body)
        elif path == "/api/frame":
            self._frame(query)
        elif path == "/api/export":
            session = self.server.session((query.get("session") or [""])[0])
            if session is None:
                self._gone()
                return
            try:
                name, ctype, body = session.export((query.get("what") or [""])[0])
            except CommandError as e:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
                return
            except Exception as e:
                self._internal_error(e)
                return
            self._send(
                HTTPStatus.OK,
                ctype,
                body,
                {"Content-Disposition": f'attachment; filename="{name}"'},
            )
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page {path!r}"})

    def _internal_error(self, e: Exception) -> None:
        """A command that failed in the server (a bug): said on the page, which goes on
        (the server has not stopped, as a dropped connection would have it read), and in
        the server's log with its traceback."""
        traceback.print_exc()
        text = cut(" ".join(str(e).split()), 200)
        why = f"internal error ({type(e).__name__}: {text}); please report it"
        self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": why})

    def _gone(self) -> None:
        self._json(HTTPStatus.NOT_FOUND, {"error": SESSION_GONE.format(n=MAX_SESSIONS)})

    def _with_frame(self, session: Session, head: dict[str, Any], frame: str | None) -> None:
        """``head`` plus ``"busy"`` (more frames are coming) and ``"frame"``: the frame's JSON
        goes in as the session made it, not parsed and dumped again."""
        head = {**head, "busy": session.busy()}
        text = json.dumps(head)[:-1] + f',"frame":{frame or "null"}}}'
        self._send(HTTPStatus.OK, "application/json", text.encode())

    def _frame(self, query: dict[str, list[str]]) -> None:
        """``?after=n&wait=1``: frame n is drawn; the newest frame if newer, waiting for one
        up to FRAME_WAIT_S while the session is busy (``wait=1``), else ``"frame": null``."""
        session = self.server.session((query.get("session") or [""])[0])
        if session is None:
            self._gone()
            return
        after = (query.get("after") or ["0"])[0]
        if not _is_digits(after) or len(after) > 12:
            error = f"after must be a frame number; got {cut(after, 20)!r}"
            self._json(HTTPStatus.BAD_REQUEST, {"error": error})
            return
        wait = FRAME_WAIT_S if (query.get("wait") or ["0"])[0] == "1" else 0.0
        got = session.frame_after(int(after), wait)
        if self.server.stopping.is_set():  # woken by the stop: no answer, as _checked does,
            self.close_connection = True  # so the page says at once that the server stopped
            return
        if session.closed:  # closed while waiting: the least recently used of too many tabs
            self._gone()
            return
        self._with_frame(session, {}, got[1] if got else None)

    # ---------------------------------------------------------------- POST
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        query = self._checked()
        if query is None:
            return
        length = self.headers.get("Content-Length")
        # ASCII digits, and few: '²' passes isdigit() and int() refused it; 5000 zeros
        # passed both checks and int() refused them (each a traceback, a dropped connection)
        if length is None or not _is_digits(length) or len(length) > 12:
            error = "a POST needs a Content-Length" + ("" if length is None else " of digits")
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": error})
            self.close_connection = True
            return
        if int(length) > MAX_BODY:
            self._json(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                {"error": f"a request body may hold at most {MAX_BODY} bytes; got {length}"},
            )
            self.close_connection = True  # the unread body must not be taken for a request
            return
        raw = self.rfile.read(int(length))
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send application/json"})
            return
        try:
            msg = json.loads(raw or b"{}")
        except RecursionError:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "the body is JSON nested too deeply"})
            return
        except ValueError as e:  # JSONDecodeError, bad UTF-8, an integer beyond int's digits
            self._json(
                HTTPStatus.BAD_REQUEST, {"error": f"the body is not JSON: {cut(str(e), 200)}"}
            )
            return
        path = urlsplit(self.path).path
        if path == "/api/session":
            session = self.server.new_session()
            head: dict[str, Any] = {"session": session.sid}
            if isinstance(msg, dict) and msg.get("setup") is not None:
                try:
                    session.command({"op": "setup", "setup": msg["setup"]})
                except CommandError as e:
                    head["error"] = str(e)  # in train mode, beside the run it did not replace
                    setup = msg["setup"]
                    if isinstance(setup, dict) and setup.get("mode") == "train":
                        session.command({"op": "mode", "mode": "train"})
                except Exception as e:
                    self._internal_error(e)
                    return
            self._with_frame(session, head, session.latest()[1])
        elif path == "/api/command":
            session = self.server.session((query.get("session") or [""])[0])
            if session is None:
                self._gone()
                return
            try:
                session.command(msg)
            except CommandError as e:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
                return
            except Exception as e:
                self._internal_error(e)
                return
            self._with_frame(session, {"ok": True}, session.latest()[1])
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such command path {path!r}"})


def make_server(
    host: str = "127.0.0.1",
    port: int = 0,
    tutorial_start: dict[str, Any] | None = None,
    quiet: bool = True,
) -> PlaygroundServer:
    """A playground server bound to ``host:port`` (port 0: any free port); call
    ``serve_forever()`` on it, and ``stop()`` to end it."""
    return PlaygroundServer(host, port, tutorial_start, quiet)
