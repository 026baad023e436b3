"""Free TCP ports picked at run time, so tests and demos can run beside another stack.

In the core, not in the dev stack, because the simulators (a tier) pick ports for their Modbus
servers too, and a tier must not import the application layer above it."""

from __future__ import annotations

import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def reuse_or_pick(port: int | None, host: str = "127.0.0.1") -> int:
    """Keep a remembered port when it is still free (stable URLs across runs), else pick another."""
    return port if port and port_is_free(port, host) else free_port(host)
