"""SecretBytes and constant-time comparison."""

from __future__ import annotations

import copy
import hmac
import pickle

import pytest

from strongroom.crypto.secret import SecretBytes, constant_time_equal

RAW = bytes.fromhex("deadbeef" * 8)


def test_reveal_returns_the_bytes() -> None:
    assert SecretBytes(RAW).reveal() == RAW
    assert type(SecretBytes(bytearray(RAW)).reveal()) is bytes


def test_value_is_copied_from_mutable_input() -> None:
    buffer = bytearray(RAW)
    s = SecretBytes(buffer)
    buffer[0] ^= 0xFF
    assert s.reveal() == RAW


@pytest.mark.parametrize(
    "render",
    [
        repr,
        str,
        lambda s: f"{s}",
        lambda s: f"{s!r}",
        lambda s: "%s" % (s,),  # noqa: UP031 - the %-operator is a rendering path of its own
        lambda s: format(s, "x"),
        lambda s: str([s]),
        lambda s: str({"k": s}),
    ],
)
def test_no_rendering_shows_the_value(render: object) -> None:
    s = SecretBytes(RAW, kind="root key")
    text = render(s)  # type: ignore[operator]
    assert "deadbeef" not in text.lower()
    assert "\\xde" not in text
    assert "root key" in text
    assert "32" in text


def test_kind_and_length() -> None:
    s = SecretBytes(RAW, kind="kek")
    assert s.kind == "kek"
    assert len(s) == 32


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_is_refused(protocol: int) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(SecretBytes(RAW), protocol=protocol)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps({"nested": [SecretBytes(RAW)]}, protocol=protocol)


def test_reduce_and_getstate_raise() -> None:
    s = SecretBytes(RAW)
    with pytest.raises(TypeError):
        s.__reduce__()
    with pytest.raises(TypeError):
        s.__getstate__()


def test_copy_returns_the_same_immutable_object() -> None:
    s = SecretBytes(RAW)
    assert copy.copy(s) is s
    assert copy.deepcopy([s])[0] is s


def test_immutable_and_no_dict() -> None:
    s = SecretBytes(RAW)
    with pytest.raises(AttributeError):
        s._value = b"x"
    with pytest.raises(AttributeError):
        del s._value
    with pytest.raises(TypeError):
        vars(s)


def test_equality_uses_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    # secret.py calls hmac.compare_digest through the module, so patching the module attribute catches it.
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert SecretBytes(RAW) == SecretBytes(bytes(RAW))
    assert SecretBytes(RAW) != SecretBytes(RAW[:-1] + b"\x00")
    assert len(calls) == 2


def test_equality_semantics() -> None:
    assert SecretBytes(RAW, kind="a") == SecretBytes(RAW, kind="b")
    assert SecretBytes(RAW) != SecretBytes(RAW[:16])
    # Never equal to the raw bytes: comparing against a revealed value must be deliberate.
    assert SecretBytes(RAW) != RAW
    assert not (SecretBytes(RAW) == RAW)  # noqa: SIM201


def test_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(SecretBytes(RAW))
    with pytest.raises(TypeError):
        {SecretBytes(RAW)}


def test_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        SecretBytes("deadbeef")  # type: ignore[arg-type]


def test_constant_time_equal() -> None:
    assert constant_time_equal(b"abc", b"abc")
    assert not constant_time_equal(b"abc", b"abd")
    assert not constant_time_equal(b"abc", b"abcd")
    assert constant_time_equal(b"", b"")
