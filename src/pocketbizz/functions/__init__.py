"""Functions at /functions/v1: Python functions run as the caller."""
