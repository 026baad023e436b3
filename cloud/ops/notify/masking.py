"""Desensitise residents' personal data (phone numbers, names) in notifications and logs.

Property-service rules ask for 脱敏 of residents' data: a receiver sees ``138****1234`` and
``张*`` unless their role needs the real value (the butler assigned to the order must be able to
call the resident back). Logs are always masked.
"""

from __future__ import annotations

import re
from typing import Final

_PHONE_RE: Final = re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_ANY_DIGITS_RE: Final = re.compile(r"\d")


def mask_phone(phone: str) -> str:
    """``13812341234`` → ``138****1234``; other numbers keep only the first 3 and last 2-4 digits."""
    digits = re.sub(r"[^\d+]", "", phone)
    if not digits:
        return ""
    plain = digits.lstrip("+")
    if plain.startswith("86") and len(plain) == 13:
        plain = plain[2:]
    if len(plain) == 11:
        return f"{plain[:3]}****{plain[7:]}"
    if len(plain) <= 4:
        return "*" * len(plain)
    keep_tail = 4 if len(plain) >= 9 else 2
    head = min(3, len(plain) - keep_tail - 1)
    return plain[:head] + "*" * (len(plain) - head - keep_tail) + plain[-keep_tail:]


def mask_name(name: str) -> str:
    """``张三`` → ``张*``, ``欧阳小明`` → ``欧***``, ``John Smith`` → ``J*** S****``."""
    name = name.strip()
    if not name:
        return ""
    if any("\u4e00" <= ch <= "\u9fff" for ch in name):
        return name[0] + "*" * (len(name) - 1)
    return " ".join(part[0] + "*" * (len(part) - 1) for part in name.split())


def mask_text(text: str) -> str:
    """Mask mainland mobile numbers anywhere in free text (a resident's report, a log line)."""
    return _PHONE_RE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text)


def masked_digits_only(value: str) -> bool:
    """True when ``value`` shows no more than 7 digits (used by tests and log checks)."""
    return len(_ANY_DIGITS_RE.findall(value)) <= 7
