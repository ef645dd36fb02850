"""gauntlet's pytest plugin (registered through the `pytest11` entry point)."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "chaos: chaos tests under load against a real stack (pytest -m chaos)")
    config.addinivalue_line("markers", "slow: tests that take more than a few seconds")
