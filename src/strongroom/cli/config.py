"""The server configuration file: HCL (or JSON) shaped like Vault's and OpenBao's.

::

    storage "sqlite" { path = "/var/lib/strongroom/data.db" }
    listener "tcp" {
      address          = "0.0.0.0:8200"
      tls_cert_file    = "/etc/strongroom/tls.crt"
      tls_key_file     = "/etc/strongroom/tls.key"
      max_request_size = 33554432
    }
    seal "shamir" {}
    api_addr  = "https://kms.example.com:8200"
    ui        = false
    log_level = "info"

:func:`load_config` / :func:`parse_config` turn it into a frozen :class:`ServerConfig`;
:func:`merge_flags` lays command-line flags over it (a flag always wins). Every problem raises
:class:`strongroom.errors.InvalidRequest` naming the file and the offending setting. Keys Vault knows but
strongroom does not use (``cluster_addr``, ``telemetry`` ...) are kept as ``warnings`` for the server to
log, so an operator's existing Vault file loads.

Storage blocks map to storage URLs through :data:`STORAGE_KINDS` (``sqlite``, ``inmem``; ``postgresql``,
``etcd`` and ``redis`` from :mod:`strongroom.cli.config_storage`); plugins add theirs with
:func:`register_storage`. Passwords never go into a URL (it would show in ``ps`` and logs): a storage block
names them with ``password_file`` or ``password_env`` (read with :func:`storage_secret`, or, for the
built-in backends, checked to point where the backend reads its password); a literal ``password`` is
refused.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import hcl
from hcl.lexer import Lexer

from strongroom.cli.config_storage import BLOCKS as _NETWORK_BLOCKS
from strongroom.errors import InvalidRequest

LOG_LEVELS = ("trace", "debug", "info", "warn", "error")
DEFAULT_LISTEN_ADDRESS = "127.0.0.1:8200"
MAX_WORKERS = 256
SEAL_TYPES: set[str] = {"shamir"}
"""Seal kinds the server knows; seal plugins add theirs."""

# Top-level keys of Vault's server config that strongroom accepts but does not act on.
_IGNORED_TOP = frozenset(
    {"cluster_addr", "cluster_name", "telemetry", "plugin_directory", "default_lease_ttl", "max_lease_ttl",
     "disable_cache", "cache_size", "pid_file", "log_format", "log_file", "raw_storage_endpoint",
     "disable_clustering", "enable_response_header_hostname", "enable_response_header_raft_node_id",
     "introspection_endpoint", "ha_storage"}
)  # fmt: skip
_LISTENER_KEYS = frozenset({"address", "tls_cert_file", "tls_key_file", "tls_disable", "max_request_size",
                            "disable_unauthed_rekey_endpoints"})
_SECRET_KEYS = frozenset({"password", "secret", "token", "secret_key", "access_key"})


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ServerConfig:
    """Settings for ``strongroom server``; ``None`` means "not set, use the default"."""

    listen_address: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_disable: bool = False
    storage_url: str | None = None
    storage_type: str | None = None
    storage_options: Mapping[str, Any] = field(default_factory=_empty)
    """The storage block as written (secrets only by reference: ``password_file``/``password_env``)."""
    api_addr: str | None = None
    ui: bool = False
    log_level: str | None = None
    max_request_size: int | None = None
    # OpenBao's listener setting; strongroom's default is OpenBao's (rekey needs a sudo token).
    disable_unauthed_rekey_endpoints: bool = True
    """Body limit in bytes from the listener block; Vault's meaning: 0 default (32 MiB), negative: none."""
    seal_type: str | None = None
    seal_options: Mapping[str, Any] = field(default_factory=_empty)
    disable_mlock: bool = False
    workers: int | None = None
    """Worker processes (``--workers``; default 1: one process, no supervisor). See docs/operations/workers.md."""
    unseal_expiry: int | None = None
    """Seconds after which an unfinished unseal, rekey or generate-root ceremony is forgotten (``--unseal-expiry``;
    default: never, as Vault)."""
    source: str | None = None
    """The file this came from, for messages."""
    warnings: tuple[str, ...] = ()
    """Settings that were accepted but ignored, for the server to log."""


# --- storage kinds -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageKind:
    """How one ``storage "TYPE" {...}`` block becomes a storage URL (never containing a secret)."""

    name: str
    to_url: Callable[[Mapping[str, Any], str], str]
    """(block options, file name for messages) -> URL."""


def _sqlite_url(options: Mapping[str, Any], where: str) -> str:
    path = _string(options.get("path"), f'{where}: storage "sqlite" path')
    if path is None or not path:
        raise InvalidRequest(f'{where}: storage "sqlite" needs a path')
    # sqlite:///rel/path for relative paths, sqlite:////abs/path for absolute ones (SQLAlchemy's convention).
    return "sqlite:///" + path


def _memory_url(options: Mapping[str, Any], where: str) -> str:
    return "memory://"


STORAGE_KINDS: dict[str, StorageKind] = {
    "sqlite": StorageKind("sqlite", _sqlite_url),
    "memory": StorageKind("memory", _memory_url),
    "inmem": StorageKind("memory", _memory_url),
    # PostgreSQL, etcd, Redis: strongroom.cli.config_storage (URLs without secrets; docs/configuration.md).
    **{name: StorageKind(name, to_url) for name, to_url in _NETWORK_BLOCKS.items()},
}
"""Storage block types by name (plugins may add theirs with :func:`register_storage`)."""


def register_storage(block_type: str, kind: StorageKind) -> None:
    """Make ``storage "<block_type>" {...}`` known to the config parser."""
    STORAGE_KINDS[block_type] = kind


def storage_secret(
    options: Mapping[str, Any], name: str, environ: Mapping[str, str] | None = None
) -> str | None:
    """Read the secret ``name`` of a storage block from ``<name>_file`` or ``<name>_env``; ``None`` if unset.

    :raises InvalidRequest: the file cannot be read or the variable is not set.
    """
    env = os.environ if environ is None else environ
    path = options.get(f"{name}_file")
    if path is not None:
        try:
            return Path(str(path)).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidRequest(f"storage {name}_file {path}: {exc.strerror}") from exc
    var = options.get(f"{name}_env")
    if var is not None:
        value = env.get(str(var))
        if value is None:
            raise InvalidRequest(f"storage {name}_env: environment variable {var} is not set")
        return value
    return None


# --- value checks ----------------------------------------------------------------------------------------


def _string(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidRequest(f"{what} must be a string, not {_type_name(value)}")
    return str(value)


def _bool(value: Any, what: str) -> bool | None:
    """Vault's parseutil.ParseBool: a boolean, or a string such as "true"/"1"/"false"."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "t", "true", "0", "f", "false"):
        return value.strip().lower() in ("1", "t", "true")
    raise InvalidRequest(f"{what} must be a boolean, not {value!r}")


def _int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidRequest(f"{what} must be an integer, not {value!r}")


def _type_name(value: Any) -> str:
    return {dict: "a block", list: "a list", bool: "a boolean"}.get(type(value), type(value).__name__)


# --- parsing -----------------------------------------------------------------------------------------------


def _top_level_blocks(text: str) -> dict[str, int]:
    """Count top-level keys; pyhcl silently merges repeated blocks, so look at the tokens.

    At depth 0 every identifier is a key: HCL values there are strings, numbers, booleans, lists or
    objects, never bare identifiers.
    """
    counts: dict[str, int] = {}
    lexer = Lexer()
    lexer.input(text)
    depth = 0
    while (token := lexer.token()) is not None:
        if token.type in ("LEFTBRACE", "LEFTBRACKET"):
            depth += 1
        elif token.type in ("RIGHTBRACE", "RIGHTBRACKET"):
            depth -= 1
        elif depth == 0 and token.type == "IDENTIFIER":
            counts[token.value] = counts.get(token.value, 0) + 1
    return counts


def _one_block(tree: Mapping[str, Any], key: str, where: str) -> tuple[str, dict[str, Any]] | None:
    """The single ``key "TYPE" {...}`` block as (TYPE, body); JSON may write it as a one-item list."""
    value = tree.get(key)
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != 1:
            raise InvalidRequest(f"{where}: only one {key} block is supported")
        value = value[0]
    if not isinstance(value, dict) or len(value) != 1:
        raise InvalidRequest(f'{where}: {key} must be one block: {key} "TYPE" {{ ... }}')
    ((block_type, body),) = value.items()
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        raise InvalidRequest(f'{where}: {key} "{block_type}" must be a block')
    return str(block_type), body


def parse_config(text: str, source: str = "<config>") -> ServerConfig:
    """Parse configuration text (HCL or JSON).

    :raises InvalidRequest: bad syntax, a wrong type, an unknown storage/seal/listener type, a repeated
        block, or a literal password.
    """
    try:
        tree = hcl.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"{source}: invalid HCL or JSON: {exc}") from exc
    if not isinstance(tree, dict):
        raise InvalidRequest(f"{source}: the configuration must be an object")
    if not text.lstrip().startswith("{"):
        for key, count in _top_level_blocks(text).items():
            if count > 1 and key in ("storage", "backend", "listener", "seal"):
                raise InvalidRequest(f"{source}: only one {key} block is supported, found {count}")
    values: dict[str, Any] = {"source": source}
    warnings: list[str] = []
    if "storage" in tree and "backend" in tree:
        raise InvalidRequest(f"{source}: use either storage or backend (its old name), not both")
    storage = _one_block(tree, "storage" if "storage" in tree else "backend", source)
    if storage is not None:
        values.update(_storage(storage[0], storage[1], source))
    listener = _one_block(tree, "listener", source)
    if listener is not None:
        values.update(_listener(listener[0], listener[1], source, warnings))
    seal = _one_block(tree, "seal", source)
    if seal is not None:
        if seal[0] not in SEAL_TYPES:
            raise InvalidRequest(
                f'{source}: seal "{seal[0]}" is not supported (supported: {", ".join(sorted(SEAL_TYPES))})'
            )
        values["seal_type"], values["seal_options"] = seal[0], MappingProxyType(dict(seal[1]))
    values["api_addr"] = _string(tree.get("api_addr"), f"{source}: api_addr")
    values["ui"] = bool(_bool(tree.get("ui"), f"{source}: ui"))
    values["disable_mlock"] = bool(_bool(tree.get("disable_mlock"), f"{source}: disable_mlock"))
    values["log_level"] = _log_level(tree.get("log_level"), f"{source}: log_level")
    values["workers"] = _int(tree.get("workers"), f"{source}: workers")
    values["unseal_expiry"] = _duration(tree.get("unseal_expiry"), f"{source}: unseal_expiry")
    known = {"storage", "backend", "listener", "seal", "api_addr", "ui", "disable_mlock", "log_level", "workers",
             "unseal_expiry"}
    for key in sorted(set(tree) - known):
        if key in _IGNORED_TOP:
            warnings.append(f"{source}: {key} is not used by strongroom; ignored")
        else:
            raise InvalidRequest(f"{source}: unknown setting {key!r}")
    values["warnings"] = tuple(warnings)
    return _checked(ServerConfig(**values))


def _storage(block_type: str, options: dict[str, Any], where: str) -> dict[str, Any]:
    kind = STORAGE_KINDS.get(block_type)
    if kind is None:
        supported = ", ".join(sorted(STORAGE_KINDS))
        raise InvalidRequest(f'{where}: storage "{block_type}" is not supported (supported: {supported})')
    for key in options:
        if key in _SECRET_KEYS or key.endswith("_password"):
            raise InvalidRequest(
                f'{where}: storage "{block_type}" {key}: do not write secrets in the config file; '
                f"use {key}_file (a file holding it) or {key}_env (an environment variable's name)"
            )
    return {
        "storage_type": kind.name,
        "storage_url": kind.to_url(options, where),
        "storage_options": MappingProxyType(dict(options)),
    }


def _listener(block_type: str, body: dict[str, Any], where: str, warnings: list[str]) -> dict[str, Any]:
    if block_type != "tcp":
        raise InvalidRequest(f'{where}: listener "{block_type}" is not supported (supported: tcp)')
    w = f'{where}: listener "tcp"'
    for key in sorted(set(body) - _LISTENER_KEYS):
        if key.startswith("tls_"):
            # Ignoring e.g. tls_require_and_verify_client_cert would silently weaken the listener.
            raise InvalidRequest(f"{w} {key} is not supported by strongroom")
        warnings.append(f"{w} {key} is not used by strongroom; ignored")
    return {
        "listen_address": _string(body.get("address"), f"{w} address") or DEFAULT_LISTEN_ADDRESS,
        "tls_cert_file": _string(body.get("tls_cert_file"), f"{w} tls_cert_file"),
        "tls_key_file": _string(body.get("tls_key_file"), f"{w} tls_key_file"),
        "tls_disable": bool(_bool(body.get("tls_disable"), f"{w} tls_disable")),
        "max_request_size": _int(body.get("max_request_size"), f"{w} max_request_size"),
        "disable_unauthed_rekey_endpoints": _bool(
            body.get("disable_unauthed_rekey_endpoints", True), f"{w} disable_unauthed_rekey_endpoints"
        ),
    }


MAX_UNSEAL_EXPIRY = 7 * 24 * 3600
"""A week: longer than any ceremony, short enough that forgotten shares do not linger."""


def _duration(value: Any, what: str) -> int | None:
    """A Vault-style duration (``"10m"``, ``600``) in whole seconds, or ``None`` when absent.

    Raises:
        InvalidRequest: not a duration.
    """
    if value is None:
        return None
    from strongroom.engines.fields import parse_duration

    try:
        return parse_duration(value, what)
    except InvalidRequest:
        raise InvalidRequest(f"{what} must be a duration such as \"10m\" or 600, not {value!r:.40}") from None


def _log_level(value: Any, what: str) -> str | None:
    level = _string(value, what)
    if level is None:
        return None
    level = level.strip().lower()
    level = "warn" if level == "warning" else level
    if level not in LOG_LEVELS:
        raise InvalidRequest(f"{what} {value!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


def _checked(config: ServerConfig) -> ServerConfig:
    """Cross-field rules that hold after parsing and after flags are merged."""
    where = config.source or "configuration"
    if (config.tls_cert_file is None) != (config.tls_key_file is None):
        raise InvalidRequest(f"{where}: tls_cert_file and tls_key_file must be given together")
    if config.workers is not None and not 1 <= config.workers <= MAX_WORKERS:
        raise InvalidRequest(f"{where}: workers must be between 1 and {MAX_WORKERS}, not {config.workers}")
    if config.unseal_expiry is not None and not 1 <= config.unseal_expiry <= MAX_UNSEAL_EXPIRY:
        raise InvalidRequest(
            f"{where}: unseal_expiry must be between 1s and {MAX_UNSEAL_EXPIRY}s, not {config.unseal_expiry}s"
        )
    return config


def load_config(path: str | os.PathLike[str]) -> ServerConfig:
    """Read and parse a config file.

    :raises InvalidRequest: the file cannot be read or is invalid.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidRequest(f"{path}: cannot read the config file: {reason}") from exc
    return parse_config(text, str(path))


def merge_flags(config: ServerConfig, **flags: Any) -> ServerConfig:
    """Lay command-line values over ``config``; ``None`` means "flag not given".

    ``storage_url`` from a flag replaces the file's whole storage block, and TLS files from flags turn TLS
    on unless ``tls_disable`` is given too.

    :raises TypeError: a name that is not a :class:`ServerConfig` field (a programming error).
    :raises InvalidRequest: the merged settings are inconsistent.
    """
    names = {f.name for f in dataclasses.fields(ServerConfig)}
    unknown = set(flags) - names
    if unknown:
        raise TypeError(f"unknown ServerConfig fields: {', '.join(sorted(unknown))}")
    given = {k: v for k, v in flags.items() if v is not None}
    if "storage_url" in given and "storage_type" not in given:
        given["storage_type"] = str(given["storage_url"]).partition("://")[0] or None
        given.setdefault("storage_options", MappingProxyType({}))
    if ("tls_cert_file" in given or "tls_key_file" in given) and "tls_disable" not in given:
        given["tls_disable"] = False
    if "log_level" in given:
        given["log_level"] = _log_level(given["log_level"], "--log-level")
    if "unseal_expiry" in given:
        given["unseal_expiry"] = _duration(given["unseal_expiry"], "--unseal-expiry")
    return _checked(dataclasses.replace(config, **given))
