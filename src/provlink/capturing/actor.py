"""Who ran a capture point: the operating-system account, merged with what an adapter knows.

The OS user is read from the process's effective uid (``pwd``), not from ``$USER``/
``$LOGNAME``: those are inherited by child processes and a worker started with ``sudo -u``
or ``run_as_user`` would report whoever started its parent.
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import os

from provlink.events.model import Actor

OS_SOURCE = "os:effective-uid"


def os_user() -> str | None:
    """The account name of this process's effective uid (its number if it has no name)."""
    if not hasattr(os, "geteuid"):  # Windows: no uids
        try:
            return getpass.getuser()
        except (OSError, KeyError):
            return None
    return _name_of(os.geteuid())


@functools.lru_cache(maxsize=8)
def _name_of(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a container's uid with no passwd entry
        return str(uid)


def with_os_user(actor: Actor | None) -> Actor:
    """``actor`` (or an empty one) with this process's OS user filled in."""
    actor = actor or Actor()
    if actor.os_user is not None:
        return actor
    user = os_user()
    if user is None:
        return actor
    return dataclasses.replace(actor, os_user=user,
                               sources={**actor.sources, "osUser": OS_SOURCE})
