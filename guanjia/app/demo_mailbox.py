"""The demo resident's mailbox: a local SMTP server the demo runs as a supervised child, so every
step of 陈女士's order is *delivered* over a real channel, not only shown in the in-app inbox.

Why email, and why a local server: of the resident channels (SMS, email, messenger) email is the
one whose real protocol can be received on this machine without a vendor's servers, and the demo's
cloud sends it exactly as production does (:mod:`cloud.ops.delivery.email`, ``GUANJIA_SMTP_URL``,
the outbox with its retries). The server is aiosmtpd's (the library the notification tests receive
with); it accepts mail for anyone and appends each message, decoded, to ``<folder>/<recipient>.txt``
— so ``tail -f .run/demo/mailbox/resident@demo.guanjia.example.txt`` reads the resident's messages
as they arrive. The SMTP URL is set only in the demo's environment for its cloud process: outside
demo mode nothing points the sender at it.

``python -m guanjia.app.demo_mailbox --port N --dir FOLDER`` runs the server (until SIGTERM);
:func:`start` launches it under the demo's :class:`~guanjia.app.procs.Supervisor`, and
:func:`point_resident` sets a user's channel to it (validated like any resident's choice).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final

from psycopg import AsyncConnection

from cloud.ops.notify import preferences
from guanjia.app.procs import Child, Supervisor
from guanjia.core.errors import StackError
from guanjia.core.ports import wait_for_port

RESIDENT_ADDRESS: Final = "resident@demo.guanjia.example"
SENDER: Final = "guanjia-demo@demo.guanjia.example"
HOST: Final = "127.0.0.1"


def smtp_url(port: int) -> str:
    """``GUANJIA_SMTP_URL`` for the demo's cloud: plain SMTP to the local mailbox, no password."""
    return f"smtp://{HOST}:{port}?from={SENDER}"


def mailbox_file(folder: Path, address: str = RESIDENT_ADDRESS) -> Path:
    """Where the messages to ``address`` are written (one file per recipient)."""
    safe = "".join(ch if ch.isalnum() or ch in "@.-_+" else "_" for ch in address.lower())
    return folder / f"{safe}.txt"


def render(message: EmailMessage) -> str:
    """One message as the file shows it: subject, then the plain-text body (already worded in the
    recipient's language and with the community's local time by the sender)."""
    part = message.get_body(preferencelist=("plain",))
    body = part.get_content() if isinstance(part, EmailMessage) else ""
    return f"━━ {message['Subject']}\n{body.rstrip()}\n\n"


class Mailbox:
    """aiosmtpd handler: every accepted message is appended to each recipient's file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook for a received message (its name)."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = (render(message) if isinstance(message, EmailMessage)  # what the default policy builds
                else bytes(envelope.content).decode("utf-8", "replace") + "\n")
        self.folder.mkdir(parents=True, exist_ok=True)
        for recipient in envelope.rcpt_tos:
            with mailbox_file(self.folder, recipient).open("a", encoding="utf-8") as fh:
                fh.write(text)
        return "250 Message accepted for delivery"


async def serve(port: int, folder: Path, host: str = HOST) -> None:
    """Run the mailbox until cancelled (or the process is terminated)."""
    from aiosmtpd.smtp import SMTP

    handler = Mailbox(folder)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, hostname="guanjia-demo"), host, port)
    async with server:
        await server.serve_forever()


def start(supervisor: Supervisor, port: int, folder: Path, *, timeout: float = 30.0) -> Child:
    """Start the mailbox as a supervised child and wait until it accepts connections
    (:class:`StackError` naming its log otherwise: it is one of the demo's local services)."""
    import sys

    child = supervisor.start("mailbox", [sys.executable, "-m", "guanjia.app.demo_mailbox", "--port", str(port),
                                         "--dir", str(folder)])
    if not wait_for_port(HOST, port, timeout):
        raise StackError(f"the demo mailbox did not listen on {HOST}:{port} within {timeout:.0f} s; "
                           f"see {child.log_file}")
    return child


async def point_resident(conn: AsyncConnection[Any], user_id: int) -> preferences.Preference:
    """Make the mailbox the user's channel (email to :data:`RESIDENT_ADDRESS`)."""
    return await preferences.choose(conn, user_id, "email", RESIDENT_ADDRESS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m guanjia.app.demo_mailbox",
                                     description="the demo resident's local mailbox (SMTP)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="folder of the per-recipient files")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.dir))


if __name__ == "__main__":
    main()
