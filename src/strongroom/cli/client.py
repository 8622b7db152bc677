"""A small synchronous client for the Vault HTTP API, used by the ``strongroom`` commands.

It speaks to any Vault-compatible server (strongroom, Vault, OpenBao). Settings come from flags first, then
the environment, the way Vault's CLI reads them:

* address: ``--address``, ``STRONGROOM_ADDR``, ``VAULT_ADDR``, default ``http://127.0.0.1:8200``;
* token: ``STRONGROOM_TOKEN``, ``VAULT_TOKEN``, then the file ``~/.vault-token`` (Vault's default token
  helper, which ``vault login`` writes);
* namespace: ``--namespace``, ``STRONGROOM_NAMESPACE``, ``VAULT_NAMESPACE`` (sent as ``X-Vault-Namespace``);
* TLS: ``--ca-cert``/``STRONGROOM_CACERT``/``VAULT_CACERT``, ``STRONGROOM_CAPATH``/``VAULT_CAPATH``,
  ``--tls-skip-verify``/``STRONGROOM_SKIP_VERIFY``/``VAULT_SKIP_VERIFY``.

Failures are raised, never returned: :class:`ApiError` when the server answered with an error status,
:class:`ClientError` when no answer could be had (bad address, connection refused, TLS failure). Both render
the way Vault's CLI prints them.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

DEFAULT_ADDRESS = "http://127.0.0.1:8200"

# Go's strconv.ParseBool, which Vault uses for VAULT_SKIP_VERIFY.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class ClientError(Exception):
    """The request could not be made or no usable answer came back (a local or transport failure)."""


class ApiError(Exception):
    """The server answered with an error status.

    ``errors`` holds the messages from Vault's ``{"errors": [...]}`` body; ``body`` the decoded JSON body
    (or ``None``), because some 404s carry data (KV v2 deleted versions).
    """

    def __init__(self, method: str, url: str, status: int, errors: list[str], body: Any, raw: str) -> None:
        super().__init__(f"{method} {url}: {status}")
        self.method = method
        self.url = url
        self.status = status
        self.errors = errors
        self.body = body
        self.raw = raw

    def __str__(self) -> str:
        # Same layout as Vault's api.ResponseError so scripts and people see familiar text.
        head = f"Error making API request.\n\nURL: {self.method} {self.url}\n"
        if self.body is None and self.raw:
            return f"{head}Code: {self.status}. Raw Message:\n\n{self.raw}"
        lines = "".join(f"\n* {e}" for e in self.errors)
        return f"{head}Code: {self.status}. Errors:\n{lines}"


def _env(environ: Mapping[str, str], *names: str) -> str | None:
    """Return the first non-empty variable among ``names``."""
    for name in names:
        value = environ.get(name)
        if value:
            return value
    return None


def parse_bool(value: str, what: str) -> bool:
    """Parse a boolean the way Go's ``strconv.ParseBool`` does; raise :class:`ClientError` otherwise."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ClientError(f"could not parse {what}: invalid boolean {value!r}")


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to connect; build it with :meth:`from_env`."""

    address: str = DEFAULT_ADDRESS
    token: str | None = None
    namespace: str | None = None
    ca_cert: str | None = None
    ca_path: str | None = None
    skip_verify: bool = False

    def __repr__(self) -> str:
        # The token is a credential: keep it out of logs and tracebacks.
        return f"ClientSettings(address={self.address!r}, namespace={self.namespace!r})"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        address: str | None = None,
        namespace: str | None = None,
        ca_cert: str | None = None,
        skip_verify: bool | None = None,
        token_file: Path | None = None,
    ) -> ClientSettings:
        """Resolve settings from explicit values, then ``environ`` (default ``os.environ``).

        :raises ClientError: an environment variable has an unparsable value.
        """
        env = os.environ if environ is None else environ
        token = _env(env, "STRONGROOM_TOKEN", "VAULT_TOKEN")
        if token is None:
            token = _read_token_helper(token_file if token_file is not None else Path.home() / ".vault-token")
        if skip_verify is None:
            raw = _env(env, "STRONGROOM_SKIP_VERIFY", "VAULT_SKIP_VERIFY")
            skip_verify = parse_bool(raw, "VAULT_SKIP_VERIFY") if raw is not None else False
        return cls(
            address=address or _env(env, "STRONGROOM_ADDR", "VAULT_ADDR") or DEFAULT_ADDRESS,
            token=token,
            namespace=namespace or _env(env, "STRONGROOM_NAMESPACE", "VAULT_NAMESPACE"),
            ca_cert=ca_cert or _env(env, "STRONGROOM_CACERT", "VAULT_CACERT"),
            ca_path=_env(env, "STRONGROOM_CAPATH", "VAULT_CAPATH"),
            skip_verify=skip_verify,
        )


def _read_token_helper(path: Path) -> str | None:
    """Read the token that ``vault login`` stored, as Vault's internal token helper does."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ClientError(f"error reading token helper file {path}: {exc.strerror}") from exc
    return token or None


def _verify(settings: ClientSettings) -> ssl.SSLContext | bool:
    """Build the TLS verification setting httpx expects."""
    if settings.skip_verify:
        return False
    if settings.ca_cert is None and settings.ca_path is None:
        return True
    try:
        return ssl.create_default_context(cafile=settings.ca_cert, capath=settings.ca_path)
    except (OSError, ssl.SSLError) as exc:
        raise ClientError(f"error loading CA certificates: {exc}") from exc


class VaultClient:
    """Blocking HTTP client for ``/v1/...`` paths. Use as a context manager or call :meth:`close`."""

    def __init__(self, settings: ClientSettings, *, timeout: float = 60.0) -> None:
        address = settings.address.rstrip("/")
        if not address.startswith(("http://", "https://")):
            raise ClientError(f"invalid address {settings.address!r}: it must start with http:// or https://")
        self.settings = settings
        self.address = address
        headers = {"X-Vault-Request": "true"}
        if settings.namespace:
            headers["X-Vault-Namespace"] = settings.namespace.strip("/") + "/"
        # Redirects are not followed: Vault standbys redirect with 307 and the token must not leak elsewhere.
        self._http = httpx.Client(headers=headers, verify=_verify(settings), timeout=timeout)

    def __enter__(self) -> VaultClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def url(self, path: str) -> str:
        """The full URL of an API path such as ``sys/seal-status``."""
        return f"{self.address}/v1/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        authenticate: bool = True,
    ) -> httpx.Response:
        """Send one request; return the response if its status is below 400.

        :raises ApiError: the server answered 400 or above.
        :raises ClientError: the request could not be sent or answered.
        """
        url = self.url(path)
        extra = dict(headers or {})
        if authenticate and self.settings.token:
            extra["X-Vault-Token"] = self.settings.token
        try:
            resp = self._http.request(method, url, json=json, params=params, headers=extra)
        except httpx.HTTPError as exc:
            # httpx's own wording names the cause (refused, DNS, TLS); Vault prints the Go error likewise.
            raise ClientError(f"{method} {url}: {exc}") from exc
        if resp.status_code >= 400:
            raise _api_error(method, url, resp)
        return resp

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any] | None:
        """Send a request and decode its JSON object body; ``None`` for an empty (204) body.

        :raises ApiError, ClientError: as :meth:`request`; ClientError also for a body that is not JSON.
        """
        resp = self.request(method, path, **kwargs)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            body = resp.json()
        except ValueError as exc:
            raise ClientError(f"{method} {self.url(path)}: response is not JSON") from exc
        if not isinstance(body, dict):
            raise ClientError(f"{method} {self.url(path)}: response is not a JSON object")
        return body

    def read(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """GET a path; ``None`` when the server says 404, as Vault's ``Logical().Read`` does."""
        try:
            return self.json("GET", path, params=params)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, path: str) -> dict[str, Any] | None:
        """LIST a path (sent as ``GET ?list=true``, which every proxy passes); ``None`` on 404."""
        return self.read(path, params={"list": "true"})

    def write(self, path: str, data: Any = None, *, method: str = "PUT") -> dict[str, Any] | None:
        """PUT (or ``method``) a JSON body; the decoded response or ``None`` for 204."""
        return self.json(method, path, json=data if data is not None else {})

    def delete(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        """DELETE a path."""
        return self.json("DELETE", path, params=params)


def _api_error(method: str, url: str, resp: httpx.Response) -> ApiError:
    """Decode Vault's error body; tolerate bodies that are not JSON (proxies, HTML error pages)."""
    raw = resp.text
    try:
        body = resp.json()
    except ValueError:
        return ApiError(method, url, resp.status_code, [], None, raw)
    errors: list[str] = []
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        errors = [str(e) for e in body["errors"]]
    return ApiError(method, url, resp.status_code, errors, body, raw)
