-- Requests refused after login (x11, agent and port forwarding, unknown
-- subsystems, env variables, ...): one row each, in the audit chain.
CREATE TABLE refusals (
    id        TEXT PRIMARY KEY,
    at        TEXT NOT NULL,
    user_name TEXT NOT NULL,
    source    TEXT NOT NULL,
    request   TEXT NOT NULL,
    reason    TEXT NOT NULL,
    seq       BIGINT UNIQUE,
    prev_hash TEXT,
    hash      TEXT
);
CREATE INDEX refusals_at ON refusals (at);

-- The exit status a target reported for a session, if any.
ALTER TABLE sessions ADD COLUMN exit_status BIGINT;
