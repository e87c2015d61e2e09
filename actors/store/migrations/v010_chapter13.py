"""Migration 10: Chapter 13 pools, scores, decisions, requests, policies (owner: trigger)."""

OWNER = "trigger"
SQL = """
        CREATE TABLE trigger_state (
            id              INTEGER PRIMARY KEY CHECK (id = 1),
            body            TEXT NOT NULL,
            updated_at      TEXT NOT NULL
        );
        CREATE TABLE trigger_pools (
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            pool_id         TEXT NOT NULL,
            after_draw_id   TEXT,
            model_id        TEXT,
            request_id      TEXT,
            stale           INTEGER NOT NULL DEFAULT 0,
            body            TEXT NOT NULL,
            registered_at   TEXT NOT NULL
        );
        CREATE INDEX trigger_pools_after ON trigger_pools (after_draw_id, seq);
        CREATE TABLE trigger_scores (
            stream          TEXT NOT NULL,
            draw_id         TEXT NOT NULL,
            status          TEXT NOT NULL,
            pool_id         TEXT,
            hit             INTEGER,
            body            TEXT NOT NULL,
            scored_at       TEXT NOT NULL,
            PRIMARY KEY (stream, draw_id)
        );
        CREATE TABLE trigger_diagnostics (
            draw_id         TEXT PRIMARY KEY,
            schema_version  INTEGER NOT NULL,
            body            TEXT NOT NULL,
            recorded_at     TEXT NOT NULL
        );
        CREATE TABLE trigger_decisions (
            decision_id     TEXT PRIMARY KEY,
            draw_id         TEXT,
            draw_index      INTEGER NOT NULL,
            correlation_id  TEXT NOT NULL,
            rule            TEXT NOT NULL,
            action          TEXT NOT NULL,
            evidence        TEXT NOT NULL,
            proposal        TEXT,
            proposal_source TEXT,
            outcome         TEXT NOT NULL,
            reasons         TEXT NOT NULL,
            changes         TEXT NOT NULL DEFAULT '[]',
            status          TEXT NOT NULL,
            request_id      TEXT,
            request         TEXT,
            created_at      TEXT NOT NULL,
            decided_at      TEXT,
            decided_by      TEXT,
            note            TEXT
        );
        CREATE INDEX trigger_decisions_rule ON trigger_decisions (rule, created_at);
        CREATE TABLE trigger_requests (
            request_id      TEXT PRIMARY KEY,
            action          TEXT NOT NULL,
            rule            TEXT NOT NULL,
            decision_id     TEXT,
            status          TEXT NOT NULL,
            outcome         TEXT,
            filed_at        TEXT NOT NULL,
            finished_at     TEXT
        );
        CREATE TABLE policies (
            policy_id       TEXT PRIMARY KEY,
            parameters      TEXT NOT NULL,
            candidate       TEXT,
            status          TEXT NOT NULL,
            tally           TEXT,
            reason          TEXT NOT NULL DEFAULT '',
            created_at      TEXT NOT NULL,
            updated_at      TEXT NOT NULL
        );
        CREATE TABLE policy_history (
            id              INTEGER PRIMARY KEY AUTOINCREMENT,
            policy_id       TEXT NOT NULL,
            previous_policy_id TEXT,
            event           TEXT NOT NULL,
            detail          TEXT NOT NULL DEFAULT '{}',
            at              TEXT NOT NULL
        )
        """
