"""Mutation score: how many realistic bugs of the reference SUT the chaos suite catches.

A mutant is a patch file against `sut/` (mutants/*.patch), each a plausible bug an
engineer could write, none a switch of `sut/defects.py`. The runner (runner.py)
copies the project once per mutant, applies the patch, runs the chaos tests against
that copy and records which test failed first and why; the unpatched copy runs first
and must pass, or no score is given. `make mutation`, or `python -m harness.mutation`.
"""
