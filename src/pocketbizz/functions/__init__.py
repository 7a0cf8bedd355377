"""Functions at /functions/v1: Python functions registered by name, run as the caller.

Each runs inside the caller's one transaction (role and claims set, RLS in force); JSON in and
out; errors as `{"error": ...}` with the right status, which the official client raises as
`FunctionsHttpError`.
"""
