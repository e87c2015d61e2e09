"""The shared vocabulary: every message and cross-actor domain model (see ARCHITECTURE §3)."""
