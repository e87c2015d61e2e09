"""Migration 4: leases (owner: gpu)."""

OWNER = "gpu"
SQL = """
        CREATE TABLE leases (
            lease_id        TEXT PRIMARY KEY,
            job             TEXT NOT NULL,
            correlation_id  TEXT NOT NULL,
            taken_at        TEXT NOT NULL,
            returned_at     TEXT,
            outcome         TEXT NOT NULL DEFAULT ''
        );
        """
