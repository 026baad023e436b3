"""What the local receivers of the notification tests collected: HTTP requests (webhooks,
apprise json://) and SMTP messages. The fixtures that run them: ``tests/plugins/receivers.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any


@dataclass
class HttpReceiver:
    port: int
    statuses: list[int] = field(default_factory=list)  # replies in order; 200 once exhausted
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class SmtpCollector:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class SmtpReceiver:
    port: int
    handler: SmtpCollector

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages
