"""Output formatting shared by the commands, shaped like Vault's CLI output.

Tables are two columns separated by four spaces, headed ``Key``/``Value`` and ``---``/``-----`` (Vault's
``columnize`` layout); values are rendered the way Go's ``%v`` renders decoded JSON (``<nil>``, ``[a b]``,
``map[k:v]``) and empty strings as ``n/a``. ``json`` output is indented by two spaces like Vault's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TextIO

FORMATS = ("table", "json")

# Fields whose integer seconds Vault's CLI prints as durations ("768h", "1m30s").
DURATION_FIELDS = frozenset(
    {"ttl", "creation_ttl", "explicit_max_ttl", "period", "token_duration", "lease_duration"}
)


class OutputFailed(Exception):
    """stdout or stderr could not be written (a closed pipe, a full disk); ``cause`` is the OS error."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Output:
    """Where a command writes: stdout/stderr plus the chosen format.

    Every write goes through :meth:`_write`, so a failing stream raises :class:`OutputFailed` (which the
    dispatcher reports in one line) instead of a traceback from deep inside a command.
    """

    def __init__(self, fmt: str = "table", out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.format = fmt
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr

    @property
    def is_table(self) -> bool:
        """True when the human format was chosen."""
        return self.format == "table"

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        try:
            stream.write(text)
        except OSError as exc:
            raise OutputFailed(exc) from exc

    def line(self, text: str = "") -> None:
        """Write one line to stdout."""
        self._write(self.out, text + "\n")

    def raw(self, text: str) -> None:
        """Write text with no newline added (``-field`` output, as Vault prints it)."""
        self._write(self.out, text)

    def error(self, text: str) -> None:
        """Write one line to stderr."""
        self._write(self.err, text + "\n")

    def json(self, value: Any) -> None:
        """Write ``value`` as indented JSON."""
        self._write(self.out, json.dumps(value, indent=2, ensure_ascii=False) + "\n")

    def table(self, rows: Iterable[tuple[str, str]], *, header: bool = True) -> None:
        """Write a two-column table."""
        self._write(self.out, render_table(rows, header=header) + "\n")

    def flush(self) -> None:
        """Flush stdout: a buffered pipe or file reports its write errors only here.

        :raises OutputFailed: the data could not be written.
        """
        try:
            self.out.flush()
        except OSError as exc:
            raise OutputFailed(exc) from exc


def render_table(rows: Iterable[tuple[str, str]], *, header: bool = True) -> str:
    """Render rows as Vault's two-column table; ``header`` adds the Key/Value lines."""
    body = list(rows)
    if header:
        body = [("Key", "Value"), ("---", "-----"), *body]
    if not body:
        return ""
    width = max(len(k) for k, _ in body)
    return "\n".join(f"{k.ljust(width)}    {v}".rstrip() for k, v in body)


def go_value(value: Any) -> str:
    """Render a decoded JSON value as Go's ``%v`` would after ``encoding/json``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def cell(value: Any) -> str:
    """Render a table cell: like :func:`go_value`, but an empty string reads ``n/a`` as in Vault."""
    if value == "":
        return "n/a"
    return go_value(value)


def human_duration(seconds: Any) -> str:
    """Format seconds like Vault's ``humanDurationInt``: Go's Duration string minus trailing zero units."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        try:
            seconds = int(str(seconds))
        except ValueError:
            return go_value(seconds)
    total = int(seconds)
    if total == 0:
        return "0s"
    sign = "-" if total < 0 else ""
    total = abs(total)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        text = f"{hours}h{minutes}m{secs}s"
    elif minutes:
        text = f"{minutes}m{secs}s"
    else:
        text = f"{secs}s"
    if text.endswith("m0s"):
        text = text[:-2]
    if text.endswith("h0m"):
        text = text[:-2]
    return sign + text


def data_rows(data: Mapping[str, Any], *, durations: bool = False) -> list[tuple[str, str]]:
    """Rows for a data map, sorted by key; ``durations`` renders known TTL fields as durations."""
    rows = []
    for key in sorted(data):
        value = data[key]
        if durations and key in DURATION_FIELDS and isinstance(value, int | float | str) and value != "":
            rows.append((key, human_duration(value)))
        else:
            rows.append((key, cell(value)))
    return rows


def quoted_list(values: Iterable[Any]) -> str:
    """Render a list as Go's ``%q`` does: ``["default" "dev"]`` (used for token policies)."""
    return "[" + " ".join(json.dumps(str(v)) for v in values) + "]"


def auth_rows(auth: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The rows Vault prints for a response carrying ``auth`` (token create/renew, login)."""
    rows = [
        ("token", cell(auth.get("client_token", ""))),
        ("token_accessor", cell(auth.get("accessor", ""))),
    ]
    duration = auth.get("lease_duration", 0)
    rows.append(("token_duration", "∞" if not duration else human_duration(duration)))
    rows.append(("token_renewable", go_value(bool(auth.get("renewable", False)))))
    rows.append(("token_policies", quoted_list(auth.get("token_policies") or [])))
    rows.append(("identity_policies", quoted_list(auth.get("identity_policies") or [])))
    rows.append(("policies", quoted_list(auth.get("policies") or [])))
    for key, value in sorted((auth.get("metadata") or {}).items()):
        rows.append((f"token_meta_{key}", cell(value)))
    return rows


def secret_rows(secret: Mapping[str, Any], *, durations: bool = False) -> list[tuple[str, str]]:
    """Rows for a whole Vault response envelope: lease fields, auth fields, then sorted data.

    ``durations`` renders known TTL fields of ``data`` as durations (token lookups), never user data.
    """
    rows: list[tuple[str, str]] = []
    if secret.get("lease_id"):
        rows.append(("lease_id", str(secret["lease_id"])))
        rows.append(("lease_duration", human_duration(secret.get("lease_duration", 0))))
        rows.append(("lease_renewable", go_value(bool(secret.get("renewable")))))
    elif secret.get("lease_duration"):
        # A TTL without a lease (KV v1 "ttl" key) is a refresh hint, as Vault labels it.
        rows.append(("refresh_interval", human_duration(secret["lease_duration"])))
    if isinstance(secret.get("auth"), dict):
        rows.extend(auth_rows(secret["auth"]))
    data = secret.get("data")
    if isinstance(data, dict):
        rows.extend(data_rows(data, durations=durations))
    return rows


def go_sorted(value: Any) -> Any:
    """``value`` with every JSON object's keys sorted, as Go's encoder writes a decoded ``map``."""
    if isinstance(value, Mapping):
        return {key: go_sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [go_sorted(item) for item in value]
    return value


def envelope_json(secret: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope as Vault's CLI re-encodes it: null ``auth``/``wrap_info`` and extras dropped.

    The envelope and ``auth`` are Go structs (fields in declaration order, kept as the server sent them);
    ``data`` and ``auth.metadata`` are Go maps, which Vault's CLI prints with sorted keys whatever order
    the server used.
    """
    keys = ("request_id", "lease_id", "lease_duration", "renewable", "data", "warnings", "auth", "wrap_info")
    out: dict[str, Any] = {}
    for key in keys:
        if key in secret and (secret[key] is not None or key in ("data", "warnings")):
            out[key] = secret[key]
    if out.get("data") is not None:
        out["data"] = go_sorted(out["data"])
    auth = out.get("auth")
    if isinstance(auth, Mapping) and isinstance(auth.get("metadata"), Mapping):
        out["auth"] = {**auth, "metadata": go_sorted(auth["metadata"])}
    return out


def print_warnings(output: Output, secret: Mapping[str, Any] | None) -> None:
    """Print the server's warnings to stderr in table mode, the way Vault's CLI surfaces them."""
    if not output.is_table or not secret:
        return
    for warning in secret.get("warnings") or []:
        output.error(f"WARNING! {warning}")


def print_secret(output: Output, secret: Mapping[str, Any], *, durations: bool = False) -> None:
    """Print a response envelope as a table or JSON."""
    if output.is_table:
        print_warnings(output, secret)
        rows = secret_rows(secret, durations=durations)
        if rows:
            output.table(rows)
    else:
        output.json(envelope_json(secret))


def pad_equal_signs(header: str, total: int) -> str:
    """Centre ``header`` in equal signs, as Vault's ``padEqualSigns`` does for section titles."""
    signs = total - (len(header) + 2)
    if signs <= 0:
        signs = 4
    if signs % 2:
        signs += 1
    half = "=" * (signs // 2)
    return f"{half} {header} {half}"


def section_header(header: str, data: Mapping[str, Any]) -> str:
    """Title for a table of ``data``: width of its longest key plus the column gap and ``Value``."""
    longest = max((len(k) for k in data), default=0)
    return pad_equal_signs(header, longest + 4 + 5)


def field_value(value: Any) -> str:
    """Render one ``-field`` value: strings raw, anything else as Go's ``%v`` or JSON for maps."""
    if isinstance(value, str):
        return value
    return go_value(value)


def rfc822(timestamp: str) -> str:
    """Format an RFC 3339 timestamp as Go's RFC822 layout (``02 Jan 06 15:04 UTC``), as key-status does."""
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    return when.strftime("%d %b %y %H:%M ") + (when.tzname() or "UTC")
