"""Database access: the embedded server, the migration runner and the per-request transaction."""

from pocketbizz.db.database import Database, Identity
from pocketbizz.db.migrate import apply_migrations, pending_migrations

__all__ = ["Database", "Identity", "apply_migrations", "pending_migrations"]
