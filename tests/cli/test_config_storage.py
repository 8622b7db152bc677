"""``storage "postgresql"``, ``storage "etcd"`` and ``storage "redis"`` blocks: the URLs they become, that
each backend accepts that URL with the intended settings, and every refusal (secrets, unknown keys).

The cluster tests (tests/cluster/conftest.py) start real servers from such blocks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from strongroom.cli.config import parse_config
from strongroom.cli.config_storage import PASSWORD_ENVS
from strongroom.errors import InvalidRequest
from strongroom.storage import etcd_url as etcd_settings
from strongroom.storage import postgresql_config

ENV = {"STRONGROOM_PG_PASSWORD": "pw", "STRONGROOM_ETCD_PASSWORD": "pw", "STRONGROOM_REDIS_PASSWORD": "pw"}


def _url(text: str) -> str:
    url = parse_config(text, "s.hcl").storage_url
    assert url is not None
    return url


def _split(url: str) -> tuple[object, dict[str, str]]:
    parts = urlsplit(url)
    return parts, dict(parse_qsl(parts.query, keep_blank_values=True))


def test_password_variables_are_the_backends_own() -> None:
    from strongroom.storage import redis

    assert PASSWORD_ENVS == {
        "postgresql": postgresql_config.PASSWORD_ENV,
        "etcd": etcd_settings.PASSWORD_ENV,
        "redis": redis.PASSWORD_ENV,
    }


def test_postgresql_block(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRONGROOM_PG_PASSWORD", "s3cret-pw")
    passfile = tmp_path / "pgpass"
    passfile.write_text("*:*:*:sr:s3cret-pw\n")
    passfile.chmod(0o600)
    text = f"""
    storage "postgresql" {{
      host = "db.internal"
      port = 5433
      user = "sr"
      database = "vault"
      schema = "strongroom_prod"
      pool_size = 4
      connect_timeout = "2s"
      command_timeout = 30
      sslmode = "verify-full"
      sslrootcert = "/etc/strongroom/pg ca.pem"
      passfile = "{passfile}"
      application_name = "node-1"
      password_env = "STRONGROOM_PG_PASSWORD"
    }}"""
    config = parse_config(text, "s.hcl")
    assert config.storage_type == "postgresql"
    url = config.storage_url
    assert url is not None and "s3cret" not in url and "s3cret" not in repr(config)
    parts, options = _split(url)
    settings = postgresql_config.parse_url(parts, options)  # type: ignore[arg-type]
    assert settings.schema == "strongroom_prod"
    assert settings.pool_size == 4
    assert settings.connect_timeout == 2.0
    assert settings.command_timeout == 30.0
    assert settings.application_name == "node-1"
    assert settings.passfile == str(passfile)
    assert settings.password == "s3cret-pw"  # from the variable, as the backend always reads it
    dsn = urlsplit(settings.dsn)
    assert (dsn.username, dsn.hostname, dsn.port, dsn.path) == ("sr", "db.internal", 5433, "/vault")
    assert dict(parse_qsl(dsn.query)) == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/strongroom/pg ca.pem",
    }


def test_postgresql_minimal_block_and_aliases() -> None:
    assert _url('storage "postgresql" {}') == "postgresql://"
    assert _url('storage "postgresql" { username = "a b" dbname = "d/x" host = "::1" }') == (
        "postgresql://a%20b@[::1]/d%2Fx"
    )


def test_etcd_block_with_vault_keys(tmp_path: Path) -> None:
    pw = tmp_path / "etcd-pw"
    pw.write_text("s3cret-pw\n")
    text = f"""
    storage "etcd" {{
      address         = "http://10.0.0.1:2379, http://10.0.0.2:2379,http://[::1]:2379"
      etcd_api        = "v3"
      path            = "vault"
      username        = "strongroom"
      password_file   = "{pw}"
      request_timeout = "5s"
      attempt_timeout = "500ms"
      max_connections = 8
    }}"""
    url = _url(text)
    assert "s3cret" not in url
    parts, options = _split(url)
    settings = etcd_settings.parse_url(parts, options)  # type: ignore[arg-type]
    assert settings.endpoints == [("10.0.0.1", 2379), ("10.0.0.2", 2379), ("::1", 2379)]
    assert settings.prefix == b"vault/"
    assert settings.numbers["timeout"] == 5.0
    assert settings.numbers["attempt_timeout"] == 0.5
    assert settings.numbers["max_connections"] == 8
    assert settings.credentials == ("strongroom", "s3cret-pw")
    assert settings.ssl_context is None


def test_etcd_https_addresses_turn_tls_on(tmp_path: Path) -> None:
    url = _url('storage "etcd" { address = "https://a:2379,https://b:2379" prefix = "sr/" }')
    parts, options = _split(url)
    assert options == {"prefix": "sr/", "tls": "true"}
    settings = etcd_settings.parse_url(parts, options)  # type: ignore[arg-type]
    assert settings.ssl_context is not None
    with pytest.raises(InvalidRequest, match="not both"):
        _url('storage "etcd" { address = "https://a:2379,http://b:2379" }')


def test_redis_block() -> None:
    from strongroom.storage import redis

    url = _url(
        'storage "redis" { address = "10.0.0.5:6380" db = 3 username = "sr" prefix = "sr:" timeout = "2s" }'
    )
    assert url == "redis://sr@10.0.0.5:6380/3?prefix=sr:&timeout=2"
    parts, options = _split(url)
    store = redis.open_url(parts, options)  # type: ignore[arg-type]
    assert store.prefix == "sr:"  # connects lazily: nothing to close
    assert _url('storage "redis" {}') == "redis://127.0.0.1:6379/0"
    assert _url('storage "redis" { host = "::1" port = 7000 }') == "redis://[::1]:7000/0"


def test_json_form() -> None:
    doc = {"storage": {"etcd": {"address": "127.0.0.1:2379", "path": "sr/"}}}
    assert parse_config(json.dumps(doc), "s.json").storage_url == "etcd://127.0.0.1:2379?prefix=sr/"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('storage "postgresql" { password = "x" }', "do not write secrets"),
        ('storage "etcd" { address = "a:1" username = "u" password = "x" }', "do not write secrets"),
        ('storage "redis" { password = "x" }', "do not write secrets"),
        (
            'storage "postgresql" { connection_url = "postgres://u:p@h/db" }',
            "unknown setting.*connection_url",
        ),
        ('storage "postgresql" { password_file = "/run/pw" }', "pgpass file"),
        ('storage "postgresql" { password_env = "MY_PW" }', "reads its password from STRONGROOM_PG_PASSWORD"),
        ('storage "postgresql" { user = "a" username = "b" }', "not both"),
        ('storage "postgresql" { port = "54x" }', "whole number"),
        ('storage "postgresql" { connect_timeout = "soon" }', "duration"),
        ('storage "postgresql" { host = "" }', "must not be empty"),
        ('storage "postgresql" { host = ["a"] }', "must be a string"),
        ('storage "etcd" {}', "needs an address"),
        ('storage "etcd" { address = "a:1" etcd_api = "v2" }', "v3 only"),
        ('storage "etcd" { address = "a:1" ha_enabled = "true" }', "unknown setting.*ha_enabled"),
        ('storage "etcd" { address = "a:1" password_file = "/pw" }', "needs a username"),
        ('storage "etcd" { address = "a:1" path = "x" prefix = "y" }', "not both"),
        ('storage "etcd" { address = "unix://sock" }', "not http"),
        ('storage "etcd" { address = "u@a:1" }', "not http"),
        (
            'storage "etcd" { address = "a:1" username = "u" password_env = "ETCD_PW" }',
            "STRONGROOM_ETCD_PASSWORD",
        ),
        ('storage "redis" { password_file = "/pw" }', "environment only"),
        ('storage "redis" { address = "a:1" host = "b" }', "not both"),
        ('storage "redis" { address = "nohost" }', "host:port"),
        ('storage "redis" { db = "zero" }', "whole number"),
    ],
)
def test_refusals(block: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as info:
        parse_config(block, "s.hcl")
    assert "s.hcl" in str(info.value.message)


def test_password_env_must_be_set_when_the_file_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(InvalidRequest, match="STRONGROOM_REDIS_PASSWORD is not set"):
        parse_config('storage "redis" { password_env = "STRONGROOM_REDIS_PASSWORD" }', "s.hcl")
    monkeypatch.setenv("STRONGROOM_REDIS_PASSWORD", "s3cret-pw")
    config = parse_config('storage "redis" { password_env = "STRONGROOM_REDIS_PASSWORD" }', "s.hcl")
    assert config.storage_url == "redis://127.0.0.1:6379/0"
    assert "s3cret" not in repr(config)


def test_examples_in_the_configuration_doc_load(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in ENV.items():
        monkeypatch.setenv(var, value)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    blocks = re.findall(r"```hcl\n(.*?)```", doc, re.S)
    kinds = set()
    for block in blocks:
        config = parse_config(block, "configuration.md")
        kinds.add(config.storage_type)
    assert {"sqlite", "postgresql", "etcd", "redis"} <= kinds
