"""What signing in and checking a token cost, side by side with the alternatives we chose against.

- Password hashing: our argon2id parameters (t=2, m=19 MiB, p=1: OWASP's recommended minimum, sized
  for a 1-2 vCPU Lambda) next to argon2-cffi's defaults (t=3, m=64 MiB, p=4).
- Per-request credential checks: HS256 JWT decode with every claim verified, and the SHA-256 digest
  an API key lookup needs, next to a password verify (what checking a credential per request would
  cost if we had not issued tokens).
Usage: .venv/bin/python bench/auth_costs.py [iterations]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

from argon2 import PasswordHasher as Argon2Defaults

from stratus.security import api_keys
from stratus.security.passwords import PasswordHasher
from stratus.security.tokens import TokenCodec


def timed(fn: Callable[[], object], iterations: int) -> float:
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    ours, defaults = PasswordHasher(), Argon2Defaults()
    ours_hash, default_hash = ours.hash("correct horse battery"), defaults.hash("correct horse battery")
    codec = TokenCodec("bench-secret-0123456789abcdef0123456789", access_ttl_s=1800, refresh_ttl_s=86400)
    token = codec.issue("656f1f77bcf86cd799439011", "access", family="f").token
    key = api_keys.generate()

    rows = [
        ("argon2id hash", timed(lambda: ours.hash("pw-123456"), iterations),
         timed(lambda: defaults.hash("pw-123456"), iterations)),
        ("argon2id verify (login)", timed(lambda: ours.verify(ours_hash, "correct horse battery"), iterations),
         timed(lambda: defaults.verify(default_hash, "correct horse battery"), iterations)),
        ("JWT decode + claim checks", timed(lambda: codec.decode(token, "access"), iterations * 50), None),
        ("API key digest (SHA-256)", timed(lambda: api_keys.digest(key), iterations * 50), None),
    ]  # fmt: skip
    print(f"{'operation':<28}{'Stratus (ms)':>14}{'argon2-cffi defaults (ms)':>28}")
    for label, ours_s, baseline_s in rows:
        baseline = f"{baseline_s * 1000:.3f}" if baseline_s is not None else "-"
        print(f"{label:<28}{ours_s * 1000:>14.3f}{baseline:>28}")
    verify_ms = rows[1][1] * 1000
    jwt_ms = rows[2][1] * 1000
    print(f"a token check is {verify_ms / jwt_ms:,.0f}x cheaper than verifying the password on every request")


if __name__ == "__main__":
    main()
