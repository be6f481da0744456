"""provlink test suite.

A regular package, so `tests.conformance` never resolves to another distribution's `tests`.
"""
