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


# --- hypothesis profiles ---------------------------------------------------------------------------
# `ci`: bounded, loaded when CI=true (the whole suite stays fast). `long`: what `make fuzz` runs
# (HYPOTHESIS_PROFILE=long). Tests that set their own max_examples keep it; the fuzz tests
# (tests/test_fuzz.py) take theirs from the profile. HYPOTHESIS_PROFILE wins over CI.
from hypothesis import HealthCheck, settings  # noqa: E402

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=_QUIET, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("long", max_examples=5000, deadline=None, suppress_health_check=_QUIET, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev"))
