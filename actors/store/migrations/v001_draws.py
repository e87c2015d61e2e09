"""Migration 1: draws (owner: ingestion)."""

OWNER = "ingestion"
SQL = """
        CREATE TABLE draws (
            seq          INTEGER PRIMARY KEY AUTOINCREMENT,
            draw_id      TEXT NOT NULL,
            stream       TEXT NOT NULL DEFAULT 'real',
            timestamp    TEXT NOT NULL,
            value        INTEGER NOT NULL,
            source       TEXT NOT NULL,
            is_backfill  INTEGER NOT NULL DEFAULT 0,
            fingerprint  TEXT NOT NULL,
            metadata     TEXT NOT NULL DEFAULT '{}',
            ingested_at  TEXT NOT NULL,
            UNIQUE (stream, draw_id)
        );
        CREATE INDEX draws_stream_ts ON draws (stream, timestamp);
        """
