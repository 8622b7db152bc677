"""random and hash over the API: NIST/FIPS digests, Vault's path parsing, bounds and messages."""

from __future__ import annotations

import base64

import pytest

from tests.engines.transit.conftest import b64, unb64
from tests.support.vault import InProcessVault

TWO_BLOCKS = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
A3_X200 = b"\xa3" * 200

# SHA-2: the examples of FIPS 180-2 (appendices B, C, D: "abc", the 448-bit two-block message, and one
# million "a"; the empty message from NIST's published examples). SHA-3: NIST's FIPS 202 examples (the
# empty message and 1600 bits of 0xa3) and the "abc" values published with them.
VECTORS: list[tuple[str, bytes, str]] = [
    ("sha2-224", b"abc", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
    ("sha2-224", TWO_BLOCKS, "75388b16512776cc5dba5da1fd890150b0c6455cb4f58b1952522525"),
    ("sha2-224", b"", "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"),
    ("sha2-256", b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("sha2-256", TWO_BLOCKS, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ("sha2-256", b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("sha2-256", b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ("sha2-384", b"abc", "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
                         "8086072ba1e7cc2358baeca134c825a7"),
    ("sha2-384", TWO_BLOCKS, "3391fdddfc8dc7393707a65b1b4709397cf8b1d162af05abfe8f450de5f36bc6"
                             "b0455a8520bc4e6f5fe95b1fe3c8452b"),
    ("sha2-512", b"abc", "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                         "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
    ("sha2-512", TWO_BLOCKS, "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335"
                             "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445"),
    ("sha2-512", b"", "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                      "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
    ("sha3-224", b"", "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7"),
    ("sha3-224", A3_X200, "9376816aba503f72f96ce7eb65ac095deee3be4bf9bbc2a1cb7e11e0"),
    ("sha3-224", b"abc", "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"),
    ("sha3-256", b"", "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"),
    ("sha3-256", A3_X200, "79f38adec5c20307a98ef76e8324afbfd46cfd81b22e3973c65fa1bd9de31787"),
    ("sha3-256", b"abc", "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
    ("sha3-384", b"", "0c63a75b845e4f7d01107d852e4c2485c51a50aaaa94fc61995e71bbee983a2a"
                      "c3713831264adb47fb6bd1e058d5f004"),
    ("sha3-384", A3_X200, "1881de2ca7e41ef95dc4732b8f5f002b189cc1e42b74168ed1732649ce1dbcdd"
                          "76197a31fd55ee989f2d7050dd473e8f"),
    ("sha3-512", b"", "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a6"
                      "15b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26"),
    ("sha3-512", A3_X200, "e76dfad22084a8b1467fcf2ffa58361bec7628edf5f3fdc0e4805dc48caeeca8"
                          "1b7c13c30adf52a3659584739a2df46be589c51ca1a4a8416df6545a1ce8ba00"),
    ("sha3-512", b"abc", "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
                         "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0"),
]


async def _error(v: InProcessVault, path: str, **body: object) -> str:
    r = await v.call("POST", path, json=body)
    assert r.status_code == 400, r.text
    errors: list[str] = r.json()["errors"]
    assert len(errors) == 1
    return errors[0]


# -- hash ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("algorithm", "message", "expected"), VECTORS,
                         ids=[f"{a}-{len(m)}B" for a, m, _ in VECTORS])
async def test_hash_vectors(transit: InProcessVault, algorithm: str, message: bytes, expected: str) -> None:
    body = await transit.ok("POST", "transit/hash", json={"input": b64(message), "algorithm": algorithm})
    assert body["data"]["sum"] == expected
    body = await transit.ok("POST", f"transit/hash/{algorithm}", json={"input": b64(message), "format": "base64"})
    assert body["data"]["sum"] == base64.b64encode(bytes.fromhex(expected)).decode()


async def test_hash_defaults_and_path_precedence(transit: InProcessVault) -> None:
    abc = b64("abc")
    body = await transit.ok("POST", "transit/hash", json={"input": abc})
    assert body["data"]["sum"] == VECTORS[3][2]  # sha2-256, hex
    # The algorithm in the path wins over the body's.
    body = await transit.ok("POST", "transit/hash/sha2-224", json={"input": abc, "algorithm": "sha2-512"})
    assert body["data"]["sum"] == VECTORS[0][2]
    # A body parameter named like the path part is ignored, with OpenBao's warning.
    body = await transit.ok("POST", "transit/hash", json={"input": abc, "urlalgorithm": "sha3-512"})
    assert body["data"]["sum"] == VECTORS[3][2]
    assert body["warnings"] == [
        "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: "
        "[urlalgorithm]"
    ]


async def test_hash_input_missing_or_empty(transit: InProcessVault) -> None:
    assert await _error(transit, "transit/hash") == "input missing"
    # An explicit null is an empty input, as in Vault.
    body = await transit.ok("POST", "transit/hash", json={"input": None})
    assert body["data"]["sum"] == VECTORS[5][2]


async def test_hash_errors_in_vaults_order(transit: InProcessVault) -> None:
    assert await _error(transit, "transit/hash", input="YWJ") == (
        "unable to decode input as base64: illegal base64 data at input byte 0"
    )
    assert await _error(transit, "transit/hash", input="YW!j") == (
        "unable to decode input as base64: illegal base64 data at input byte 2"
    )
    assert await _error(transit, "transit/hash", input="YWJj", format="b32") == (
        'unsupported encoding format b32; must be "hex" or "base64"'
    )
    assert (await _error(transit, "transit/hash/md5", input="YW", format="x")).startswith("unable to decode")
    assert (await _error(transit, "transit/hash/md5", input="YWJj", format="x")).startswith("unsupported encoding")
    for name in ("md5", "sha1", "none", "sha2-999"):
        assert await _error(transit, f"transit/hash/{name}", input="YWJj") == f"unsupported algorithm {name}"
    assert await _error(transit, "transit/hash", input="YWJj", algorithm="") == "unsupported algorithm "
    assert await _error(transit, "transit/hash/a/b", input="YWJj") == "unsupported algorithm a/b"


async def test_hash_is_update_only(transit: InProcessVault) -> None:
    assert (await transit.call("GET", "transit/hash")).status_code == 405


# -- random -------------------------------------------------------------------------------------------


async def _random(v: InProcessVault, path: str = "transit/random", **body: object) -> tuple[bytes, list[str] | None]:
    data = await v.ok("POST", path, json=body)
    text = data["data"]["random_bytes"]
    fmt = body.get("format", "base64")
    raw = bytes.fromhex(text) if fmt == "hex" else unb64(text)
    return raw, data["warnings"]


async def test_random_defaults(transit: InProcessVault) -> None:
    first, warnings = await _random(transit)
    second, _ = await _random(transit)
    assert len(first) == 32 and len(second) == 32 and first != second
    assert warnings is None


@pytest.mark.parametrize("source", ["platform", "seal", "all"])
async def test_random_sources_and_sizes_in_the_path(transit: InProcessVault, source: str) -> None:
    raw, warnings = await _random(transit, f"transit/random/{source}", format="hex")
    assert len(raw) == 32
    raw, _ = await _random(transit, f"transit/random/{source}/24", format="hex")
    assert len(raw) == 24
    # Without entropy augmentation, "seal" says it used the platform source (as OpenBao does).
    expected = ["no seal/entropy augmentation available, using platform entropy source"] if source == "seal" else None
    assert warnings == expected


async def test_random_size_from_path_or_body(transit: InProcessVault) -> None:
    assert len((await _random(transit, "transit/random/24", format="hex"))[0]) == 24
    assert len((await _random(transit, "transit/random", bytes=7))[0]) == 7
    assert len((await _random(transit, "transit/random/5", bytes=7))[0]) == 5
    assert len((await _random(transit, "transit/random/007"))[0]) == 7
    assert len((await _random(transit, "transit/random/platform", bytes="12"))[0]) == 12
    # Vault's pattern reads a count only after a part that is a valid name: "-3" and "+5" are not, so
    # they are ignored and the body's count (default 32) applies.
    assert len((await _random(transit, "transit/random/-3"))[0]) == 32
    assert len((await _random(transit, "transit/random/+5"))[0]) == 32


async def test_random_bounds(transit: InProcessVault) -> None:
    for body in ({"bytes": 0}, {"bytes": -1}):
        assert await _error(transit, "transit/random", **body) == "'bytes' cannot be less than 1"
    assert await _error(transit, "transit/random/0") == "'bytes' cannot be less than 1"
    assert await _error(transit, "transit/random/platform/-3") == "'bytes' cannot be less than 1"
    assert await _error(transit, "transit/random", bytes=131073) == "'bytes' should be less than 131072"
    raw, _ = await _random(transit, "transit/random", bytes=131072, format="hex")
    assert len(raw) == 131072


async def test_random_refusals(transit: InProcessVault) -> None:
    assert await _error(transit, "transit/random", format="base92") == (
        'unsupported encoding format "base92"; must be "hex" or "base64"'
    )
    assert await _error(transit, "transit/random", format="") == (
        'unsupported encoding format ""; must be "hex" or "base64"'
    )
    assert await _error(transit, "transit/random/foo/4") == (
        'unsupported entropy source "foo"; must be "platform" or "seal", or "all"'
    )
    assert await _error(transit, "transit/random/5/6") == (
        'unsupported entropy source "5"; must be "platform" or "seal", or "all"'
    )
    # The count is judged before the source.
    assert await _error(transit, "transit/random/foo/0") == "'bytes' cannot be less than 1"
    parse = "error parsing url-set byte count: strconv.Atoi: parsing "
    assert await _error(transit, "transit/random/abc") == parse + '"abc": invalid syntax'
    assert await _error(transit, "transit/random/platform/abc") == parse + '"abc": invalid syntax'
    assert await _error(transit, "transit/random/a/b/c") == parse + '"b/c": invalid syntax'
    assert await _error(transit, "transit/random/99999999999999999999") == (
        parse + '"99999999999999999999": value out of range'
    )
    r = await transit.call("POST", "transit/random/platform", json={"bytes": 12.5})
    assert r.status_code == 400


async def test_random_body_source_is_ignored_with_a_warning(transit: InProcessVault) -> None:
    raw, warnings = await _random(transit, "transit/random", source="bogus", urlbytes="5")
    assert len(raw) == 32
    assert warnings == [
        "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: "
        "[source urlbytes]"
    ]
    raw, warnings = await _random(transit, "transit/random/seal/3", source="all")
    assert len(raw) == 3
    assert warnings is not None and len(warnings) == 2 and warnings[1].endswith("[source]")


async def test_random_path_acl_restricts_the_source(transit: InProcessVault) -> None:
    await transit.ok("POST", "sys/policies/acl/platform-only",
                     json={"policy": 'path "transit/random/platform/*" { capabilities = ["update"] }'})
    token = await transit.token(["platform-only"])
    await transit.ok("POST", "transit/random/platform/16", token)
    assert (await transit.call("POST", "transit/random/seal/16", token)).status_code == 403
    assert (await transit.call("POST", "transit/random", token)).status_code == 403
