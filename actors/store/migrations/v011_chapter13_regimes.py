"""Migration 11: Chapter 13's models (priors, regimes), request bookkeeping, no-signal (trigger).

`trigger_models`: each model a retrain registered — its validation (the change detector's prior),
the draw its history started at (its regime), its top survivors and the churn against the one
before. `trigger_requests` gains what the rules read from the ledger instead of the tracker
state: whether a request is parked with a person, its GPU seconds, its regime. The one request
vocabulary (messages/requests.RequestType): `full_pipeline` becomes `pipeline_rerun`.
"""

OWNER = "trigger"
SQL = """
        CREATE TABLE trigger_models (
            model_id        TEXT PRIMARY KEY,
            request_id      TEXT,
            history_from    TEXT,
            prior_hits      REAL NOT NULL DEFAULT 0,
            prior_size      REAL NOT NULL DEFAULT 0,
            pool_size       INTEGER,
            top_survivors   TEXT NOT NULL DEFAULT '[]',
            churn           REAL,
            registered_at   TEXT NOT NULL
        );
        ALTER TABLE trigger_requests ADD COLUMN parked INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE trigger_requests ADD COLUMN gpu_seconds REAL NOT NULL DEFAULT 0;
        ALTER TABLE trigger_requests ADD COLUMN history_from TEXT;
        ALTER TABLE trigger_requests ADD COLUMN units TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE trigger_requests ADD COLUMN reason TEXT NOT NULL DEFAULT '';
        CREATE TABLE trigger_no_signal (
            id              INTEGER PRIMARY KEY CHECK (id = 1),
            body            TEXT,
            updated_at      TEXT NOT NULL
        );
        UPDATE trigger_requests SET action = 'pipeline_rerun' WHERE action = 'full_pipeline';
        UPDATE trigger_decisions SET action = 'pipeline_rerun' WHERE action = 'full_pipeline';
"""
