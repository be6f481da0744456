"""provlink's embedded lineage backend: Marquez's HTTP API over SQLite or PostgreSQL.

>>> from provlink.server import open_store, create_app   # doctest: +SKIP
>>> app = create_app(open_store())                      # doctest: +SKIP
"""

from provlink.server.store import Store as Store
from provlink.server.store import open_store as open_store
from provlink.server.validation import validate_event as validate_event

__all__ = ["Store", "open_store", "validate_event"]
