"""Collects the conformance suite; every test runs once per backend of ``conftest.FACTORIES``."""

from .suite import *  # noqa: F403
from .suite_conflicts import *  # noqa: F403
from .suite_model import *  # noqa: F403
