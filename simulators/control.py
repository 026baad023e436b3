"""A small local HTTP/JSON control endpoint for a running simulator (documented in docs/simulators.md).

Routes::

    GET    /health                      {"ok": true, "sim_time_ms": …, "speed": …}
    GET    /devices                     the inventory
    GET    /devices/{id}                current decoded values of one device
    GET    /faults                      active faults and the faults each device kind accepts
    POST   /faults                      {"device", "fault", "duration_s"?, "params"?} → {"id"}
    DELETE /faults/{id}                 end an active fault now

It is deliberately tiny (asyncio streams, HTTP/1.1, one request per connection, JSON only, bound to
the simulator's host — loopback by default): a user drives it with ``curl``, tests with ``httpx``.
Using a web framework here would drag a server with its own signal handling into the simulator's
event loop for six routes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

import orjson

from simulators.clock import SimClock
from simulators.errors import SimulatorError
from simulators.faults import ActiveFault
from simulators.mqtt_devices import GatePublisher
from simulators.physics import COMM_FAULTS, FAULTS_BY_KIND

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
READ_TIMEOUT_S = 10.0
REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           413: "Payload Too Large", 500: "Internal Server Error"}


class ControlledFleet(Protocol):
    """What the endpoint needs of a running fleet (:class:`simulators.runner.SimulatedFleet`).

    A protocol, not an import of the runner: the runner starts this endpoint, so importing it back
    would make the two modules a cycle (the import-linter ``acyclic_siblings`` contract forbids it)."""

    clock: SimClock

    @property
    def devices(self) -> Mapping[str, object]: ...

    @property
    def active(self) -> Mapping[int, ActiveFault]: ...

    @property
    def publisher(self) -> GatePublisher | None: ...

    @property
    def modbus_requests(self) -> int: ...

    @property
    def inventory(self) -> Any: ...

    def values(self, device: str) -> dict[str, Any]: ...

    def inject(self, device: str, fault: str, duration_s: float | None = None,
               params: Mapping[str, Any] | None = None) -> int: ...

    def clear(self, fault_id: int) -> None: ...


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _route(fleet: ControlledFleet, method: str, path: str, body: bytes) -> tuple[int, Any]:
    parts = [p for p in path.split("?", maxsplit=1)[0].split("/") if p]
    if parts == ["health"] and method == "GET":
        return 200, {"ok": True, "sim_time_ms": int(fleet.clock.now() * 1000), "speed": fleet.clock.speed,
                     "wall_time_ms": int(time.time() * 1000), "devices": len(fleet.devices),
                     "modbus_requests": fleet.modbus_requests, "active_faults": len(fleet.active),
                     "gate_messages": sum(g.published for g in fleet.publisher.gates) if fleet.publisher else 0}
    if parts == ["devices"] and method == "GET":
        return 200, fleet.inventory
    if len(parts) == 2 and parts[0] == "devices" and method == "GET":
        try:
            return 200, {"device": parts[1], "values": fleet.values(parts[1])}
        except SimulatorError as exc:
            raise _HttpError(404, str(exc)) from exc
    if parts == ["faults"] and method == "GET":
        return 200, {"active": [f.as_dict() for f in fleet.active.values()],
                     "catalogue": {k: sorted(v | COMM_FAULTS) for k, v in FAULTS_BY_KIND.items()}}
    if parts == ["faults"] and method == "POST":
        try:
            doc = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise _HttpError(400, f"body is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("device"), str) or not isinstance(doc.get("fault"), str):
            raise _HttpError(400, 'body must be {"device": "...", "fault": "...", "duration_s"?: n, "params"?: {}}')
        duration = doc.get("duration_s")
        params = doc.get("params") or {}
        if duration is not None and not isinstance(duration, int | float):
            raise _HttpError(400, "duration_s must be a number of simulated seconds")
        if not isinstance(params, dict):
            raise _HttpError(400, "params must be an object")
        try:
            fault_id = fleet.inject(doc["device"], doc["fault"], duration, params)
        except SimulatorError as exc:
            raise _HttpError(400, str(exc)) from exc
        return 201, {"id": fault_id}
    if len(parts) == 2 and parts[0] == "faults" and method == "DELETE":
        try:
            fleet.clear(int(parts[1]))
        except (ValueError, SimulatorError) as exc:
            raise _HttpError(404, str(exc)) from exc
        return 200, {"cleared": int(parts[1])}
    if parts and parts[0] in ("health", "devices", "faults"):
        raise _HttpError(405, f"{method} not allowed on /{'/'.join(parts)}")
    raise _HttpError(404, f"no route /{'/'.join(parts)}")


async def _handle(fleet: ControlledFleet, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    status, payload = 500, {"error": "internal error"}
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            request_line = (await reader.readline()).decode("latin-1").strip()
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode("latin-1").strip()):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            if length > MAX_BODY:
                raise _HttpError(413, "body too large")
            body = await reader.readexactly(length) if length else b""
        method, path, _ = [*request_line.split(" ", 2), "", ""][:3]
        status, payload = _route(fleet, method.upper(), path, body)
    except _HttpError as exc:
        status, payload = exc.status, {"error": str(exc)}
    except (TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
        status, payload = 400, {"error": f"bad request: {exc}"}
    except Exception:
        log.exception("control endpoint failed")
    data = orjson.dumps(payload)
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
    try:
        writer.write(head + data)
        async with asyncio.timeout(READ_TIMEOUT_S):
            await writer.drain()
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()


async def serve_control(fleet: ControlledFleet, host: str, port: int, ready: asyncio.Event) -> None:
    """Serve the control endpoint until cancelled."""
    server = await asyncio.start_server(lambda r, w: _handle(fleet, r, w), host, port)
    log.info("simulator control endpoint on http://%s:%d", host, port)
    ready.set()
    async with server:
        await server.serve_forever()
