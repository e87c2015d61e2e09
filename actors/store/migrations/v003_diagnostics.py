"""Migration 3: diagnostics (owner: trigger)."""

OWNER = "trigger"
SQL = """
        CREATE TABLE diagnostics (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            draw_id         TEXT NOT NULL,
            stream          TEXT NOT NULL DEFAULT 'real',
            metric          TEXT NOT NULL,
            value           REAL NOT NULL,
            schema_version  INTEGER NOT NULL DEFAULT 1,
            recorded_at     TEXT NOT NULL
        );
        CREATE INDEX diagnostics_metric ON diagnostics (metric, id);
        """
