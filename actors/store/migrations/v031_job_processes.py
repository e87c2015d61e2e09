"""Migration 31: job processes running now (owner: gpu), so a restart can kill the orphans."""

OWNER = "gpu"
SQL = """
CREATE TABLE job_processes (
    pid             INTEGER PRIMARY KEY,
    start_ticks     INTEGER NOT NULL,
    job             TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    started_at      TEXT NOT NULL
);
"""
