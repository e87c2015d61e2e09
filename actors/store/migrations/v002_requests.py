"""Migration 2: requests (owner: watcher)."""

OWNER = "watcher"
SQL = """
        CREATE TABLE request_outcomes (
            request_id      TEXT PRIMARY KEY,
            request_type    TEXT NOT NULL,
            status          TEXT NOT NULL,
            correlation_id  TEXT NOT NULL,
            reason          TEXT NOT NULL DEFAULT '',
            detail          TEXT NOT NULL DEFAULT '{}',
            finished_at     TEXT NOT NULL
        );
        CREATE TABLE step_outcomes (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id          TEXT NOT NULL,
            request_id      TEXT NOT NULL,
            step_id         INTEGER NOT NULL,
            attempt         INTEGER NOT NULL,
            status          TEXT NOT NULL,
            action          TEXT NOT NULL,
            confidence      REAL,
            summary         TEXT NOT NULL DEFAULT '',
            correlation_id  TEXT NOT NULL,
            recorded_at     TEXT NOT NULL
        );
        CREATE INDEX step_outcomes_recorded ON step_outcomes (recorded_at);
        CREATE TABLE incidents (
            incident_id     TEXT PRIMARY KEY,
            opened_at       TEXT NOT NULL,
            resolved_at     TEXT,
            severity        TEXT NOT NULL,
            source          TEXT NOT NULL,
            summary         TEXT NOT NULL,
            correlation_id  TEXT NOT NULL
        );
        """
