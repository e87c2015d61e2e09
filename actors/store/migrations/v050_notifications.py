"""The notifier's ledger: one row per notified item (deduplication across restarts), and how
far into the audit trail it has read."""

OWNER = "notify"
SQL = """
CREATE TABLE notifications (
    item_key        TEXT PRIMARY KEY,
    record_id       TEXT NOT NULL,
    entity          TEXT NOT NULL,
    entity_id       TEXT NOT NULL,
    event           TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    error           TEXT NOT NULL DEFAULT '',
    url             TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE TABLE notify_cursor (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    audit_offset    INTEGER NOT NULL,
    updated_at      TEXT NOT NULL
)
"""
