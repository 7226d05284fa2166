"""JWT issue and verification: the one module that imports the JOSE library.

python-jose checks little by default, so this module pins down what it must:
the header's ``alg`` equal to the configured one before anything else, the key chosen by a
required ``kid`` from a configured set, exactly one algorithm per ``jwt.decode`` call
(never HS mixed with RS/ES: python-jose#414 then accepts an HS256 token whose HMAC key is
the RSA public key), every claim required and type-checked, and every library or parsing
error turned into ``TokenError`` so a forged token is a 401, never a 500.

Wire format. Header: ``{"alg": <JWT_ALGORITHM>, "typ": "JWT", "kid": <JWT_KEY_ID>}``.
Claims: ``iss``, ``aud``, ``sub`` (user id, decimal string), ``jti`` (128-bit hex), ``iat``,
``exp`` (integer seconds), ``typ`` (the token kind, ``"access"`` or ``"refresh"``; a payload
claim, distinct from the header's ``typ``), ``ver`` (the user's token version, an int) and, on
refresh tokens, ``fam`` (the refresh-token family). All are required except ``fam`` on access
tokens; an ``nbf``, if present, is honoured.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from jose import jwk, jwt
from jose.backends.base import Key
from jose.exceptions import ExpiredSignatureError, JOSEError

from api.settings import Settings

LEEWAY_SECONDS = 10
# Ours are well under 1 KiB; the cap bounds the JSON/base64 work a hostile token can cause.
MAX_TOKEN_CHARS = 8192
VERIFIED_CACHE_SIZE = 4096
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "ES256"})

_DECODE_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {
        "verify_signature": True,
        "verify_aud": True,
        "verify_iat": True,
        "verify_exp": True,
        "verify_nbf": True,
        "verify_iss": True,
        "verify_sub": True,
        "verify_jti": True,
        "verify_at_hash": True,
        "require_aud": True,
        "require_iat": True,
        "require_exp": True,
        "require_iss": True,
        "require_sub": True,
        "require_jti": True,
        "require_nbf": False,  # optional by RFC 7519 and not issued; still checked if present
        "require_at_hash": False,  # OpenID Connect only
        "leeway": LEEWAY_SECONDS,
    }
)


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
class _VerifyingKey:
    algorithm: str
    key: Key


class TokenService:
    def __init__(self, settings: Settings, now: Callable[[], float] = time.time) -> None:
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._algorithm = settings.jwt_algorithm
        self._kid = settings.jwt_key_id
        self._now = now
        self._ttl = {
            TokenKind.ACCESS: settings.access_token_ttl,
            TokenKind.REFRESH: settings.refresh_token_ttl,
        }
        self._signing_key, verifying = _load_keys(settings)
        # A set keyed by kid so a retired key can keep verifying during a rotation.
        self._keys: dict[str, _VerifyingKey] = {
            self._kid: _VerifyingKey(self._algorithm, verifying)
        }
        # Signature, audience and issuer checks depend only on the token and our keys, so a
        # client's next request with the same token skips them; the time and type checks in
        # _check_claims still run on every use. Bounded: oldest entries go first.
        self._verified: dict[str, Mapping[str, Any]] = {}

    def issue(
        self, user_id: int, kind: TokenKind, token_version: int, family: str | None = None
    ) -> tuple[str, TokenClaims]:
        kind = TokenKind(kind)
        if kind is TokenKind.REFRESH and family is None:
            raise ValueError("a refresh token needs a family")
        iat = int(self._now())
        claims = TokenClaims(
            sub=str(user_id),
            kind=kind,
            jti=secrets.token_hex(16),
            iat=iat,
            exp=iat + self._ttl[kind],
            ver=token_version,
            fam=family,
        )
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": claims.sub,
            "typ": kind.value,
            "jti": claims.jti,
            "iat": claims.iat,
            "exp": claims.exp,
            "ver": claims.ver,
        }
        if family is not None:
            payload["fam"] = family
        token = jwt.encode(
            payload, self._signing_key, algorithm=self._algorithm, headers={"kid": self._kid}
        )
        return token, claims

    def decode(self, token: str, expected: TokenKind) -> TokenClaims:
        """The claims of a token we issued, of kind ``expected``, valid now; else TokenError."""
        expected = TokenKind(expected)  # outside the try: a bad argument is our bug, not a 401
        try:
            return self._decode(token, expected)
        except TokenError:
            raise
        except ExpiredSignatureError:
            raise TokenError("token expired") from None
        except Exception:
            # JWTError, JWKError, JWSError, JWTClaimsError, and whatever malformed input
            # provokes inside jose (ValueError, TypeError, KeyError, binascii.Error,
            # UnicodeError, RecursionError...): all of it is an invalid token.
            raise TokenError("invalid token") from None

    def _decode(self, token: str, expected: TokenKind) -> TokenClaims:
        if not isinstance(token, str) or not token.isascii() or len(token) > MAX_TOKEN_CHARS:
            raise TokenError("invalid token")
        claims = self._verified.get(token)
        if claims is not None and not _current(claims):
            # jose judges exp/nbf by the wall clock: let it say why, exactly as before.
            del self._verified[token]
            claims = None
        if claims is None:
            claims = self._verify(token)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        return self._check_claims(claims, expected)

    def _verify(self, token: str) -> Mapping[str, Any]:
        header = jwt.get_unverified_header(token)  # raises JWTError on any malformation
        if not isinstance(header, dict):
            raise TokenError("invalid token")
        # Exact, case-sensitive match before any key is touched: "none"/"None"/"NONE", and
        # HS* against an RS/ES key (the #414 confusion), die here.
        if header.get("alg") != self._algorithm:
            raise TokenError("invalid token")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenError("invalid token")
        if "crit" in header:
            # RFC 7515: extensions we do not understand must be rejected; we understand none.
            raise TokenError("invalid token")
        claims: Mapping[str, Any] = jwt.decode(
            token,
            key.key,  # a Key object: jose never re-parses it as JSON / a JWK set
            algorithms=[key.algorithm],  # exactly one, the key's own
            options=_DECODE_OPTIONS,
            audience=self._audience,
            issuer=self._issuer,
        )
        return claims

    def _check_claims(self, claims: Mapping[str, Any], expected: TokenKind) -> TokenClaims:
        # jose accepts "123" or 1.5 for iat/exp and judges times by the wall clock; we want
        # strict integers and the injected clock (both must pass, so it only adds strictness).
        now = self._now()
        iat, exp, ver = _int(claims, "iat"), _int(claims, "exp"), _int(claims, "ver")
        if exp <= iat:
            raise TokenError("invalid token")
        if iat > now + LEEWAY_SECONDS:
            raise TokenError("token not yet valid")
        if "nbf" in claims and _int(claims, "nbf") > now + LEEWAY_SECONDS:
            raise TokenError("token not yet valid")
        if exp < now - LEEWAY_SECONDS:
            raise TokenError("token expired")
        if claims.get("typ") != expected.value:
            raise TokenError(f"wrong token type, expected {expected.value}")
        sub, jti = claims.get("sub"), claims.get("jti")
        # We only issue str(user_id); ASCII digits also keep int(sub) from failing ("²").
        if not isinstance(sub, str) or not (sub.isascii() and sub.isdigit()):
            raise TokenError("invalid token")
        if not isinstance(jti, str) or not jti:
            raise TokenError("invalid token")
        fam = claims.get("fam")
        if "fam" in claims and not (isinstance(fam, str) and fam):
            raise TokenError("invalid token")
        if expected is TokenKind.REFRESH and fam is None:
            raise TokenError("invalid token")
        return TokenClaims(sub=sub, kind=expected, jti=jti, iat=iat, exp=exp, ver=ver, fam=fam)


def _current(claims: Mapping[str, Any]) -> bool:
    """Whether jose's wall-clock exp/nbf checks (with our leeway) would still pass."""
    now = time.time()
    return bool(
        claims["exp"] >= now - LEEWAY_SECONDS and claims.get("nbf", now) <= now + LEEWAY_SECONDS
    )


def _int(claims: Mapping[str, Any], name: str) -> int:
    value = claims.get(name)
    if type(value) is not int:  # bool is an int subclass; True is not a version
        raise TokenError("invalid token")
    return value


def _load_keys(settings: Settings) -> tuple[Key, Key]:
    """(signing, verifying) jose Key objects; misconfiguration fails at start with a ValueError."""
    algorithm = settings.jwt_algorithm
    if algorithm in HMAC_ALGORITHMS:
        if not settings.jwt_secret:
            raise ValueError(f"STOCKROOM_JWT_SECRET is required for {algorithm}")
        try:
            # Built once as a Key: a raw str secret that happens to be JSON would otherwise
            # be read by jose as a JWK (set) on every call.
            key = jwk.construct(settings.jwt_secret, algorithm)
        except JOSEError as exc:
            raise ValueError(f"STOCKROOM_JWT_SECRET is not usable for {algorithm}: {exc}") from None
        return key, key
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        raise ValueError(f"unsupported JWT algorithm {algorithm!r}")
    private_file, public_file = settings.jwt_private_key_file, settings.jwt_public_key_file
    if private_file is None or public_file is None:
        raise ValueError(
            "STOCKROOM_JWT_PRIVATE_KEY_FILE and STOCKROOM_JWT_PUBLIC_KEY_FILE are required "
            f"for {algorithm}"
        )
    signing = _load_pem("STOCKROOM_JWT_PRIVATE_KEY_FILE", private_file.read_bytes(), algorithm)
    # public_key(): even if the "public" file holds a private key, verify as public only.
    verifying = _load_pem(
        "STOCKROOM_JWT_PUBLIC_KEY_FILE", public_file.read_bytes(), algorithm
    ).public_key()
    probe = b"stockroom key pair check"
    try:
        paired = verifying.verify(probe, signing.sign(probe))
    except Exception:
        paired = False
    if not paired:
        # Found at start rather than as "invalid token" on every request.
        raise ValueError(
            "STOCKROOM_JWT_PRIVATE_KEY_FILE and STOCKROOM_JWT_PUBLIC_KEY_FILE are not "
            f"a matching {algorithm} private/public key pair"
        )
    return signing, verifying


def _load_pem(setting: str, pem: bytes, algorithm: str) -> Key:
    try:
        return jwk.construct(pem, algorithm)
    except JOSEError as exc:
        raise ValueError(f"{setting} does not hold a usable {algorithm} key: {exc}") from None
