"""TokenService: round trips, and one test per way of forging or mangling a token."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt

from api import tokens
from api.settings import Settings
from api.tokens import LEEWAY_SECONDS, TokenClaims, TokenError, TokenKind, TokenService

SECRET = "x" * 40
KID = "stockroom-1"
ACCESS, REFRESH = TokenKind.ACCESS, TokenKind.REFRESH


# ---------------------------------------------------------------- helpers


class Clock:
    """An injectable clock; starts at the real time because jose checks exp/nbf by it too."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: Any) -> str:
    return b64url(json.dumps(obj).encode())


def hs_token(header: dict[str, Any], payload: Any, key: bytes, digest: Any = hashlib.sha256) -> str:
    """A hand-rolled HS* JWS: jose refuses PEM keys as HMAC secrets, an attacker does not."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims(kind: TokenKind = ACCESS, **overrides: Any) -> dict[str, Any]:
    """A claim set our service would accept right now; ``None`` overrides drop a claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": "stockroom",
        "aud": "stockroom-api",
        "sub": "1",
        "typ": kind.value,
        "jti": "0" * 32,
        "iat": now,
        "exp": now + 600,
        "ver": 0,
    }
    if kind is REFRESH:
        values["fam"] = "family-1"
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def header(alg: str = "HS256", **extra: Any) -> dict[str, Any]:
    return {"alg": alg, "typ": "JWT", "kid": KID, **extra}


def hs_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"jwt_secret": SECRET, **overrides}
    return Settings(_env_file=None, **values)


def write_pems(tmp_path: Path, private_key: Any, prefix: str) -> tuple[Path, Path]:
    private_file, public_file = tmp_path / f"{prefix}.key", tmp_path / f"{prefix}.pub"
    private_file.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_file.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_file, public_file


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def rsa_files(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> tuple[Path, Path]:
    return write_pems(tmp_path, rsa_key, "rsa")


@pytest.fixture
def rsa_service(rsa_files: tuple[Path, Path]) -> TokenService:
    private_file, public_file = rsa_files
    settings = Settings(
        jwt_algorithm="RS256",
        jwt_private_key_file=private_file,
        jwt_public_key_file=public_file,
        _env_file=None,
    )
    return TokenService(settings)


@pytest.fixture
def service() -> TokenService:
    return TokenService(hs_settings())


def assert_rejected(service: TokenService, token: Any, kind: TokenKind = ACCESS) -> TokenError:
    with pytest.raises(TokenError) as info:
        service.decode(token, kind)
    return info.value


# ---------------------------------------------------------------- happy paths


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_round_trip(algorithm: str) -> None:
    service = TokenService(hs_settings(jwt_algorithm=algorithm))
    token, issued = service.issue(7, ACCESS, 3)
    assert service.decode(token, ACCESS) == issued
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "typ": "JWT", "kid": KID}


def test_access_claims() -> None:
    clock = Clock()
    service = TokenService(hs_settings(access_token_ttl=900), now=clock)
    token, issued = service.issue(42, ACCESS, 5)
    assert issued == TokenClaims(
        sub="42",
        kind=ACCESS,
        jti=issued.jti,
        iat=int(clock.t),
        exp=int(clock.t) + 900,
        ver=5,
        fam=None,
    )
    assert len(issued.jti) == 32
    int(issued.jti, 16)
    payload = jwt.get_unverified_claims(token)
    assert payload["iss"] == "stockroom"
    assert payload["aud"] == "stockroom-api"
    assert payload["typ"] == "access"
    assert "fam" not in payload
    assert service.decode(token, ACCESS) == issued


def test_refresh_claims() -> None:
    clock = Clock()
    service = TokenService(hs_settings(refresh_token_ttl=3600), now=clock)
    token, issued = service.issue(42, REFRESH, 0, family="fam-1")
    decoded = service.decode(token, REFRESH)
    assert decoded == issued
    assert decoded.kind is REFRESH
    assert decoded.fam == "fam-1"
    assert decoded.exp == int(clock.t) + 3600


def test_jti_is_unique(service: TokenService) -> None:
    assert len({service.issue(1, ACCESS, 0)[1].jti for _ in range(50)}) == 50


def test_refresh_without_family_is_a_programming_error(service: TokenService) -> None:
    with pytest.raises(ValueError):
        service.issue(1, REFRESH, 0)


def test_access_token_may_carry_a_family(service: TokenService) -> None:
    token, _ = service.issue(1, ACCESS, 0, family="f")
    assert service.decode(token, ACCESS).fam == "f"


def test_rs256_round_trip(rsa_service: TokenService) -> None:
    token, issued = rsa_service.issue(9, REFRESH, 2, family="f")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert rsa_service.decode(token, REFRESH) == issued


def test_es256_round_trip(tmp_path: Path) -> None:
    private_file, public_file = write_pems(tmp_path, ec.generate_private_key(ec.SECP256R1()), "ec")
    settings = Settings(
        jwt_algorithm="ES256",
        jwt_private_key_file=private_file,
        jwt_public_key_file=public_file,
        _env_file=None,
    )
    service = TokenService(settings)
    token, issued = service.issue(3, ACCESS, 1)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    assert service.decode(token, ACCESS) == issued
    # ...and an HS256 token keyed with the EC public key bytes is no better than the RSA one.
    forged = hs_token(header("HS256"), claims(), public_file.read_bytes())
    assert_rejected(service, forged)


def test_decode_passes_exactly_one_algorithm(
    rsa_service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression guard for python-jose#414: never a list mixing HS with RS/ES."""
    seen: list[Any] = []
    real_decode = jwt.decode

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["algorithms"])
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", spy)
    token, _ = rsa_service.issue(1, ACCESS, 0)
    rsa_service.decode(token, ACCESS)
    assert seen == [["RS256"]]


def test_within_leeway_is_accepted() -> None:
    clock = Clock()
    service = TokenService(hs_settings(access_token_ttl=60), now=clock)
    token, issued = service.issue(1, ACCESS, 0)
    clock.t = issued.exp + LEEWAY_SECONDS - 1
    assert service.decode(token, ACCESS) == issued
    # A slightly fast issuer clock (iat a few seconds ahead) is tolerated too.
    slightly_ahead = hs_token(header(), claims(iat=int(time.time()) + 5), SECRET.encode())
    assert service.decode(slightly_ahead, ACCESS).sub == "1"


def test_past_nbf_is_accepted(service: TokenService) -> None:
    token = hs_token(header(), claims(nbf=int(time.time()) - 60), SECRET.encode())
    assert service.decode(token, ACCESS).sub == "1"


def test_json_looking_secret_is_used_verbatim() -> None:
    """jose would parse a raw str key that is JSON as a JWK (set); ours is a Key object."""
    secret = json.dumps({"kid": "a-json-object-that-is-long-enough-for-a-secret"})
    service = TokenService(hs_settings(jwt_secret=secret))
    token, issued = service.issue(1, ACCESS, 0)
    assert service.decode(token, ACCESS) == issued
    forged = hs_token(header(), claims(), b"a-json-object-that-is-long-enough-for-a-secret")
    assert_rejected(service, forged)


# ---------------------------------------------------------------- alg "none" and alg mismatch


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_rejected(service: TokenService, alg: str) -> None:
    forged = f"{segment(header(alg))}.{segment(claims())}."
    assert_rejected(service, forged)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_rejected_with_rs256(rsa_service: TokenService, alg: str) -> None:
    assert_rejected(rsa_service, f"{segment(header(alg))}.{segment(claims())}.")


def test_alg_none_without_kid_is_rejected(service: TokenService) -> None:
    forged = f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims())}."
    assert_rejected(service, forged)


@pytest.mark.parametrize("alg", ["hs256", "Hs256", "HS384", "HS512", "RS256", "", None, ["HS256"]])
def test_other_alg_than_configured_is_rejected(service: TokenService, alg: Any) -> None:
    # Correctly HMAC-signed with the real secret: only the header's alg is wrong.
    forged = hs_token(header(alg), claims(), SECRET.encode())
    assert_rejected(service, forged)


def test_missing_alg_is_rejected(service: TokenService) -> None:
    forged = hs_token({"typ": "JWT", "kid": KID}, claims(), SECRET.encode())
    assert_rejected(service, forged)


# ---------------------------------------------------------------- key confusion (python-jose#414)


def test_hs256_signed_with_rsa_public_pem_is_rejected(
    rsa_service: TokenService, rsa_files: tuple[Path, Path]
) -> None:
    public_pem = rsa_files[1].read_bytes()
    assert_rejected(rsa_service, hs_token(header("HS256"), claims(), public_pem))
    # Also with the PEM stripped of its trailing newline, a common variant of the attack.
    assert_rejected(rsa_service, hs_token(header("HS256"), claims(), public_pem.strip()))


@pytest.mark.parametrize(
    "public_format",
    [serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1],
)
def test_hs256_signed_with_rsa_public_der_is_rejected(
    rsa_service: TokenService,
    rsa_key: rsa.RSAPrivateKey,
    public_format: serialization.PublicFormat,
) -> None:
    public_der = rsa_key.public_key().public_bytes(serialization.Encoding.DER, public_format)
    assert_rejected(rsa_service, hs_token(header("HS256"), claims(), public_der))


def test_single_algorithm_alone_stops_key_confusion(
    rsa_service: TokenService, rsa_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: with the up-front alg check bypassed, jose still gets only RS256."""
    monkeypatch.setattr(rsa_service, "_algorithm", "HS256")
    forged = hs_token(header("HS256"), claims(), rsa_files[1].read_bytes())
    assert_rejected(rsa_service, forged)


def test_rs256_signed_with_another_rsa_key_is_rejected(rsa_service: TokenService) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = jwt.encode(claims(), other_pem, algorithm="RS256", headers={"kid": KID})
    assert_rejected(rsa_service, forged)


# ---------------------------------------------------------------- signature and key id


def test_wrong_secret_is_rejected(service: TokenService) -> None:
    forged = hs_token(header(), claims(), b"y" * 40)
    assert_rejected(service, forged)
    other_service = TokenService(hs_settings(jwt_secret="y" * 40))
    token, _ = other_service.issue(1, ACCESS, 0)
    assert_rejected(service, token)


def test_tampered_payload_is_rejected(service: TokenService) -> None:
    token, _ = service.issue(1, ACCESS, 0)
    head, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["sub"] = "2"
    assert_rejected(service, f"{head}.{segment(payload)}.{signature}")


def test_tampered_header_is_rejected(service: TokenService) -> None:
    token, _ = service.issue(1, ACCESS, 0)
    _, body, signature = token.split(".")
    assert_rejected(service, f"{segment(header(extra='x'))}.{body}.{signature}")


def test_stripped_signature_is_rejected(service: TokenService) -> None:
    token, _ = service.issue(1, ACCESS, 0)
    assert_rejected(service, token.rsplit(".", 1)[0] + ".")


def test_unknown_kid_is_rejected(service: TokenService) -> None:
    forged = hs_token(header(kid="stockroom-2"), claims(), SECRET.encode())
    assert_rejected(service, forged)
    # Same secret, other kid: a token from a differently configured issuer is not ours.
    other = TokenService(hs_settings(jwt_key_id="elsewhere"))
    token, _ = other.issue(1, ACCESS, 0)
    assert_rejected(service, token)


def test_missing_kid_is_rejected(service: TokenService) -> None:
    forged = hs_token({"alg": "HS256", "typ": "JWT"}, claims(), SECRET.encode())
    assert_rejected(service, forged)


@pytest.mark.parametrize("kid", [None, 1, [KID], {"id": KID}, ""])
def test_non_string_kid_is_rejected(service: TokenService, kid: Any) -> None:
    forged = hs_token(header(kid=kid), claims(), SECRET.encode())
    assert_rejected(service, forged)


def test_crit_header_is_rejected(service: TokenService) -> None:
    forged = hs_token(header(crit=["exp"]), claims(), SECRET.encode())
    assert_rejected(service, forged)


# ---------------------------------------------------------------- time


def test_expired_by_injected_clock() -> None:
    clock = Clock()
    service = TokenService(hs_settings(access_token_ttl=60), now=clock)
    token, issued = service.issue(1, ACCESS, 0)
    clock.t = issued.exp + LEEWAY_SECONDS + 1
    assert str(assert_rejected(service, token)) == "token expired"


def test_expired_by_wall_clock(service: TokenService) -> None:
    now = int(time.time())
    forged = hs_token(header(), claims(iat=now - 3600, exp=now - 1800), SECRET.encode())
    assert str(assert_rejected(service, forged)) == "token expired"


def test_future_iat_is_rejected(service: TokenService) -> None:
    now = int(time.time())
    forged = hs_token(header(), claims(iat=now + 3600, exp=now + 7200), SECRET.encode())
    assert str(assert_rejected(service, forged)) == "token not yet valid"


def test_future_nbf_is_rejected(service: TokenService) -> None:
    forged = hs_token(header(), claims(nbf=int(time.time()) + 3600), SECRET.encode())
    assert_rejected(service, forged)


def test_future_nbf_by_injected_clock_is_rejected() -> None:
    # jose's wall clock passes it (leeway); ours, set back, does not.
    clock = Clock()
    service = TokenService(hs_settings(), now=clock)
    clock.t += 1000
    forged = hs_token(header(), claims(nbf=int(clock.t) + 3600), SECRET.encode())
    clock.t -= 1000
    assert_rejected(service, forged)


def test_exp_before_iat_is_rejected(service: TokenService) -> None:
    now = int(time.time())
    forged = hs_token(header(), claims(iat=now + 5, exp=now + 2), SECRET.encode())
    assert_rejected(service, forged)


# ---------------------------------------------------------------- claims


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss", "aud", "jti", "typ", "ver"])
def test_missing_required_claim_is_rejected(service: TokenService, missing: str) -> None:
    payload = claims()
    del payload[missing]
    assert_rejected(service, hs_token(header(), payload, SECRET.encode()))


def test_missing_family_on_refresh_is_rejected(service: TokenService) -> None:
    payload = claims(REFRESH)
    del payload["fam"]
    assert_rejected(service, hs_token(header(), payload, SECRET.encode()), REFRESH)


@pytest.mark.parametrize("fam", [1, True, "", ["f"], {"f": 1}])
def test_non_string_family_is_rejected(service: TokenService, fam: Any) -> None:
    forged = hs_token(header(), claims(REFRESH, fam=fam), SECRET.encode())
    assert_rejected(service, forged, REFRESH)
    assert_rejected(service, hs_token(header(), claims(fam=fam), SECRET.encode()))


def test_null_family_is_rejected(service: TokenService) -> None:
    payload = {**claims(REFRESH), "fam": None}  # present but null: not "absent"
    assert_rejected(service, hs_token(header(), payload, SECRET.encode()), REFRESH)


def test_wrong_audience_is_rejected(service: TokenService) -> None:
    forged = hs_token(header(), claims(aud="other-api"), SECRET.encode())
    assert_rejected(service, forged)
    other = TokenService(hs_settings(jwt_audience="other-api"))
    assert_rejected(service, other.issue(1, ACCESS, 0)[0])


def test_wrong_issuer_is_rejected(service: TokenService) -> None:
    forged = hs_token(header(), claims(iss="evil"), SECRET.encode())
    assert_rejected(service, forged)
    other = TokenService(hs_settings(jwt_issuer="evil"))
    assert_rejected(service, other.issue(1, ACCESS, 0)[0])


def test_refresh_used_as_access_is_rejected(service: TokenService) -> None:
    token, _ = service.issue(1, REFRESH, 0, family="f")
    assert str(assert_rejected(service, token, ACCESS)) == "wrong token type, expected access"


def test_access_used_as_refresh_is_rejected(service: TokenService) -> None:
    token, _ = service.issue(1, ACCESS, 0)
    assert str(assert_rejected(service, token, REFRESH)) == "wrong token type, expected refresh"


@pytest.mark.parametrize("typ", ["Access", "id", "", None, 1, ["access"]])
def test_unknown_type_is_rejected(service: TokenService, typ: Any) -> None:
    forged = hs_token(header(), {**claims(), "typ": typ}, SECRET.encode())
    assert_rejected(service, forged)


@pytest.mark.parametrize("ver", ["1", 1.0, 1.5, True, False, None, [1], {"v": 1}])
def test_non_int_version_is_rejected(service: TokenService, ver: Any) -> None:
    payload = {**claims(), "ver": ver}
    assert_rejected(service, hs_token(header(), payload, SECRET.encode()))


@pytest.mark.parametrize("field", ["iat", "exp"])
@pytest.mark.parametrize("kind_of_value", [str, float, bool, list])
def test_non_int_times_are_rejected(service: TokenService, field: str, kind_of_value: type) -> None:
    payload = claims()
    value = payload[field]
    payload[field] = {str: str(value), float: value + 0.5, bool: True, list: [value]}[kind_of_value]
    assert_rejected(service, hs_token(header(), payload, SECRET.encode()))


@pytest.mark.parametrize("sub", ["", "abc", "-1", "1.0", "²", "\u0661", 1, None, ["1"]])
def test_bad_subject_is_rejected(service: TokenService, sub: Any) -> None:
    payload = {**claims(), "sub": sub}
    assert_rejected(service, hs_token(header(), payload, SECRET.encode()))


@pytest.mark.parametrize("jti", ["", 1, None, ["x"]])
def test_bad_jti_is_rejected(service: TokenService, jti: Any) -> None:
    payload = {**claims(), "jti": jti}
    assert_rejected(service, hs_token(header(), payload, SECRET.encode()))


@pytest.mark.parametrize("aud", [1, ["stockroom-api", 1], {"a": 1}, None])
def test_malformed_audience_is_rejected(service: TokenService, aud: Any) -> None:
    payload = {**claims(), "aud": aud}
    assert_rejected(service, hs_token(header(), payload, SECRET.encode()))


@pytest.mark.parametrize("payload", [[1, 2], "string", 1, None])
def test_signed_non_object_payload_is_rejected(service: TokenService, payload: Any) -> None:
    assert_rejected(service, hs_token(header(), payload, SECRET.encode()))


# ---------------------------------------------------------------- garbage


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "...",
        "a.b.c",
        "a.b.c.d",
        ".",
        "Bearer x",
        "é.é.é",
        "\x00\x00.\x00.\x00",
        b64url(b"not json") + "." + b64url(b"{}") + ".",
        b64url(b"[1]") + "." + b64url(b"{}") + ".",
        b64url(b'"str"') + "." + b64url(b"{}") + ".",
        segment(header()) + ".!!!.sig",
        segment(header()) + "." + b64url(b"\xff\xfe") + ".sig",
        segment(header()) + ".e30.%%%",
        segment(header()) + ".e30=.",
        "x" * 10_000,
        segment(header()) + "." + "A" * 9000 + ".",
        b64url(b"[" * 3000 + b"]" * 3000) + ".e30.",
    ],
)
def test_garbage_is_rejected(service: TokenService, token: str) -> None:
    assert str(assert_rejected(service, token)) == "invalid token"


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_rejected(service: TokenService, seed: int) -> None:
    noise = os.urandom(16 + seed * 8)
    assert_rejected(service, noise.decode("latin-1"))
    assert_rejected(service, b64url(noise) + "." + b64url(noise[::-1]) + "." + b64url(noise))


@pytest.mark.parametrize("token", [None, 1, b"a.b.c", ["a", "b", "c"]])
def test_non_string_token_is_rejected(service: TokenService, token: Any) -> None:
    assert_rejected(service, token)


def test_every_single_character_change_is_rejected_or_harmless(service: TokenService) -> None:
    """Only TokenError ever escapes; an edit base64 decodes to the same bytes is harmless."""
    token, issued = service.issue(1, ACCESS, 0)
    for i, char in enumerate(token):
        for replacement in {"A", "_", ".", "="} - {char}:
            mutated = token[:i] + replacement + token[i + 1 :]
            with contextlib.suppress(TokenError):
                assert service.decode(mutated, ACCESS) == issued


# ---------------------------------------------------------------- configuration


def test_mismatched_key_files_fail_at_start(tmp_path: Path, rsa_files: tuple[Path, Path]) -> None:
    other_private, _ = write_pems(
        tmp_path, rsa.generate_private_key(public_exponent=65537, key_size=2048), "other"
    )
    settings = Settings(
        jwt_algorithm="RS256",
        jwt_private_key_file=other_private,
        jwt_public_key_file=rsa_files[1],
        _env_file=None,
    )
    with pytest.raises(ValueError, match="matching RS256"):
        TokenService(settings)


def test_non_key_file_fails_at_start(tmp_path: Path, rsa_files: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    settings = Settings(
        jwt_algorithm="RS256",
        jwt_private_key_file=rsa_files[0],
        jwt_public_key_file=junk,
        _env_file=None,
    )
    with pytest.raises(ValueError, match="STOCKROOM_JWT_PUBLIC_KEY_FILE"):
        TokenService(settings)


def test_private_key_in_public_file_still_verifies_as_public(
    rsa_files: tuple[Path, Path],
) -> None:
    private_file, _ = rsa_files
    settings = Settings(
        jwt_algorithm="RS256",
        jwt_private_key_file=private_file,
        jwt_public_key_file=private_file,
        _env_file=None,
    )
    service = TokenService(settings)
    token, issued = service.issue(1, ACCESS, 0)
    assert service.decode(token, ACCESS) == issued


# ---------------------------------------------------------------- verified-token cache


def test_a_reused_token_is_still_judged_by_the_clock_and_its_kind() -> None:
    clock = Clock()
    service = TokenService(hs_settings(), now=clock)
    token, issued = service.issue(7, ACCESS, 0)
    assert service.decode(token, ACCESS) == issued
    assert service.decode(token, ACCESS) == issued  # from the cache
    with pytest.raises(TokenError, match="wrong token type"):
        service.decode(token, REFRESH)
    clock.t = issued.exp + LEEWAY_SECONDS + 1
    with pytest.raises(TokenError, match="expired"):
        service.decode(token, ACCESS)


def test_a_cached_token_goes_back_to_jose_once_the_wall_clock_passes_its_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # jose judges exp by the wall clock; past it, the cache must not answer for jose.
    service = TokenService(hs_settings())
    token, issued = service.issue(7, ACCESS, 0)
    verified: list[str] = []
    real_verify = service._verify
    monkeypatch.setattr(service, "_verify", lambda t: verified.append(t) or real_verify(t))
    service.decode(token, ACCESS)
    service.decode(token, ACCESS)
    assert verified == [token]  # the second use came from the cache
    monkeypatch.setattr(tokens.time, "time", lambda: issued.exp + LEEWAY_SECONDS + 1.0)
    with contextlib.suppress(TokenError):
        service.decode(token, ACCESS)
    assert verified == [token, token]


def test_a_tampered_copy_of_a_cached_token_is_refused() -> None:
    service = TokenService(hs_settings())
    token, _ = service.issue(7, ACCESS, 0)
    service.decode(token, ACCESS)
    head, payload, signature = token.split(".")
    forged_payload = segment({**json.loads(base64.urlsafe_b64decode(payload + "==")), "sub": "1"})
    for forged in (f"{head}.{forged_payload}.{signature}", f"{head}.{payload}.{signature[:-2]}AA"):
        with pytest.raises(TokenError, match="invalid token"):
            service.decode(forged, ACCESS)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 3)
    service = TokenService(hs_settings())
    issued = [service.issue(n, ACCESS, 0)[0] for n in range(1, 6)]
    for token in issued:
        service.decode(token, ACCESS)
    assert list(service._verified) == issued[-3:]
