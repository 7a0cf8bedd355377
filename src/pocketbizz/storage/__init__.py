"""Storage at /storage/v1 (Supabase Storage-compatible)."""
