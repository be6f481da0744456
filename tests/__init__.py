"""provlink test suite (a regular package, so `tests.conformance` never resolves to another distribution's `tests`)."""
