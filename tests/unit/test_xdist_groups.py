"""`make test` relies on `--dist loadgroup` keeping a module on one worker (its
module-scoped stacks are made once) and every Docker test on one worker (one private
dockerd). xdist does that through a suffix on the node id; when the suffix does not
arrive (pytest 9 with pytest-xdist 3.8 drops it), tests spread silently and Docker
tests race each other. This fails instead."""

import os

import pytest


def test_this_module_carries_its_group_under_loadgroup(request):
    if not os.environ.get("PYTEST_XDIST_WORKER") or not getattr(request.config.option, "loadgroup", False):
        pytest.skip("meaningful only under pytest -n N --dist loadgroup (make test)")
    assert request.node.nodeid.endswith("@tests/unit/test_xdist_groups.py"), request.node.nodeid
