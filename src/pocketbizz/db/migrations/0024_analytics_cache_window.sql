-- Analytics' day cache (0023) holds every day that ended more than 2 hours ago, not only those
-- older than the 8 days 0023 describes: a 30-day report then computes one or two days live
-- instead of nine (measured in docs/benchmarks.md). An insert dated more than an hour back
-- forgets its day (db/definitions/analytics/analytics_cache.sql). Only the description changes
-- here; the tables are 0023's.
comment on table pb_internal.analytics_days is
    'Analytics days whose rollup rows are cached (days that ended over 2 hours ago; filled by '
    'analytics(), forgotten when one of their sales changes)';
