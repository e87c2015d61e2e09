"""Migration 5: ingest file log, draw → file link, injector position (owner: ingestion).

`ingest_files` has one row per file (or injection) handled, processed or quarantined;
`announced_at` stays NULL until every draw of the row was told to the TriggerActor, so draws
committed just before a crash (or by the one-shot CLI) are announced by the next daemon.
`draws.history_len` is the stream's length once the draw was in (older rows: NULL).
`synthetic_injector` holds where each synthetic stream's generator stands: it never replays.
"""

OWNER = "ingestion"
SQL = """
        CREATE TABLE ingest_files (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            name            TEXT NOT NULL,
            sha256          TEXT NOT NULL,
            origin          TEXT NOT NULL,
            outcome         TEXT NOT NULL,
            stream          TEXT,
            rule            TEXT,
            records         INTEGER NOT NULL DEFAULT 0,
            appended        INTEGER NOT NULL DEFAULT 0,
            duplicates      INTEGER NOT NULL DEFAULT 0,
            backfill        INTEGER NOT NULL DEFAULT 0,
            correlation_id  TEXT NOT NULL,
            handled_at      TEXT NOT NULL,
            announced_at    TEXT
        );
        CREATE INDEX ingest_files_unannounced ON ingest_files (announced_at)
            WHERE announced_at IS NULL;
        ALTER TABLE draws ADD COLUMN ingest_file INTEGER REFERENCES ingest_files (id);
        ALTER TABLE draws ADD COLUMN history_len INTEGER;
        CREATE INDEX draws_ingest_file ON draws (ingest_file);
        CREATE INDEX draws_stream_seq ON draws (stream, seq);
        CREATE TABLE synthetic_injector (
            stream          TEXT PRIMARY KEY,
            position        INTEGER NOT NULL,
            state           INTEGER NOT NULL,
            generator_key   TEXT NOT NULL,
            updated_at      TEXT NOT NULL
        );
        """
