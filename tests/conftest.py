"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest


def require_tool(name: str) -> str:
    """Path of an external tool the test needs.

    Skipped locally when the tool is missing, but a failure in CI (`CI=true`): an interop test that
    silently skips there proves nothing.
    """
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI but is not on PATH", pytrace=False)
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture(name="require_tool")
def require_tool_fixture() -> Callable[[str], str]:
    """`require_tool(name)` as a fixture, for tests that prefer not to import from conftest."""
    return require_tool
