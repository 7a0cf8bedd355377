"""Whole test modules of the API run again, unchanged, against the server behind PgBouncer in
transaction mode (see conftest.py): sales and stock through RPC with embeds, concurrency and
idempotency; storage; auth input errors and the admin API."""

from __future__ import annotations

from auth.test_admin_api import (
    test_admin_api_is_for_service_role_only,
    test_admin_create_get_list_update,
    test_ban_refuses_sign_in_and_ends_sessions_until_lifted,
    test_switched_off_features_answer_gotrue_errors,
)
from auth.test_bad_input import (
    test_auth_needs_the_api_key,
    test_bad_input_gets_gotrue_error,
    test_expired_access_token_is_ignored_by_token_endpoint,
    test_five_megabyte_body_is_refused_and_server_keeps_serving,
    test_missing_bearer_and_bad_jwt_on_user,
    test_weak_password_is_a_typed_client_error,
)
from domain.test_api import (
    test_clients_cannot_write_sales_or_stock_through_rest,
    test_idempotency_and_status_codes_over_http,
    test_sale_through_rpc_and_read_back_with_embedding,
    test_tenant_b_cannot_touch_tenant_a,
    test_twenty_concurrent_sales_through_the_api,
    test_void_production_and_count_through_rpc,
)
from storage.test_storage_api import (
    test_bad_tokens_are_refused_in_storage_shape,
    test_bucket_lifecycle,
    test_oversize_and_wrong_mime_refused,
    test_public_url_serves_without_auth,
    test_raw_body_and_signed_upload,
    test_tenant_b_cannot_touch_a_objects,
    test_traversal_and_bad_names_refused,
    test_upload_download_list_sign_remove,
    test_upsert_update_move_copy,
)

__all__ = [
    "test_admin_api_is_for_service_role_only",
    "test_admin_create_get_list_update",
    "test_auth_needs_the_api_key",
    "test_bad_input_gets_gotrue_error",
    "test_bad_tokens_are_refused_in_storage_shape",
    "test_ban_refuses_sign_in_and_ends_sessions_until_lifted",
    "test_bucket_lifecycle",
    "test_clients_cannot_write_sales_or_stock_through_rest",
    "test_expired_access_token_is_ignored_by_token_endpoint",
    "test_five_megabyte_body_is_refused_and_server_keeps_serving",
    "test_idempotency_and_status_codes_over_http",
    "test_missing_bearer_and_bad_jwt_on_user",
    "test_oversize_and_wrong_mime_refused",
    "test_public_url_serves_without_auth",
    "test_raw_body_and_signed_upload",
    "test_sale_through_rpc_and_read_back_with_embedding",
    "test_switched_off_features_answer_gotrue_errors",
    "test_tenant_b_cannot_touch_a_objects",
    "test_tenant_b_cannot_touch_tenant_a",
    "test_traversal_and_bad_names_refused",
    "test_twenty_concurrent_sales_through_the_api",
    "test_upload_download_list_sign_remove",
    "test_upsert_update_move_copy",
    "test_void_production_and_count_through_rpc",
    "test_weak_password_is_a_typed_client_error",
]
