"""Realtime at /realtime/v1 (Phoenix channels, protocol 1.0.0)."""
