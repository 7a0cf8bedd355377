"""Backup and restore: `pocketbizz backup` and `pocketbizz restore` (see service.py)."""

from pocketbizz.backup.service import BackupError, BackupSummary, RestoreSummary, backup, restore

__all__ = ["BackupError", "BackupSummary", "RestoreSummary", "backup", "restore"]
