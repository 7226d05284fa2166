"""JWT issue and verification: the one module that imports the JOSE library.

python-jose checks little by default, so this module pins what it must:
exactly one algorithm per key (never HS mixed with RS/ES, python-jose#414), the ``kid``
chosen here from a configured set, every claim required, and every library error turned
into ``TokenError`` so a forged token is a 401, never a 500.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jose import jwt

from api.settings import Settings

LEEWAY_SECONDS = 10
TYPE_CLAIM = "typ"


class TokenError(Exception):
    """The token is not one we issued, or no longer valid; the message is safe to show."""


class TokenKind(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    sub: str
    kind: TokenKind
    jti: str
    iat: int
    exp: int
    ver: int
    fam: str | None


@dataclass(frozen=True, slots=True)
class _Key:
    algorithm: str
    signing: Any
    verifying: Any


class TokenService:
    def __init__(self, settings: Settings, now: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._now = now
        algorithm = settings.jwt_algorithm
        if algorithm.startswith("HS"):
            assert settings.jwt_secret is not None  # Settings guarantees it
            key = _Key(algorithm, settings.jwt_secret, settings.jwt_secret)
        else:
            assert settings.jwt_private_key_file and settings.jwt_public_key_file
            key = _Key(
                algorithm,
                settings.jwt_private_key_file.read_text(),
                settings.jwt_public_key_file.read_text(),
            )
        self._kid = settings.jwt_key_id
        self._keys: dict[str, _Key] = {self._kid: key}
        self._ttl = {
            TokenKind.ACCESS: settings.access_token_ttl,
            TokenKind.REFRESH: settings.refresh_token_ttl,
        }

    def issue(
        self, user_id: int, kind: TokenKind, token_version: int, family: str | None = None
    ) -> tuple[str, TokenClaims]:
        now = int(self._now())
        claims = TokenClaims(
            sub=str(user_id),
            kind=kind,
            jti=secrets.token_hex(16),
            iat=now,
            exp=now + self._ttl[kind],
            ver=token_version,
            fam=family,
        )
        payload: dict[str, Any] = {
            "sub": claims.sub,
            "iat": claims.iat,
            "nbf": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
            "iss": self._settings.jwt_issuer,
            "aud": self._settings.jwt_audience,
            TYPE_CLAIM: kind.value,
            "ver": token_version,
        }
        if family is not None:
            payload["fam"] = family
        key = self._keys[self._kid]
        token = jwt.encode(
            payload, key.signing, algorithm=key.algorithm, headers={"kid": self._kid}
        )
        return token, claims

    def decode(self, token: str, expected: TokenKind) -> TokenClaims:
        try:
            return self._decode(token, expected)
        except TokenError:
            raise
        except Exception as exc:  # every JOSE and parsing failure is just "invalid"
            message = "token expired" if type(exc).__name__ == "ExpiredSignatureError" else None
            raise TokenError(message or "invalid token") from None

    def _decode(self, token: str, expected: TokenKind) -> TokenClaims:
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
            raise TokenError("invalid token")
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("unknown signing key")
        if header.get("alg") != key.algorithm:
            raise TokenError("unexpected algorithm")
        payload = jwt.decode(
            token,
            key.verifying,
            algorithms=[key.algorithm],
            audience=self._settings.jwt_audience,
            issuer=self._settings.jwt_issuer,
            options={
                "verify_signature": True,
                "verify_aud": True,
                "verify_iat": True,
                "verify_exp": True,
                "verify_nbf": True,
                "verify_iss": True,
                "verify_sub": True,
                "verify_jti": True,
                "require_aud": True,
                "require_iat": True,
                "require_exp": True,
                "require_iss": True,
                "require_sub": True,
                "require_jti": True,
                "leeway": LEEWAY_SECONDS,
            },
        )
        now = self._now()
        iat, exp, ver = _int(payload.get("iat")), _int(payload.get("exp")), _int(payload.get("ver"))
        if iat > now + LEEWAY_SECONDS:
            raise TokenError("token not yet valid")
        if exp < now - LEEWAY_SECONDS:  # jose checks too; our clock may be injected
            raise TokenError("token expired")
        nbf = payload.get("nbf")
        if nbf is not None and _int(nbf) > now + LEEWAY_SECONDS:
            raise TokenError("token not yet valid")
        if payload.get(TYPE_CLAIM) != expected.value:
            raise TokenError(f"not an {expected.value} token")
        sub, jti, fam = payload.get("sub"), payload.get("jti"), payload.get("fam")
        if not isinstance(sub, str) or not isinstance(jti, str):
            raise TokenError("invalid token")
        if fam is not None and not isinstance(fam, str):
            raise TokenError("invalid token")
        if expected is TokenKind.REFRESH and fam is None:
            raise TokenError("invalid token")
        return TokenClaims(sub=sub, kind=expected, jti=jti, iat=iat, exp=exp, ver=ver, fam=fam)


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TokenError("invalid token")
    return value
