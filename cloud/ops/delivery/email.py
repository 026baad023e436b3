"""Email through SMTP (stdlib ``smtplib`` run in a worker thread, with a socket timeout).

Configured by one URL, ``GUANJIA_SMTP_URL``::

    smtp://user:password@host:port?from=noreply@example.com          plain (local relay)
    smtp+starttls://user:password@host:587?from=…                     STARTTLS
    smtps://user:password@host:465?from=…                             implicit TLS
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from cloud.ops.delivery.errors import DeliveryConfigError


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    security: str = "plain"  # plain | starttls | tls
    timeout: float = 15.0

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        security = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}.get(parts.scheme)
        if security is None or not parts.hostname:
            raise DeliveryConfigError(
                f"SMTP URL must be smtp://, smtp+starttls:// or smtps://host:port, got {parts.scheme}")
        sender = parse_qs(parts.query).get("from", [f"guanjia@{parts.hostname}"])[0]
        default_port = {"plain": 25, "starttls": 587, "tls": 465}[security]
        return cls(parts.hostname, parts.port or default_port, sender,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None, security)


Attachment = tuple[str, str, bytes]
"""(filename, content type, bytes) — a manager report's PDF, for instance."""


def _send(config: SmtpConfig, to: str, subject: str, body: str, attachments: tuple[Attachment, ...] = ()) -> None:
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    smtp: smtplib.SMTP
    if config.security == "tls":
        smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    with smtp:
        if config.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if config.username:
            smtp.login(config.username, config.password or "")
        smtp.send_message(message)


async def send_email(config: SmtpConfig, to: str, subject: str, body: str,
                     attachments: tuple[Attachment, ...] = ()) -> str | None:
    """Send one email; return None on success or the error text (the sender retries)."""
    try:
        async with asyncio.timeout(config.timeout + 5):
            await asyncio.to_thread(_send, config, to, subject, body, attachments)
    except (smtplib.SMTPException, OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None
