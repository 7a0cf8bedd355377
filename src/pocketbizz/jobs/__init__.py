"""Jobs in PostgreSQL (issue 10.1), with procrastinate: enqueued in the transaction of the change
that needs them, retried with exponential backoff, dead (kept, with the last error) after the
last attempt, periodic jobs, and workers that never run one job twice.

Why procrastinate: the queue lives in the same PostgreSQL (no broker to run), a job is a row
taken with `FOR UPDATE SKIP LOCKED`, workers are woken by LISTEN/NOTIFY, and retries, periodic
jobs and worker heartbeats come with it. Its one cost is a second driver (psycopg) next to
asyncpg, on a small pool of its own.
"""

from pocketbizz.jobs.runtime import shutdown, startup

__all__ = ["shutdown", "startup"]
