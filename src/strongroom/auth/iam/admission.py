"""Which attenuation blocks the server agrees to evaluate (docs/spec/tokens.md section 5, "Cost bound").

biscuit-python 0.4.0's time limit is only looked at between rule iterations, not while one check is being
matched: a check such as ``check if a($w), a($x), a($y), a($z), ...`` over a few dozen ``a`` facts ran for
minutes of CPU in a test, while the 20 ms limit was set. Any token holder can append such a block, so
before the first evaluation the server reads the blocks the holder added (from the signed protobuf, not
from the printed Datalog, whose strings are not escaped) and refuses:

* rules (they make new facts, so no bound on what a check may join over could be stated beforehand);
* closures (``.any``/``.all``: nested ones multiply set sizes);
* a total matching cost above :data:`COST_BUDGET`, where a check alternative's cost is the product, over
  its predicates, of how many facts could carry that predicate's name.

The authority block is the issuer's and is not limited. A refused token is ``PermissionDenied`` like any
other invalid token. The wire format is biscuit's ``schema.proto`` (format v3).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

COST_BUDGET = 4096
"""Upper bound of fact combinations matched per request (~1 µs each in biscuit-python 0.4.0)."""

# Facts the server adds (ambient) and the issuer writes (authority): at most one each per name.
_FIXED_FACTS_PER_NAME = 2

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class Refused(ValueError):
    """The token's attenuation blocks are outside what the server evaluates."""


def check_blocks(serialized: bytes) -> int | None:
    """Refuse a token whose attenuation blocks could make authorization expensive (module docstring);
    return the root key id the token names (``None`` if none).

    ``serialized`` is the token's protobuf. This reads structure only and may run before the signatures
    are verified: biscuit then verifies these same bytes.

    Raises:
        Refused: a rule, a closure, or a cost above the budget in a non-authority block.
        ValueError: the bytes are not a biscuit's protobuf.
    """
    first_party: list[bytes] = []
    third_party: list[bytes] = []
    root_key_id: int | None = None
    for number, value in _fields(serialized):
        if number == 1 and isinstance(value, int):  # Biscuit.rootKeyId
            root_key_id = value
        if number == 3 and isinstance(value, bytes):  # Biscuit.blocks: SignedBlock
            block, external = b"", False
            for field, inner in _fields(value):
                if field == 1 and isinstance(inner, bytes):
                    block = inner
                elif field == 4:  # externalSignature: a third-party block with its own symbol table
                    external = True
            (third_party if external else first_party).append(block)
    declared: Counter[int] = Counter()
    foreign_facts = 0
    for block in first_party:
        declared.update(_fact_names(block))
    for block in third_party:
        foreign_facts += sum(1 for _ in _fact_names(block))
    total_facts = sum(declared.values()) + foreign_facts + _FIXED_FACTS_PER_NAME
    cost = 0
    for block in first_party:
        for body in _check_bodies(block):
            cost += math.prod(declared[name] + foreign_facts + _FIXED_FACTS_PER_NAME for name in body)
    for block in third_party:  # its symbol ids mean other names: assume every fact may match
        for body in _check_bodies(block):
            cost += total_facts ** len(body)
    if cost > COST_BUDGET:
        raise Refused("attenuation checks too costly")
    return root_key_id


def _fact_names(block: bytes) -> Iterator[int]:
    for number, value in _fields(block):
        if number == 5:  # Block.rules_v2
            raise Refused("rules in an attenuation block")
        if number == 4 and isinstance(value, bytes):  # Block.facts_v2 -> FactV2.predicate
            yield from (_predicate_name(p) for f, p in _fields(value) if f == 1 and isinstance(p, bytes))


def _check_bodies(block: bytes) -> Iterator[list[int]]:
    """The predicate names of every query (``or`` alternative) of every check in ``block``."""
    for number, check in _fields(block):
        if number != 6 or not isinstance(check, bytes):  # Block.checks_v2
            continue
        for field, query in _fields(check):
            if field != 1 or not isinstance(query, bytes):  # CheckV2.queries: RuleV2
                continue
            body: list[int] = []
            for rule_field, part in _fields(query):
                if rule_field == 2 and isinstance(part, bytes):  # RuleV2.body
                    body.append(_predicate_name(part))
                elif rule_field == 3 and isinstance(part, bytes):  # RuleV2.expressions
                    _refuse_closures(part)
            yield body


def _refuse_closures(expression: bytes) -> None:
    for field, op in _fields(expression):  # ExpressionV2.ops
        if field == 1 and isinstance(op, bytes) and any(f == 4 for f, _ in _fields(op)):  # Op.closure
            raise Refused("closures in an attenuation block")


def _predicate_name(predicate: bytes) -> int:
    for field, value in _fields(predicate):
        if field == 1 and isinstance(value, int):
            return value
    raise ValueError("predicate without a name")


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Decode one protobuf message level: (field number, varint value or length-delimited bytes)."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == _LEN:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            yield number, data[pos:pos + length]
            pos += length
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
            if pos > end:
                raise ValueError("truncated field")
        else:
            raise ValueError("unsupported wire type")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
