"""Password hashing with Argon2id (argon2-cffi), the OWASP-recommended memory-hard algorithm.

Hashing costs tens of milliseconds of CPU on purpose; the async helpers run it in a worker
thread so a login never stalls the event loop. Verifying a user that does not exist still hashes
against a dummy, so response time does not reveal which usernames exist.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
MIN_LENGTH = 8
MAX_LENGTH = 256
_DUMMY_HASH = _hasher.hash("guanjia-dummy-password-for-timing")


def hash_password(password: str) -> str:
    """Return an encoded Argon2id hash (salt and parameters included)."""
    return _hasher.hash(password)


def verify_password(encoded: str | None, password: str) -> bool:
    """True when ``password`` matches ``encoded``; a missing hash is checked against a dummy."""
    try:
        return bool(_hasher.verify(encoded or _DUMMY_HASH, password)) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    """True when the stored hash used weaker parameters than today's defaults."""
    try:
        return _hasher.check_needs_rehash(encoded)
    except InvalidHashError:
        return True


def check_strength(password: str) -> str | None:
    """A reason why ``password`` is unacceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"at most {MAX_LENGTH} characters"
    if password.strip() == "" or len(set(password)) < 4:
        return "too simple: use at least 4 different characters"
    return None


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(encoded: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, encoded, password)
