"""Stacks shared by the tests of one module (faults heal, so the next test finds it clean)."""

from __future__ import annotations

import pytest

from harness.spec import StackSpec
from harness.stack import LocalStack

from chaos.heal import sweep
from chaos.injector import Injector
from chaos.journal import Journal
from chaos.target import LocalHandle


@pytest.fixture(scope="module")
def module_stacks(tmp_path_factory):
    """Like `stack_factory`, but one stack may serve a whole module; torn down at its end."""
    stacks: list[LocalStack] = []
    runs = tmp_path_factory.mktemp("runs")

    def make(**fields) -> LocalStack:
        fields.setdefault("runs_dir", runs)
        stack = LocalStack(StackSpec(**fields))
        stacks.append(stack)
        stack.up()
        return stack

    yield make
    for stack in reversed(stacks):
        stack.down()


@pytest.fixture
def clean_after():
    """Sweep a shared stack back to clean after a test, even when the test failed mid-fault."""
    handles: list[LocalHandle] = []
    yield handles.append
    for handle in handles:
        sweep(handle)


# `handle` and `injector` need a module-level `stack` fixture (the stack the module's
# faults act on); a module may still define its own versions, which take precedence.
@pytest.fixture
def handle(stack, clean_after):
    """The fault target for the module's stack, swept clean after the test."""
    h = LocalHandle(stack)
    clean_after(h)
    return h


@pytest.fixture
def injector(handle, stack):
    """An injector journalling into the stack's run dir; heals what is left at teardown."""
    inj = Injector(handle, Journal.in_run_dir(stack.run_dir))
    yield inj
    inj.heal_all()
