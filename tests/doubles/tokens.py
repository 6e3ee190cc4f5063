"""Minimal HS256 JWTs shared by the identity double (mints) and the Key Vault double (verifies).

Both doubles read the same per-stack signing key file, so a token is valid exactly when it was issued by
this stack's identity endpoint. Only what the doubles need is implemented: no key rotation, no other
algorithms.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

KEY_BYTES = 32
_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(Exception):
    """The token is malformed, forged, expired or meant for another audience."""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ensure_key_file(path: Path) -> bytes:
    """Create the signing key file once (mode 0600) and return the key; reuse an existing one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL so two concurrent starters cannot end up with different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_key(path)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(KEY_BYTES))
    return load_key(path)


def load_key(path: Path) -> bytes:
    """Read a signing key written by ensure_key_file."""
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < KEY_BYTES:
        raise TokenError(f"signing key in {path} is too short")
    return key


def _sign(key: bytes, signing_input: bytes) -> str:
    return _b64encode(hmac.new(key, signing_input, hashlib.sha256).digest())


def mint(key: bytes, claims: dict[str, Any]) -> str:
    """Return a compact HS256 JWT carrying the given claims."""
    header = _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{_sign(key, signing_input)}"


def verify(key: bytes, token: str, audience: str, now: float | None = None) -> dict[str, Any]:
    """Check signature, audience and expiry; return the claims or raise TokenError."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token is not a compact JWT")
    header_b64, payload_b64, signature = parts
    # The algorithm is fixed rather than read from the header, so "alg": "none" tricks cannot apply.
    expected = _sign(key, f"{header_b64}.{payload_b64}".encode("ascii"))
    if not hmac.compare_digest(expected, signature):
        raise TokenError("token signature is invalid")
    try:
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(payload_b64))
    except ValueError as exc:
        raise TokenError("token is not valid JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise TokenError("token algorithm is not HS256")
    if not isinstance(claims, dict):
        raise TokenError("token claims are not an object")
    if claims.get("aud") != audience:
        raise TokenError(f"token audience is not {audience}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= (time.time() if now is None else now):
        raise TokenError("token is expired")
    return claims
