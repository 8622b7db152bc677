"""Three ``strongroom server`` processes over one store: every write is seen by every node on its very next
request, and no in-memory cache on a node outlives a change made through another node.

The same tests run over a SQLite file shared by the three processes, a PostgreSQL schema, an etcd prefix
(the session's 3-member cluster) and a Redis prefix. Each node is unsealed by its own ceremony
(``sys/unseal`` with the same shares, tests/cluster/nodes.py). A change is made through node A and checked
through node B (and C) immediately after A's 200, with no wait and no retry: a stale cache would show up
as a wrong answer, not as a delay.

What each cache test covers (names are per test, so the tests share the module's nodes):

* mount table: enable, tune (lease TTLs, KV v1 -> v2 upgrade), disable;
* policies and the per-policy-set ACL cache: grant, narrow, delete a policy;
* token lookups: revoke, revoke a parent (the child dies), revoke by accessor, renew, use counts;
* transit: key policy (rotate, min_decryption_version, trim, delete and re-create under the same name) and
  the unwrapped material cache;
* keyring adoption (``sys/rotate``) and ``sys/rekey`` (the other nodes seal and need the new shares);
* a tenant namespace's seal, which lives in storage: sealing it through one node stops every node.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest

from tests.cluster.backends import BACKENDS, make_backend
from tests.cluster.nodes import THRESHOLD, Cluster, start_cluster

pytestmark = pytest.mark.slow

A, B, C = 0, 1, 2


@pytest.fixture(scope="module", params=BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp(f"cluster-{request.param}")
    backend = make_backend(request.param, workdir / "store")
    try:
        nodes = start_cluster(backend, workdir, 3)
        try:
            yield nodes
        finally:
            nodes.close()
    finally:
        backend.close()


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _kv2(cluster: Cluster) -> str:
    mount = _name("kv")
    cluster.ok(A, "POST", f"sys/mounts/{mount}", json={"type": "kv", "options": {"version": "2"}})
    return mount


def _token(cluster: Cluster, node: int, policies: list[str], **kw: object) -> str:
    body = cluster.ok(node, "POST", "auth/token/create", json={"policies": policies, **kw})
    token: str = body["auth"]["client_token"]
    return token


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_each_write_is_read_by_every_node_right_after_its_200(cluster: Cluster) -> None:
    mount = _kv2(cluster)
    for n in range(12):
        writer = n % 3
        body = cluster.ok(
            writer, "POST", f"{mount}/data/app/config", json={"options": {"cas": n}, "data": {"n": n}}
        )
        assert body["data"]["version"] == n + 1
        for reader in range(3):
            read = cluster.ok(reader, "GET", f"{mount}/data/app/config")
            assert read["data"]["data"] == {"n": n}, (writer, reader)
            assert read["data"]["metadata"]["version"] == n + 1
        # A new key under a directory is listed by every node at once (directory markers).
        cluster.ok(writer, "POST", f"{mount}/data/dir/k{n}", json={"data": {"v": n}})
        for reader in range(3):
            keys = cluster.ok(reader, "LIST", f"{mount}/metadata/dir")["data"]["keys"]
            assert f"k{n}" in keys and len(keys) == n + 1
    # A delete through one node is honoured by the others.
    cluster.ok(C, "DELETE", f"{mount}/metadata/dir/k0")
    assert cluster.status(A, "GET", f"{mount}/data/dir/k0") == 404
    assert "k0" not in cluster.ok(B, "LIST", f"{mount}/metadata/dir")["data"]["keys"]


def test_mount_table_changes_reach_every_node(cluster: Cluster) -> None:
    mount = _name("kv1")
    # Enabled on A: B routes to it at once.
    cluster.ok(A, "POST", f"sys/mounts/{mount}", json={"type": "kv", "options": {"version": "1"}})
    cluster.ok(B, "PUT", f"{mount}/legacy", json={"v": "one"})
    assert cluster.ok(C, "GET", f"{mount}/legacy")["data"] == {"v": "one"}
    # Tuned on A: B reports the new settings.
    cluster.ok(A, "POST", f"sys/mounts/{mount}/tune", json={"default_lease_ttl": "1h", "max_lease_ttl": "2h"})
    tune = cluster.ok(B, "GET", f"sys/mounts/{mount}/tune")
    assert (tune["data"]["default_lease_ttl"], tune["data"]["max_lease_ttl"]) == (3600, 7200)
    # Upgraded to KV v2 on A: B serves the v2 API on that mount at once (and the v1 data moved along).
    cluster.ok(A, "POST", f"sys/mounts/{mount}/tune", json={"options": {"version": "2"}})
    assert cluster.ok(B, "GET", f"{mount}/data/legacy")["data"]["data"] == {"v": "one"}
    # Disabled on A: the next request through B or C finds no mount there.
    cluster.ok(A, "DELETE", f"sys/mounts/{mount}")
    assert cluster.status(B, "GET", f"{mount}/data/legacy") == 404
    assert cluster.status(C, "PUT", f"{mount}/data/other", json={"data": {"v": 1}}) == 404
    assert f"{mount}/" not in cluster.ok(B, "GET", "sys/mounts")["data"]


def test_policy_changes_are_honoured_by_every_node(cluster: Cluster) -> None:
    mount = _kv2(cluster)
    policy = _name("pol")
    read_only = f'path "{mount}/data/app/*" {{ capabilities = ["read"] }}'
    cluster.ok(A, "PUT", f"sys/policies/acl/{policy}", json={"policy": read_only})
    cluster.ok(A, "POST", f"{mount}/data/app/x", json={"data": {"v": 1}})
    token = _token(cluster, A, [policy])
    # B builds (and caches) the ACL of that policy set.
    assert cluster.status(B, "GET", f"{mount}/data/app/x", token) == 200
    assert cluster.status(B, "POST", f"{mount}/data/app/x", token, json={"data": {"v": 2}}) == 403
    # Widened on A: B's next request uses the new policy.
    writable = f'path "{mount}/data/app/*" {{ capabilities = ["read", "create", "update"] }}'
    cluster.ok(A, "PUT", f"sys/policies/acl/{policy}", json={"policy": writable})
    assert cluster.status(B, "POST", f"{mount}/data/app/x", token, json={"data": {"v": 2}}) == 200
    # Narrowed on C: B refuses at once.
    cluster.ok(
        C, "PUT", f"sys/policies/acl/{policy}", json={"policy": 'path "other/*" { capabilities = ["read"] }'}
    )
    assert cluster.status(B, "GET", f"{mount}/data/app/x", token) == 403
    # Re-granted, then deleted on A: B refuses at once.
    cluster.ok(A, "PUT", f"sys/policies/acl/{policy}", json={"policy": read_only})
    assert cluster.status(B, "GET", f"{mount}/data/app/x", token) == 200
    cluster.ok(A, "DELETE", f"sys/policies/acl/{policy}")
    assert cluster.status(B, "GET", f"{mount}/data/app/x", token) == 403
    assert cluster.status(C, "GET", f"sys/policies/acl/{policy}") == 404


def test_token_changes_are_honoured_by_every_node(cluster: Cluster) -> None:
    # Revoked on A: B and C refuse it on the very next request.
    token = _token(cluster, A, ["default"])
    assert cluster.status(B, "GET", "auth/token/lookup-self", token) == 200
    assert cluster.status(C, "GET", "auth/token/lookup-self", token) == 200
    cluster.ok(A, "POST", "auth/token/revoke", json={"token": token})
    assert cluster.status(B, "GET", "auth/token/lookup-self", token) == 403
    assert cluster.status(C, "GET", "auth/token/lookup-self", token) == 403
    # A parent revoked on C takes the child created through B with it, on A too.
    creator = _name("creator")
    cluster.ok(A, "PUT", f"sys/policies/acl/{creator}",
               json={"policy": 'path "auth/token/create" { capabilities = ["update"] }'})  # fmt: skip
    parent = _token(cluster, A, [creator])
    body = cluster.ok(B, "POST", "auth/token/create", parent, json={"policies": ["default"]})
    child = body["auth"]["client_token"]
    assert cluster.status(A, "GET", "auth/token/lookup-self", child) == 200
    cluster.ok(C, "POST", "auth/token/revoke-self", parent)
    assert cluster.status(A, "GET", "auth/token/lookup-self", child) == 403
    # Revoked by accessor on B: A refuses.
    other = cluster.ok(A, "POST", "auth/token/create", json={"policies": ["default"]})["auth"]
    assert cluster.status(A, "GET", "auth/token/lookup-self", other["client_token"]) == 200
    cluster.ok(B, "POST", "auth/token/revoke-accessor", json={"accessor": other["accessor"]})
    assert cluster.status(A, "GET", "auth/token/lookup-self", other["client_token"]) == 403
    # Renewed on A: B reports the new TTL (not a cached entry).
    renewable = _token(cluster, A, ["default"], ttl="10m", explicit_max_ttl="10h")
    assert cluster.ok(B, "GET", "auth/token/lookup-self", renewable)["data"]["ttl"] <= 600
    cluster.ok(A, "POST", "auth/token/renew-self", renewable, json={"increment": "5h"})
    assert cluster.ok(B, "GET", "auth/token/lookup-self", renewable)["data"]["ttl"] > 3600
    # A use-limited token's uses are counted across nodes: three uses, one per node, then refused.
    limited = _token(cluster, A, ["default"], num_uses=3)
    for node in (A, B, C):
        assert cluster.status(node, "GET", "auth/token/lookup-self", limited) == 200
    assert cluster.status(B, "GET", "auth/token/lookup-self", limited) == 403


def test_transit_key_changes_are_honoured_by_every_node(cluster: Cluster) -> None:
    mount = _name("transit")
    key = _name("key")
    cluster.ok(A, "POST", f"sys/mounts/{mount}", json={"type": "transit"})
    cluster.ok(A, "POST", f"{mount}/keys/{key}")
    plain = _b64("attack at dawn")
    # B encrypts (caching the policy and the unwrapped material), A decrypts.
    v1 = cluster.ok(B, "POST", f"{mount}/encrypt/{key}", json={"plaintext": plain})["data"]["ciphertext"]
    assert v1.startswith("vault:v1:")
    assert (
        cluster.ok(A, "POST", f"{mount}/decrypt/{key}", json={"ciphertext": v1})["data"]["plaintext"] == plain
    )
    # Rotated on A: B encrypts with version 2 on its next request.
    cluster.ok(A, "POST", f"{mount}/keys/{key}/rotate")
    v2 = cluster.ok(B, "POST", f"{mount}/encrypt/{key}", json={"plaintext": plain})["data"]["ciphertext"]
    assert v2.startswith("vault:v2:")
    assert cluster.ok(C, "GET", f"{mount}/keys/{key}")["data"]["latest_version"] == 2
    # min_decryption_version raised on A: B refuses version 1 ciphertext at once.
    cluster.ok(A, "POST", f"{mount}/keys/{key}/config", json={"min_decryption_version": 2})
    assert cluster.status(B, "POST", f"{mount}/decrypt/{key}", json={"ciphertext": v1}) == 400
    # ... and lowered again on C: B decrypts it again (the material was not dropped).
    cluster.ok(C, "POST", f"{mount}/keys/{key}/config", json={"min_decryption_version": 1})
    assert (
        cluster.ok(B, "POST", f"{mount}/decrypt/{key}", json={"ciphertext": v1})["data"]["plaintext"] == plain
    )
    # Trimmed on A (version 1's material deleted): B sees it at once and refuses version 1.
    cluster.ok(
        A,
        "POST",
        f"{mount}/keys/{key}/config",
        json={"min_decryption_version": 2, "min_encryption_version": 2},
    )
    cluster.ok(A, "POST", f"{mount}/keys/{key}/trim", json={"min_available_version": 2})
    assert cluster.ok(B, "GET", f"{mount}/keys/{key}")["data"]["min_available_version"] == 2
    assert cluster.status(B, "POST", f"{mount}/decrypt/{key}", json={"ciphertext": v1}) == 400
    assert (
        cluster.ok(B, "POST", f"{mount}/decrypt/{key}", json={"ciphertext": v2})["data"]["plaintext"] == plain
    )
    # Deleted on A: B no longer decrypts with it.
    cluster.ok(A, "POST", f"{mount}/keys/{key}/config", json={"deletion_allowed": True})
    cluster.ok(A, "DELETE", f"{mount}/keys/{key}")
    assert cluster.status(B, "POST", f"{mount}/decrypt/{key}", json={"ciphertext": v2}) == 400
    assert cluster.status(C, "GET", f"{mount}/keys/{key}") == 404
    # Re-created under the same name on C: new material; B must not decrypt the old ciphertext with a
    # cached copy of the old one, and encrypts with the new key (A decrypts it).
    cluster.ok(C, "POST", f"{mount}/keys/{key}")
    assert cluster.status(B, "POST", f"{mount}/decrypt/{key}", json={"ciphertext": v2}) == 400
    fresh = cluster.ok(B, "POST", f"{mount}/encrypt/{key}", json={"plaintext": plain})["data"]["ciphertext"]
    assert fresh.startswith("vault:v1:")
    assert cluster.status(B, "POST", f"{mount}/decrypt/{key}", json={"ciphertext": v1}) == 400
    assert (
        cluster.ok(A, "POST", f"{mount}/decrypt/{key}", json={"ciphertext": fresh})["data"]["plaintext"]
        == plain
    )


def test_keyring_rotation_is_adopted_by_every_node(cluster: Cluster) -> None:
    mount = _kv2(cluster)
    term = cluster.ok(A, "GET", "sys/key-status")["data"]["term"]
    cluster.ok(A, "POST", "sys/rotate")
    # B adopts the new keyring on its next request, writes under the new term; A and C read that.
    assert cluster.ok(B, "GET", "sys/key-status")["data"]["term"] == term + 1
    cluster.ok(B, "POST", f"{mount}/data/after-rotate", json={"data": {"v": "b"}})
    for node in (A, C):
        assert cluster.ok(node, "GET", f"{mount}/data/after-rotate")["data"]["data"] == {"v": "b"}
    # Rotated again through C: A reads what B writes.
    cluster.ok(C, "POST", "sys/rotate/keyring")
    cluster.ok(B, "POST", f"{mount}/data/after-rotate", json={"data": {"v": "b2"}})
    assert cluster.ok(A, "GET", f"{mount}/data/after-rotate")["data"]["data"] == {"v": "b2"}
    assert cluster.ok(A, "GET", "sys/key-status")["data"]["term"] == term + 2


def test_platform_seal_is_per_node(cluster: Cluster) -> None:
    # sys/seal seals the node it reaches (each node has its own ceremony); the others keep serving.
    cluster.ok(B, "PUT", "sys/seal")
    assert cluster.status(B, "GET", "sys/mounts") == 503
    assert cluster.status(A, "GET", "sys/mounts") == 200
    assert cluster.ok(C, "GET", "sys/seal-status", token="")["sealed"] is False
    cluster.unseal(B)
    assert cluster.status(B, "GET", "sys/mounts") == 200


def test_tenant_seal_stops_every_node(cluster: Cluster) -> None:
    name = _name("tenant")
    seal = 'seal "shamir" { shares = 3 threshold = 2 }'
    data = cluster.ok(A, "POST", f"sys/namespaces/{name}", json={"seal": seal})["data"]
    path, keys = data["path"], data["key_shares"]
    ns = {"X-Vault-Namespace": path}
    # The tenant's ceremonies inside it need its Administrator biscuit, issued by the platform.
    admin = cluster.ok(A, "POST", "sys/iam/tokens", json={"tenant": path, "role": "admin"})["data"]["token"]
    # Unseal progress lives in storage: one share through B, the second through C.
    for node, share in zip((B, C), keys[:2], strict=True):
        body = cluster.ok(node, "PUT", "sys/unseal", token=admin, json={"key": share}, headers=ns)
    assert body["sealed"] is False
    # The tenant's first root token: generate-root inside it (creation makes none), shares through B and C.
    started = cluster.ok(A, "PUT", "sys/generate-root/attempt", token=admin, json={}, headers=ns)
    for node, share in zip((B, C), keys[:2], strict=True):
        body = cluster.ok(node, "PUT", "sys/generate-root/update", token=admin,
                          json={"key": share, "nonce": started["nonce"]}, headers=ns)  # fmt: skip
    decode = {"encoded_token": body["encoded_token"], "otp": started["otp"]}
    root = cluster.ok(A, "PUT", "sys/decode-token", token=admin, json=decode, headers=ns)["data"]["token"]
    cluster.ok(
        A, "POST", "sys/mounts/secret", root, json={"type": "kv", "options": {"version": "2"}}, headers=ns
    )
    cluster.ok(B, "POST", "secret/data/t", root, json={"data": {"v": 1}}, headers=ns)
    assert cluster.ok(C, "GET", "secret/data/t", root, headers=ns)["data"]["data"] == {"v": 1}
    # Sealed through A: B and C stop serving it on their next request.
    cluster.ok(A, "PUT", "sys/seal", root, headers=ns)
    assert cluster.status(B, "GET", "secret/data/t", root, headers=ns) == 503
    assert cluster.status(C, "POST", "secret/data/t", root, json={"data": {"v": 2}}, headers=ns) == 503
    # Unsealed through C: A serves it again.
    for share in keys[:2]:
        cluster.ok(C, "PUT", "sys/unseal", token=admin, json={"key": share}, headers=ns)
    assert cluster.ok(A, "GET", "secret/data/t", root, headers=ns)["data"]["data"] == {"v": 1}


def test_rekey_seals_the_other_nodes_until_they_use_the_new_shares(cluster: Cluster) -> None:
    """Last in this module: it changes the cluster's shares (and records the new ones)."""
    init = cluster.ok(A, "PUT", "sys/rekey/init", json={"secret_shares": 3, "secret_threshold": THRESHOLD})
    body: dict[str, object] = {}
    for key in cluster.keys[:THRESHOLD]:
        body = cluster.ok(A, "PUT", "sys/rekey/update", json={"key": key, "nonce": init["nonce"]})
    assert body["complete"] is True
    new_keys = body["keys"]
    assert isinstance(new_keys, list)
    # A goes on serving; B and C hold the old root key: they seal on their next request instead of serving.
    assert cluster.status(A, "GET", "sys/mounts") == 200
    for node in (B, C):
        assert cluster.status(node, "GET", "sys/mounts") == 503
        assert cluster.ok(node, "GET", "sys/seal-status", token="")["sealed"] is True
    # The old shares no longer unseal them; the new ones do.
    r = cluster.call(B, "PUT", "sys/unseal", token="", json={"key": cluster.keys[0]})
    r = cluster.call(B, "PUT", "sys/unseal", token="", json={"key": cluster.keys[1]})
    assert r.status_code != 200 or r.json()["sealed"] is True
    cluster.call(B, "PUT", "sys/unseal", token="", json={"reset": True})
    cluster.keys = [str(k) for k in new_keys]
    for node in (B, C):
        cluster.unseal(node)
        assert cluster.status(node, "GET", "sys/mounts") == 200


def test_nodes_logged_no_server_error(cluster: Cluster) -> None:
    """Nothing above made a node log a traceback (a 500 would have failed its test already)."""
    logs = cluster.logs()
    assert "Traceback" not in logs, logs
