"""PocketBizz: a Supabase-compatible backend for Malaysian micro businesses."""

__version__ = "0.1.0"
