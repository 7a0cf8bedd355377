"""The data API at /rest/v1 (PostgREST-compatible)."""
