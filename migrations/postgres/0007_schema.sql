-- The PostgreSQL schema, equal to the SQLite schema after migrations/0001
-- to 0007 (recorded as version 7): integers are BIGINT, the screen-text
-- index is a GIN-indexed array instead of an FTS5 table. Later migrations
-- come in pairs: migrations/NNNN_x.sql and migrations/postgres/NNNN_x.sql.

-- from migrations/0001_init.sql
-- rampart schema, version 1.
--
-- Portable on purpose: the same statements run on SQLite now and on
-- PostgreSQL for multi-node later. Identifiers are text UUIDs, booleans are
-- BIGINT 0/1, timestamps are UTC text in one fixed RFC 3339 form
-- (YYYY-MM-DDTHH:MM:SS.ffffffZ) so they sort as text, and sizes are BIGINT.
--
-- Audit tables (login_log, operation_log, sessions, commands, transfers)
-- share one hash chain: each sealed row has a global `seq`, the `prev_hash`
-- of the row before it in seq order and its own `hash`; audit_head holds the
-- end of the chain.

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    role                 TEXT NOT NULL CHECK (role IN ('admin', 'auditor', 'user')),
    email                TEXT,
    password_hash        TEXT,
    must_change_password BIGINT NOT NULL DEFAULT 0,
    totp_secret          TEXT,
    totp_last_step       BIGINT,
    active               BIGINT NOT NULL DEFAULT 1,
    expires_at           TEXT,
    failures             BIGINT NOT NULL DEFAULT 0,
    failure_window_start TEXT,
    locked_until         TEXT,
    last_login_at        TEXT,
    last_login_from      TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);

CREATE TABLE user_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    algorithm   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    comment     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    UNIQUE (user_id, fingerprint)
);
CREATE INDEX user_keys_fingerprint ON user_keys (fingerprint);

-- Failed proofs per source address (DESIGN.md §2, lockout semantics).
CREATE TABLE address_failures (
    address              TEXT PRIMARY KEY,
    failures             BIGINT NOT NULL DEFAULT 0,
    failure_window_start TEXT,
    locked_until         TEXT
);

CREATE TABLE user_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    comment    TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    path       TEXT NOT NULL UNIQUE,
    parent_id  TEXT REFERENCES nodes (id) ON DELETE RESTRICT,
    created_at TEXT NOT NULL
);

CREATE TABLE assets (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    address    TEXT NOT NULL,
    platform   TEXT NOT NULL DEFAULT 'linux',
    active     BIGINT NOT NULL DEFAULT 1,
    comment    TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE asset_protocols (
    asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    port     BIGINT NOT NULL CHECK (port BETWEEN 1 AND 65535),
    PRIMARY KEY (asset_id, name)
);

CREATE TABLE asset_nodes (
    asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    node_id  TEXT NOT NULL REFERENCES nodes (id) ON DELETE RESTRICT,
    PRIMARY KEY (asset_id, node_id)
);
CREATE INDEX asset_nodes_node ON asset_nodes (node_id);

-- Target host keys, pinned on first use or by `asset trust`.
CREATE TABLE asset_host_keys (
    asset_id    TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    algorithm   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    pinned_at   TEXT NOT NULL,
    PRIMARY KEY (asset_id, algorithm)
);

CREATE TABLE account_templates (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    username    TEXT NOT NULL,
    secret_kind TEXT NOT NULL CHECK (secret_kind IN ('none', 'password', 'private_key')),
    secret      TEXT,
    privileged  BIGINT NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    asset_id    TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    username    TEXT NOT NULL,
    secret_kind TEXT NOT NULL CHECK (secret_kind IN ('none', 'password', 'private_key')),
    -- Sealed by the vault: v1:<key id>:<hex nonce||ciphertext>.
    secret      TEXT,
    privileged  BIGINT NOT NULL DEFAULT 0,
    active      BIGINT NOT NULL DEFAULT 1,
    template_id TEXT REFERENCES account_templates (id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (asset_id, username)
);

-- Key ids of every master key that has sealed something, so a missing or
-- different key is detected before anything is read or written.
CREATE TABLE vault_keys (
    key_id     TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE permissions (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    accounts    TEXT NOT NULL,
    protocols   TEXT NOT NULL,
    actions     TEXT NOT NULL,
    valid_from  TEXT,
    valid_until TEXT,
    active      BIGINT NOT NULL DEFAULT 1,
    comment     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE permission_users (
    permission_id TEXT NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (permission_id, user_id)
);
CREATE TABLE permission_groups (
    permission_id TEXT NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    group_id      TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    PRIMARY KEY (permission_id, group_id)
);
CREATE TABLE permission_assets (
    permission_id TEXT NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    asset_id      TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    PRIMARY KEY (permission_id, asset_id)
);
CREATE TABLE permission_nodes (
    permission_id TEXT NOT NULL REFERENCES permissions (id) ON DELETE CASCADE,
    node_id       TEXT NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    PRIMARY KEY (permission_id, node_id)
);

CREATE TABLE command_filters (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    pattern    TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('deny', 'allow', 'warn', 'review')),
    priority   BIGINT NOT NULL DEFAULT 50,
    accounts   TEXT NOT NULL DEFAULT '@ALL',
    active     BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Filter bindings; an empty list of a kind means "any" of that kind.
CREATE TABLE filter_bindings (
    filter_id TEXT NOT NULL REFERENCES command_filters (id) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('user', 'group', 'asset', 'node')),
    target_id TEXT NOT NULL,
    PRIMARY KEY (filter_id, kind, target_id)
);
CREATE INDEX filter_bindings_target ON filter_bindings (target_id);

CREATE TABLE login_acls (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    action     TEXT NOT NULL CHECK (action IN ('allow', 'deny')),
    priority   BIGINT NOT NULL DEFAULT 50,
    -- Comma lists; empty means any source / any time.
    sources    TEXT NOT NULL DEFAULT '',
    windows    TEXT NOT NULL DEFAULT '',
    active     BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE acl_bindings (
    acl_id    TEXT NOT NULL REFERENCES login_acls (id) ON DELETE CASCADE,
    kind      TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    target_id TEXT NOT NULL,
    PRIMARY KEY (acl_id, kind, target_id)
);

-- Bumped by every change that affects who may reach what; a running server
-- watches it to rebuild its policy snapshot and end sessions no longer allowed.
CREATE TABLE change_counter (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    counter BIGINT NOT NULL
);
INSERT INTO change_counter (id, counter) VALUES (1, 0);

-- ---------------------------------------------------------------- audit --

CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE login_log (
    id        TEXT PRIMARY KEY,
    at        TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user_id   TEXT,
    source    TEXT NOT NULL,
    method    TEXT NOT NULL,
    result    TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    seq       BIGINT UNIQUE,
    prev_hash TEXT,
    hash      TEXT
);
CREATE INDEX login_log_at ON login_log (at);
CREATE INDEX login_log_user ON login_log (user_name);

CREATE TABLE operation_log (
    id         TEXT PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    via        TEXT NOT NULL,
    verb       TEXT NOT NULL,
    object     TEXT NOT NULL,
    before     TEXT,
    after      TEXT,
    seq        BIGINT UNIQUE,
    prev_hash  TEXT,
    hash       TEXT
);
CREATE INDEX operation_log_at ON operation_log (at);

-- A session row is written when it starts (status 'live') and sealed into
-- the chain when it ends ('closed', 'failed', or 'interrupted' when found
-- live at the next start after a crash).
CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    user_id          TEXT,
    user_name        TEXT NOT NULL,
    asset_id         TEXT,
    asset_name       TEXT NOT NULL,
    account          TEXT NOT NULL,
    protocol         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    source           TEXT NOT NULL,
    started_at       TEXT NOT NULL,
    ended_at         TEXT,
    status           TEXT NOT NULL,
    reason           TEXT NOT NULL DEFAULT '',
    recording        TEXT,
    recording_sha256 TEXT,
    bytes_in         BIGINT NOT NULL DEFAULT 0,
    bytes_out        BIGINT NOT NULL DEFAULT 0,
    seq              BIGINT UNIQUE,
    prev_hash        TEXT,
    hash             TEXT
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_status ON sessions (status);

CREATE TABLE commands (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    at         TEXT NOT NULL,
    offset_ms  BIGINT NOT NULL DEFAULT 0,
    user_name  TEXT NOT NULL,
    asset_name TEXT NOT NULL,
    account    TEXT NOT NULL,
    command    TEXT NOT NULL,
    output     TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    rule       TEXT,
    seq        BIGINT UNIQUE,
    prev_hash  TEXT,
    hash       TEXT
);
CREATE INDEX commands_session ON commands (session_id);
CREATE INDEX commands_at ON commands (at);

CREATE TABLE transfers (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    at         TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    asset_name TEXT NOT NULL,
    account    TEXT NOT NULL,
    operation  TEXT NOT NULL,
    path       TEXT NOT NULL,
    size       BIGINT NOT NULL DEFAULT 0,
    result     TEXT NOT NULL,
    sha256     TEXT,
    error      TEXT NOT NULL DEFAULT '',
    seq        BIGINT UNIQUE,
    prev_hash  TEXT,
    hash       TEXT
);
CREATE INDEX transfers_at ON transfers (at);

-- The root node every asset falls under when none is given.
INSERT INTO nodes (id, path, parent_id, created_at)
VALUES ('00000000-0000-4000-8000-000000000001', '/DEFAULT', NULL, '2026-01-01T00:00:00.000000Z');

-- from migrations/0002_refusals.sql
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

-- from migrations/0003_totp_pending.sql
-- A TOTP enrolment begun with `rampart me mfa enrol` and not yet confirmed
-- with a code: the seed sealed by the vault, and when it was begun (it
-- expires). Login never reads these columns.
ALTER TABLE users ADD COLUMN totp_pending TEXT;
ALTER TABLE users ADD COLUMN totp_pending_at TEXT;

-- from migrations/0005_perm_approval.sql
-- A permission created with --require-approval: a connection it grants
-- waits for an administrator to approve it in the console.
ALTER TABLE permissions ADD COLUMN require_approval BIGINT NOT NULL DEFAULT 0;

-- from migrations/0006_audit_key.sql
-- The audit chain's key (issue 13 item 15). Rows are sealed with
-- HMAC-SHA-256 under a key derived from the master key, which is never in
-- the database. `key_id` names that key (the master key's id): a process
-- that has loaded it seals each new row with it. `keyed_from` is the first
-- seq sealed with it (the rows before were sealed with plain SHA-256 by an
-- older rampart), and `key_mac` authenticates (key_id, keyed_from, the hash
-- of the row before keyed_from) under the key, so that none of them can be
-- changed without it. All three are NULL until a rampart with the master
-- key opens the database.
ALTER TABLE audit_head ADD COLUMN key_id TEXT;
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT;
ALTER TABLE audit_head ADD COLUMN key_mac TEXT;

-- from migrations/0007_search.sql (the screen-text index; see there). On
-- PostgreSQL a block's distinct trigrams are a text array under a GIN index:
-- the words are kept (about a tenth of the block's text), where SQLite's
-- contentless FTS5 keeps only the index.
CREATE TABLE search_blocks (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    session_id TEXT NOT NULL,
    cast_start BIGINT NOT NULL,
    cast_end   BIGINT NOT NULL,
    first_ms   BIGINT NOT NULL,
    last_ms    BIGINT NOT NULL,
    carry      TEXT NOT NULL DEFAULT '',
    carry_ms   BIGINT NOT NULL DEFAULT 0,
    last       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX search_blocks_session ON search_blocks (session_id);

CREATE TABLE search_terms (
    block_id BIGINT PRIMARY KEY REFERENCES search_blocks (id) ON DELETE CASCADE,
    terms    TEXT[] NOT NULL
);
CREATE INDEX search_terms_terms ON search_terms USING GIN (terms) WITH (fastupdate = off);

CREATE TABLE search_progress (
    session_id    TEXT PRIMARY KEY,
    cast_offset   BIGINT NOT NULL,
    indexed_ms    BIGINT NOT NULL,
    text_bytes    BIGINT NOT NULL,
    skipped_bytes BIGINT NOT NULL DEFAULT 0,
    carry         TEXT NOT NULL DEFAULT '',
    carry_ms      BIGINT NOT NULL DEFAULT 0,
    done          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX search_progress_skipped ON search_progress (session_id) WHERE skipped_bytes > 0;

CREATE TABLE search_state (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    watermark    TEXT NOT NULL,
    behind_since TEXT,
    updated_at   TEXT NOT NULL
);
