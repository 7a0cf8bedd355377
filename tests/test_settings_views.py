"""Typed views of the flat PB_* settings that services receive (no probing with defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocketbizz.settings import LocalStorageSettings, S3StorageSettings, Settings
from pocketbizz.storage.backend import LocalDiskStore, create_store
from pocketbizz.storage.s3 import S3Store


def test_local_storage_defaults_to_the_data_dir(tmp_path: Path) -> None:
    view = Settings(data_dir=tmp_path).storage
    assert view == LocalStorageSettings(root=tmp_path / "storage")
    assert isinstance(create_store(view), LocalDiskStore)


def test_local_storage_dir_overrides_the_data_dir(tmp_path: Path) -> None:
    view = Settings(data_dir=tmp_path, storage_dir=tmp_path / "bytes").storage
    assert view == LocalStorageSettings(root=tmp_path / "bytes")


def test_s3_storage_carries_its_credentials_and_default_region(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        storage_backend="s3",
        s3_endpoint="http://127.0.0.1:9000",
        s3_bucket="objects",
        s3_access_key="key",
        s3_secret_key="secret",
    )
    view = settings.storage
    assert view == S3StorageSettings(
        endpoint="http://127.0.0.1:9000",
        bucket="objects",
        access_key="key",
        secret_key="secret",
        region="us-east-1",
    )
    assert isinstance(create_store(view), S3Store)


def test_s3_storage_names_the_missing_variable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, storage_backend="s3", s3_endpoint="http://x")
    with pytest.raises(ValueError, match="PB_S3_BUCKET is required when PB_STORAGE_BACKEND=s3"):
        _ = settings.storage
