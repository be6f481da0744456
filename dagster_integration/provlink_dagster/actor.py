"""Who launched a Dagster run, from the tags Dagster puts on it.

Dagster records the launcher only as run tags: ``dagster/schedule_name``,
``dagster/sensor_name``, ``dagster/backfill``, ``dagster/auto_materialize``, and a user where
the deployment sets one (``dagster/user``; ``user``, Dagster's own ``USER_TAG`` that backfills
read). The tag names are Dagster's documented run tags, read as plain strings. A run with none
of them (``materialize()``, the launchpad of an open-source webserver) says nothing of how it
was launched, and provlink does not guess.
"""

from __future__ import annotations

from collections.abc import Mapping

from provlink.events.model import Actor

USER_TAGS = ("dagster/user", "user")
# tag -> triggeredBy, first match wins (a backfill's runs also name its schedule or sensor)
TRIGGER_TAGS = (("dagster/backfill", "backfill"), ("dagster/schedule_name", "schedule"),
                ("dagster/sensor_name", "sensor"), ("dagster/auto_materialize", "automation"))


def run_actor(tags: Mapping[str, str]) -> Actor:
    sources: dict[str, str] = {}
    user = next(((tags[t], t) for t in USER_TAGS if tags.get(t)), None)
    if user is not None:
        sources["user"] = f"dagster:tag:{user[1]}"
    by = trigger = None
    for tag, kind in TRIGGER_TAGS:
        if tags.get(tag):
            by, trigger = kind, (tags[tag] if kind != "automation" else None)
            sources["triggeredBy"] = f"dagster:tag:{tag}"
            if trigger is not None:
                sources["trigger"] = f"dagster:tag:{tag}"
            break
    if by is None and user is not None:
        by, sources["triggeredBy"] = "manual", sources["user"]
    return Actor(user=user[0] if user else None, triggered_by=by, trigger=trigger,
                 sources=sources)
