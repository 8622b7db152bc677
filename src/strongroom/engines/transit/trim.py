"""Placeholder: routes arrive with this module's implementation."""

from typing import Any

ROUTES: list[Any] = []
