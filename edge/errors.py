"""The edge agent's exception tree (all derive from :class:`guanjia.core.errors.GuanjiaError`)::

    EdgeError
    ├── OutboxError        the local SQLite outbox could not be opened or written
    ├── RequestFault       one request to a device failed; ``quality`` says how (timeout, error reply…)
    │   ├── ModbusFault    … a Modbus request (exception codes, pymodbus errors)
    │   └── MeterFault     … a DL/T 645 / CJ/T 188 exchange on a meter bus (silence, noise, error reply)
    ├── CommandRejected    a cloud command failed validation or could not be applied; ``reason`` is short
    └── IsapiError         an access controller's alert stream failed (reconnected with backoff)
        ├── IsapiStreamError   could not open, not multipart, dropped, idle (httpx errors mapped here)
        └── IsapiAuthError     credentials refused after the digest round

Third-party errors (sqlite3, pymodbus, aiomqtt, httpx) are caught at the adapter that talks to them and
re-raised as one of these, so the agent's loops handle one tree.
"""

from __future__ import annotations

from guanjia.core.errors import GuanjiaError
from guanjia.core.wire import Quality


class EdgeError(GuanjiaError):
    """Root of every error the edge agent raises on purpose."""


class OutboxError(EdgeError):
    """The durable outbox failed (disk full, corrupt file, permissions)."""


class RequestFault(EdgeError):
    """A request to a device produced no value; ``quality`` is what the affected points get."""

    def __init__(self, quality: Quality, detail: str = "") -> None:
        self.quality = quality
        self.detail = detail
        super().__init__(f"{quality.wire}: {detail}" if detail else quality.wire)


class ModbusFault(RequestFault):
    """A Modbus request did not produce registers."""


class MeterFault(RequestFault):
    """A DL/T 645 or CJ/T 188 exchange did not produce a value (no answer, noise, an error reply)."""


class CommandRejected(EdgeError):
    """A command from the cloud was refused; ``reason`` is sent back on the reply topic."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class IsapiError(EdgeError):
    """An access controller's alert stream failed; the adapter reconnects with backoff."""


class IsapiStreamError(IsapiError):
    """The stream could not be opened, was not multipart, or ended (httpx errors are mapped here)."""


class IsapiAuthError(IsapiError):
    """The controller refused the credentials (401 after the digest round)."""
