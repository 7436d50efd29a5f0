"""API keys: `sk-` plus 48 random characters, stored only as a SHA-256 digest and a short prefix.

A fast hash is right here (unlike passwords): the key carries 192 random bits, so it cannot be guessed,
and a lookup by digest keeps per-request authentication at one indexed read.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "sk-"
_BODY_LENGTH = 48
_VISIBLE = 8


def generate() -> str:
    return PREFIX + secrets.token_hex(_BODY_LENGTH // 2)


def looks_like_key(value: str) -> bool:
    return value.startswith(PREFIX) and len(value) == len(PREFIX) + _BODY_LENGTH


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def visible_prefix(key: str) -> str:
    return key[: len(PREFIX) + _VISIBLE]


def masked(prefix: str) -> str:
    return f"{prefix}{'*' * 8}"
