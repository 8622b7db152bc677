"""A second, deliberately different Shamir implementation, used only to check strongroom's.

strongroom.crypto.shamir multiplies with shifts on all bytes at once (SWAR lanes). This one works one byte
at a time through log/antilog tables built from the generator 0x03 of GF(2^8) mod 0x11b, and interpolates
with the textbook Lagrange formula. Agreement of the two on known-answer vectors is the "generate with one,
verify with another" check; agreement with OpenBao is tested separately.

Run ``.venv/bin/python -m tests.crypto.shamir_reference`` to regenerate ``vectors/shamir_kat.json``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

EXP = [0] * 510
LOG = [0] * 256


def _build_tables() -> None:
    value = 1
    for power in range(255):
        EXP[power] = value
        LOG[value] = power
        # value * 3 = value * 2 + value, with the AES reduction for the doubling.
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= 0x11B
        value = doubled ^ value
    for power in range(255, 510):
        EXP[power] = EXP[power - 255]


_build_tables()


def mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError
    if a == 0:
        return 0
    return EXP[(LOG[a] - LOG[b]) % 255]


def evaluate(coefficients: list[int], x: int) -> int:
    """sum(c_k * x^k), computed term by term with running powers (not Horner, unlike the production code)."""
    total, power = 0, 1
    for c in coefficients:
        total ^= mul(c, power)
        power = mul(power, x)
    return total


def reference_split(secret: bytes, xs: list[int], coefficient_rows: list[bytes]) -> list[bytes]:
    shares = []
    for x in xs:
        ys = [evaluate([byte] + [row[i] for row in coefficient_rows], x) for i, byte in enumerate(secret)]
        shares.append(bytes(ys) + bytes([x]))
    return shares


def reference_combine(shares: list[bytes]) -> bytes:
    xs = [s[-1] for s in shares]
    out = []
    for i in range(len(shares[0]) - 1):
        total = 0
        for a, share in enumerate(shares):
            term = share[i]
            for b in range(len(shares)):
                if a != b:
                    term = mul(term, div(xs[b], xs[a] ^ xs[b]))
            total ^= term
        out.append(total)
    return bytes(out)


def _cases() -> list[dict[str, object]]:
    rng = random.Random(20261126)  # fixed seed: the file must be reproducible

    def case(name: str, secret: bytes, xs: list[int], threshold: int) -> dict[str, object]:
        rows = [bytes(rng.randrange(256) for _ in secret) for _ in range(threshold - 1)]
        shares = reference_split(secret, xs, rows)
        return {
            "name": name,
            "secret": secret.hex(),
            "threshold": threshold,
            "x_coordinates": xs,
            "coefficients": [row.hex() for row in rows],
            "shares": [s.hex() for s in shares],
        }

    return [
        case("one byte, 2 of 2, x = 1 and 255", b"\x2a", [1, 255], 2),
        case("32-byte key, 3 of 5", bytes(range(32)), [17, 3, 200, 96, 129], 3),
        case("all-ones secret, 4 of 6", b"\xff" * 16, [255, 254, 2, 1, 128, 64], 4),
        case("zero secret, 2 of 3", b"\x00" * 8, [7, 8, 9], 2),
        case("two bytes, 255 of 255", b"\x5a\xa5", rng.sample(range(1, 256), 255), 255),
        {
            **case("zero coefficients give constant shares", b"\x10\x20", [5, 6, 7], 3),
            "coefficients": ["0000", "0000"],
            "shares": ["102005", "102006", "102007"],
        },
    ]


if __name__ == "__main__":
    document = {
        "description": "Shamir known-answer vectors: fixed x-coordinates and coefficients; shares computed "
        "by tests/crypto/shamir_reference.py (log/antilog tables), checked against strongroom.crypto.shamir. "
        "coefficients[d][i] is the coefficient of x^(d+1) for secret byte i; each share is y-values || x.",
        "field": "GF(2^8) mod x^8+x^4+x^3+x+1 (0x11b)",
        "cases": _cases(),
    }
    path = Path(__file__).parent / "vectors" / "shamir_kat.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
