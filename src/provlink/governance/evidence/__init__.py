"""Evidence bundles: a signed, offline-verifiable package per model version
(:mod:`~provlink.governance.evidence.bundle` builds, :mod:`~.verify` checks)."""
