"""Argon2id password hashing: round trips, and nothing ever raises on bad stored hashes."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher, Type

from api import passwords
from api.passwords import (
    PRODUCTION_PARAMETERS,
    hash_password,
    needs_rehash,
    use_fast_hashing_for_tests,
    verify_dummy,
    verify_password,
)


@pytest.fixture(autouse=True)
def _fast_hashing() -> None:
    use_fast_hashing_for_tests()


def test_production_parameters_are_sound() -> None:
    # OWASP floor for Argon2id: m >= 19 MiB with t >= 2.
    assert PRODUCTION_PARAMETERS.type is Type.ID
    assert PRODUCTION_PARAMETERS.memory_cost >= 19 * 1024
    assert PRODUCTION_PARAMETERS.time_cost >= 2
    assert PRODUCTION_PARAMETERS.salt_len >= 16
    assert PRODUCTION_PARAMETERS.hash_len >= 32


def test_fast_profile_is_active_in_tests() -> None:
    assert passwords._active.hasher.memory_cost < PRODUCTION_PARAMETERS.memory_cost


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "", "pässwörd 🔑", "x" * 4096]
)
def test_hash_and_verify(password: str) -> None:
    hashed = hash_password(password)
    assert hashed.startswith("$argon2id$")
    assert password not in hashed or not password
    assert verify_password(hashed, password) is True


def test_hashes_are_salted() -> None:
    assert hash_password("same") != hash_password("same")


@pytest.mark.parametrize("wrong", ["Correct", "correct ", "", "correct\x00"])
def test_wrong_password(wrong: str) -> None:
    assert verify_password(hash_password("correct"), wrong) is False


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "not-a-hash",
        "$argon2id$",
        "$argon2id$v=19$m=65536,t=3,p=4$abc$def",
        "$argon2id$v=19$m=8,t=1,p=1$!!!$!!!",
        "$2b$12$C6UzMDM.H6dfI/f/IKcEeO5pbJ6sEuC7jWlmRMyeVNWRZxZmlx4m6",  # bcrypt
        "pbkdf2_sha256$600000$salt$hash",
        None,
        b"$argon2id$",
        12345,
    ],
)
def test_malformed_hash_is_false(malformed: Any) -> None:
    assert verify_password(malformed, "password") is False


def test_dummy_verify_does_not_raise() -> None:
    for password in ["", "password", "pässwörd", "x" * 10_000]:
        assert verify_dummy(password) is None  # type: ignore[func-returns-value]


def test_dummy_verify_costs_a_real_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_verify = passwords.verify_password

    def spy(password_hash: str, password: str) -> bool:
        calls.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", spy)
    verify_dummy("password")
    assert len(calls) == 1
    assert calls[0].startswith("$argon2id$")
    # Made with the active parameters, so it costs what a real check costs.
    assert needs_rehash(calls[0]) is False


def test_needs_rehash_for_current_parameters() -> None:
    assert needs_rehash(hash_password("pw")) is False


def test_needs_rehash_for_other_parameters() -> None:
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    assert needs_rehash(stronger.hash("pw")) is True
    assert needs_rehash(PasswordHasher.from_parameters(PRODUCTION_PARAMETERS).hash("pw")) is True


@pytest.mark.parametrize("malformed", ["", "not-a-hash", "$2b$12$abc", None])
def test_needs_rehash_for_malformed_hash(malformed: Any) -> None:
    assert needs_rehash(malformed) is True


def test_switching_profile_keeps_old_hashes_verifiable() -> None:
    # Hashes encode their own parameters: a production hash still verifies in fast mode.
    production_hash = PasswordHasher.from_parameters(PRODUCTION_PARAMETERS).hash("pw")
    assert verify_password(production_hash, "pw") is True
    assert verify_password(production_hash, "other") is False
