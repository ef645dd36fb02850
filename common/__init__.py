"""The vocabulary every part of gauntlet shares: durations, the stack state file's
records, the raw load record schema, the control API's client, process liveness.

It sits below every other package: chaos, scenarios, reports and harness import it;
it imports none of them (tests/unit/test_import_structure.py keeps it so).
"""
