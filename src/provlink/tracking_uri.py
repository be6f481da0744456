"""An MLflow tracking store's namespace: the identity of its registry and runs in lineage.

Shared by capture (MLflow runs and model versions), the governance commands and the
server's MLflow webhook, which must all name one store the same way, and none of which may
depend on another for it; no MLflow import.
"""

from __future__ import annotations

import os


def tracking_namespace(uri: str) -> str:
    """The tracking URI without user, password or query (which can carry tokens), and a
    relative SQLite path made absolute (against the working directory, as SQLAlchemy opens
    it): ``sqlite:///mlflow.db`` run from two folders is two stores, so two namespaces.

    >>> tracking_namespace("postgresql://ml:secret@db:5432/mlflow?sslmode=require")
    'postgresql://db:5432/mlflow'
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return uri
    rest = rest.split("?", 1)[0].split("#", 1)[0]  # a query can carry a token, path or not
    authority, slash, path = rest.partition("/")
    if is_relative_sqlite(uri):
        path = os.path.abspath(path)  # begins with "/": sqlite:////abs/path
    return f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"


def is_relative_sqlite(uri: str) -> bool:
    """``sqlite:///name.db``: a path relative to the working directory of whoever opens it."""
    scheme, sep, rest = uri.partition("://")
    path = rest.partition("/")[2].split("?", 1)[0]
    return (bool(sep) and scheme.split("+")[0] == "sqlite" and bool(path)
            and not path.startswith(("/", "file:")) and path != ":memory:")
