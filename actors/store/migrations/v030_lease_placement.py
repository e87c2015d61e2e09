"""Migration 30: where a lease was taken (owner: gpu): the node and GPU of the job it is for."""

OWNER = "gpu"
SQL = """
ALTER TABLE leases ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE leases ADD COLUMN gpu TEXT NOT NULL DEFAULT '';
"""
