"""Password hashing with Argon2id; pure functions over the module's active hasher."""

from __future__ import annotations

import secrets

from argon2 import Parameters, PasswordHasher, profiles

# RFC 9106 "second recommended" profile: Argon2id, t=3, m=64 MiB, p=4. Above OWASP's
# floor (m=19 MiB, t=2) while staying affordable per login on a small container.
PRODUCTION_PARAMETERS: Parameters = profiles.RFC_9106_LOW_MEMORY
# Tests hash thousands of passwords; the cheapest profile keeps the suite fast.
TEST_PARAMETERS: Parameters = profiles.CHEAPEST


class _Hashing:
    """A hasher plus the dummy hash made with the same parameters (so it costs the same)."""

    def __init__(self, parameters: Parameters) -> None:
        self.hasher = PasswordHasher.from_parameters(parameters)
        self._dummy: str | None = None

    def dummy_hash(self) -> str:
        # Lazy so importing the module (CLI, migrations) does not pay a 64 MiB hash; a
        # concurrent first call may compute it twice, which is harmless.
        if self._dummy is None:
            self._dummy = self.hasher.hash(secrets.token_urlsafe(32))
        return self._dummy


_active = _Hashing(PRODUCTION_PARAMETERS)


def use_fast_hashing_for_tests() -> None:
    """Switch to a deliberately weak profile. Only for test suites."""
    global _active
    _active = _Hashing(TEST_PARAMETERS)


def hash_password(password: str) -> str:
    return _active.hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True only when ``password`` matches ``password_hash``; never raises."""
    try:
        return _active.hasher.verify(password_hash, password)
    except Exception:
        # Mismatch, malformed or foreign hash, even a NULL column (AttributeError): a
        # corrupt stored value must read as "wrong password", not as a 500 on login.
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the active ones; never raises."""
    try:
        return _active.hasher.check_needs_rehash(password_hash)
    except Exception:
        # Not a hash we can parse, so certainly not one made with today's parameters.
        return True


def verify_dummy(password: str) -> None:
    """Spend one verification on a throwaway hash so unknown emails cost like wrong passwords."""
    verify_password(_active.dummy_hash(), password)
