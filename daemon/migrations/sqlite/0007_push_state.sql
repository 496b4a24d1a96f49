-- When each push token (by its SHA-256) was last let through (ms since
-- 1970), written at most every few seconds per token by the push API's
-- bookkeeping, never on a report's way to its answer. A token removed from
-- the config keeps its row; nothing reads it then.
CREATE TABLE push_tokens (
    sha256        TEXT PRIMARY KEY,
    last_used_at  INTEGER NOT NULL
);
