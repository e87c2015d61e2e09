"""The state store: one SQLite file (WAL), migrations, async access off the event loop."""

from actors.store.schema import SCHEMA_VERSION as SCHEMA_VERSION
from actors.store.schema import StoreError as StoreError
from actors.store.schema import connect as connect
from actors.store.store import Store as Store
from actors.store.store import in_transaction as in_transaction
from actors.store.store import open_store as open_store

__all__ = ["SCHEMA_VERSION", "Store", "StoreError", "connect", "in_transaction", "open_store"]
