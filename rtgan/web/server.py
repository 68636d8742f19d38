"""Running the studio's app under uvicorn: on the command line, and in a thread (tests, benchmarks, demos).

The socket is bound here, before uvicorn starts, so a port in use is one clear error, port 0 picks
a free one, and the URL printed is the one that answers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time

import uvicorn

from ..errors import ConfigError

GRACE_SECONDS = 3  # Ctrl-C: connections get this long to finish before their tasks are cancelled


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        problem = e.strerror or e
        raise ConfigError(f"cannot listen on {host}:{port} ({problem}); choose another --port or --host") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{host}:{port}/"


def server(app, max_message: int, log_level: str = "info") -> uvicorn.Server:
    # uvicorn closes a connection (1009) on a message above ws_max_size; up to twice the studio's own
    # limit the studio answers instead, with a JSON error, and the connection stays open
    config = uvicorn.Config(app, ws_max_size=2 * max_message, ws_per_message_deflate=False,
                            timeout_graceful_shutdown=GRACE_SECONDS,
                            log_level=log_level, access_log=False)  # fmt: skip
    return uvicorn.Server(config)


class BackgroundServer:
    """`with BackgroundServer(app) as url:` the app served on a free localhost port in a thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        self.sock = bind(host, port)
        self.url = url(self.sock)
        self.server = server(app, app.state.studio.max_message, log_level)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started and self.thread.is_alive():  # startup takes milliseconds
            time.sleep(0.01)
        if not self.server.started:
            raise ConfigError(f"the studio did not start on {self.url}")
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=GRACE_SECONDS + 5)
        self.sock.close()
