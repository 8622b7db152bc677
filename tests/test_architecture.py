"""The dependency rules of DESIGN.md section 8, checked on the source itself.

Each rule reads every module's imports (by parsing, not importing) so that a violation fails here
instead of being noticed in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "strongroom"

CRYPTO_LIBRARIES = {"cryptography", "nacl", "pysequoia", "hmac", "secrets", "hashlib"}
HTTP_LIBRARIES = {"granian", "uvicorn", "starlette", "httpx", "h11", "httptools"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(subpackage: str = "") -> list[Path]:
    root = PACKAGE / subpackage if subpackage else PACKAGE
    return sorted(root.rglob("*.py"))


def _package_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _top(name: str) -> str:
    return name.split(".")[0]


def test_only_crypto_touches_cryptographic_libraries() -> None:
    offenders = [
        f"{p.relative_to(PACKAGE)} imports {name}"
        for p in _modules()
        if _package_of(p) != "crypto"
        for name in _imports(p)
        if _top(name) in CRYPTO_LIBRARIES
    ]
    assert offenders == []


@pytest.mark.parametrize("package", ["crypto", "storage"])
def test_base_packages_import_only_errors(package: str) -> None:
    offenders = [
        f"{p.relative_to(PACKAGE)} imports {name}"
        for p in _modules(package)
        for name in _imports(p)
        if name.startswith("strongroom.")
        and not name.startswith(f"strongroom.{package}")
        and name != "strongroom.errors"
    ]
    assert offenders == []


def test_http_stays_in_api_and_cli() -> None:
    offenders = [
        f"{p.relative_to(PACKAGE)} imports {name}"
        for p in _modules()
        if _package_of(p) not in ("api", "cli")
        for name in _imports(p)
        if _top(name) in HTTP_LIBRARIES
    ]
    assert offenders == []


def test_nothing_but_the_server_entry_point_imports_api() -> None:
    offenders = [
        f"{p.relative_to(PACKAGE)} imports {name}"
        for p in _modules()
        if _package_of(p) != "api" and p.name != "server.py"
        for name in _imports(p)
        if name.startswith("strongroom.api")
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("barrier", ("strongroom.core", "strongroom.auth", "strongroom.engines", "strongroom.cli")),
        ("core", ("strongroom.engines", "strongroom.cli")),
        ("auth", ("strongroom.engines", "strongroom.cli")),
        ("engines", ("strongroom.cli",)),
    ],
)
def test_layers_do_not_import_upwards(package: str, forbidden: tuple[str, ...]) -> None:
    offenders = [
        f"{p.relative_to(PACKAGE)} imports {name}"
        for p in _modules(package)
        for name in _imports(p)
        if name.startswith(forbidden)
    ]
    assert offenders == []


def test_modules_stay_small() -> None:
    """House style: modules under ~400 lines (450 tolerated while a split is pending)."""
    big = [f"{p.relative_to(PACKAGE)}: {n}" for p in _modules() if (n := len(p.read_text().splitlines())) > 450]
    assert big == []
