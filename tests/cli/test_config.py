"""The server config file parser: sample files, every error path, and flag merging."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from strongroom.cli.config import (
    STORAGE_KINDS,
    ServerConfig,
    StorageKind,
    load_config,
    merge_flags,
    parse_config,
    register_storage,
    storage_secret,
)
from strongroom.errors import InvalidRequest

DATA = Path(__file__).parent / "data"


def test_full_hcl_file() -> None:
    config = load_config(DATA / "full.hcl")
    assert config == ServerConfig(
        listen_address="0.0.0.0:8200",
        tls_cert_file="/etc/strongroom/tls.crt",
        tls_key_file="/etc/strongroom/tls.key",
        tls_disable=False,
        storage_url="sqlite:////var/lib/strongroom/strongroom.db",
        storage_type="sqlite",
        storage_options={"path": "/var/lib/strongroom/strongroom.db"},
        api_addr="https://kms.example.com:8200",
        ui=True,
        log_level="debug",
        max_request_size=1048576,
        seal_type="shamir",
        seal_options={},
        disable_mlock=True,
        source=str(DATA / "full.hcl"),
        warnings=(),
    )


def test_vault_style_file_loads_with_warnings() -> None:
    config = load_config(DATA / "vault-style.hcl")
    assert config.storage_url == "memory://"
    assert config.storage_type == "memory"
    assert config.listen_address == "127.0.0.1:8201"
    assert config.tls_disable is True  # the string "true", as Vault's parseutil accepts
    assert config.seal_type is None
    joined = "\n".join(config.warnings)
    assert "cluster_addr" in joined
    assert "telemetry" in joined
    # Honoured, not ignored: it switches Vault's unauthenticated sys/rekey back on.
    assert "disable_unauthed_rekey_endpoints" not in joined
    assert config.disable_unauthed_rekey_endpoints is False


def test_json_file_with_relative_sqlite_path() -> None:
    config = load_config(DATA / "relative.json")
    assert config.storage_url == "sqlite:///data/strongroom.db"
    assert config.listen_address == "127.0.0.1:9200"
    assert config.tls_disable is True
    assert config.log_level == "warn"


def test_defaults_when_empty() -> None:
    config = parse_config("", "empty.hcl")
    assert config.listen_address is None
    assert config.storage_url is None
    assert config.tls_disable is False
    assert config.ui is False


def test_listener_without_address_gets_vaults_default() -> None:
    assert parse_config('listener "tcp" {}').listen_address == "127.0.0.1:8200"


def test_config_is_frozen() -> None:
    config = parse_config('storage "sqlite" { path = "x.db" }')
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.ui = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.storage_options["path"] = "other"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('storage "s3" {}', 'storage "s3" is not supported (supported: etcd, inmem, memory, postgresql, redis, sqlite)'),
        ('storage "sqlite" {}', 'storage "sqlite" needs a path'),
        ('storage "sqlite" { path = ["a"] }', "path must be a string"),
        ('storage "sqlite" { path = "a" password = "x" }', "use password_file"),
        ('listener "tcp" { address = "a:1" }\nlistener "tcp" { address = "b:2" }', "only one listener block"),
        ('storage "sqlite" { path = "a" }\nstorage "inmem" {}', "only one storage block"),
        ('storage "sqlite" { path = "a" }\nbackend "inmem" {}', "either storage or backend"),
        ('listener "unix" { address = "/tmp/s" }', 'listener "unix" is not supported'),
        ('listener "tcp" { tls_require_and_verify_client_cert = true }', "is not supported"),
        ('listener "tcp" { max_request_size = "big" }', "max_request_size must be an integer"),
        ('listener "tcp" { tls_disable = "maybe" }', "tls_disable must be a boolean"),
        ('listener "tcp" { tls_cert_file = "c" }', "must be given together"),
        ('seal "awskms" {}', 'seal "awskms" is not supported'),
        ("ui = [1]", "ui must be a boolean"),
        ('log_level = "loud"', "log_level 'loud' is not one of"),
        ("api_addr = true", "api_addr must be a string"),
        ("listner = 1", "unknown setting 'listner'"),
        ('storage = "sqlite"', "storage must be one block"),
        ("storage {", "invalid HCL or JSON"),
        ('{"ui": ', "invalid HCL or JSON"),
    ],
)
def test_errors_name_the_file_and_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_config(text, "bad.hcl")
    assert info.value.message.startswith("bad.hcl")
    assert message in info.value.message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot read the config file"):
        load_config(tmp_path / "missing.hcl")
    binary = tmp_path / "binary.hcl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidRequest, match="not UTF-8"):
        load_config(binary)


def test_merge_flags_override_file() -> None:
    config = load_config(DATA / "full.hcl")
    merged = merge_flags(config, listen_address="127.0.0.1:9999", log_level="ERROR", ui=None)
    assert merged.listen_address == "127.0.0.1:9999"
    assert merged.log_level == "error"
    assert merged.ui is True  # None means "flag not given": the file's value stays
    assert merged.storage_url == config.storage_url


def test_merge_storage_flag_replaces_the_whole_block() -> None:
    config = load_config(DATA / "full.hcl")
    merged = merge_flags(config, storage_url="memory://")
    assert (merged.storage_url, merged.storage_type, dict(merged.storage_options)) == (
        "memory://",
        "memory",
        {},
    )


def test_merge_tls_flags_turn_tls_on() -> None:
    config = load_config(DATA / "vault-style.hcl")
    assert config.tls_disable is True
    merged = merge_flags(config, tls_cert_file="c.pem", tls_key_file="k.pem")
    assert merged.tls_disable is False
    with pytest.raises(InvalidRequest, match="together"):
        merge_flags(config, tls_cert_file="c.pem")
    with pytest.raises(InvalidRequest, match="--log-level"):
        merge_flags(config, log_level="chatty")
    with pytest.raises(TypeError, match="listen"):
        merge_flags(config, listen="x")


def test_later_backends_register_and_read_secrets_by_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def url(options: object, where: str) -> str:
        assert isinstance(options, dict) or hasattr(options, "get")
        return f"postgresql://{options['user']}@{options['host']}/db"  # type: ignore[index]

    monkeypatch.setitem(STORAGE_KINDS, "postgresql", STORAGE_KINDS["sqlite"])  # restored after the test
    register_storage("postgresql", StorageKind("postgresql", url))
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret\n")
    text = f'storage "postgresql" {{ host = "db" user = "sr" password_file = "{secret_file}" }}'
    config = parse_config(text, "pg.hcl")
    assert config.storage_url == "postgresql://sr@db/db"
    assert "s3cret" not in repr(config)
    assert storage_secret(config.storage_options, "password") == "s3cret"

    env_config = parse_config('storage "postgresql" { host = "h" user = "u" password_env = "PGPW" }')
    assert storage_secret(env_config.storage_options, "password", {"PGPW": "x"}) == "x"
    with pytest.raises(InvalidRequest, match="PGPW is not set"):
        storage_secret(env_config.storage_options, "password", {})
    assert storage_secret(env_config.storage_options, "token", {}) is None


def test_disable_unauthed_rekey_endpoints_maps_to_a_setting() -> None:
    from strongroom.cli.config import parse_config

    assert parse_config('listener "tcp" { address = "127.0.0.1:1" }').disable_unauthed_rekey_endpoints is True
    relaxed = parse_config(
        'listener "tcp" {\n address = "127.0.0.1:1"\n disable_unauthed_rekey_endpoints = false\n}'
    )
    assert relaxed.disable_unauthed_rekey_endpoints is False
