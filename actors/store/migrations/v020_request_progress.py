"""Migration 20: how far a request got (owner: watcher), so a halted request resumes in place."""

OWNER = "watcher"
SQL = """
CREATE TABLE request_progress (
    request_id      TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL,
    next_unit       INTEGER NOT NULL,
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT '',
    updated_at      TEXT NOT NULL
);
"""
