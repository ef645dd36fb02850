"""Fixtures for the broker comparison tests.

The Redis Streams broker is tested like the other brokers in tests/sut: replica
processes from that folder's helpers, on a fresh database of the session's Postgres.
Its fixtures are reused, not copied: the module is loaded under its own name and its
fixture functions become this conftest's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SUT_TESTS = Path(__file__).resolve().parent.parent / "sut"
if str(SUT_TESTS) not in sys.path:
    sys.path.insert(0, str(SUT_TESTS))

_spec = importlib.util.spec_from_file_location("sut_test_fixtures", SUT_TESTS / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

fresh_db = _fixtures.fresh_db
sut_factory = _fixtures.sut_factory
own_redis = _fixtures.own_redis
