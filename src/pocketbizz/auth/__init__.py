"""Auth at /auth/v1 (GoTrue-compatible): accounts, sessions, rotating refresh tokens, JWTs."""
