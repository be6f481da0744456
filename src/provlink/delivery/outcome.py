"""What delivering one event came to: the vocabulary between targets and the sender."""

from __future__ import annotations

from dataclasses import dataclass

from provlink.errors import DeliveryError


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """Result of delivering one event.

    ``ok``; or a failure that is ``permanent`` (dead-letter it now), or transient: then
    ``counted`` says whether it counts against the event's attempt limit (False when the
    backend was unreachable and never judged the event). ``held`` means not attempted: an
    earlier event of its lane failed, so it waits to keep its run's order.
    """

    ok: bool
    permanent: bool = False
    error: str | None = None
    counted: bool = True
    held: bool = False

    @classmethod
    def failed(cls, error: DeliveryError) -> Outcome:
        return cls(ok=False, permanent=error.permanent, error=str(error),
                   counted=not error.unreachable)


OK = Outcome(ok=True)
HELD = Outcome(ok=False, held=True)
