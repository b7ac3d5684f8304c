-- Several nodes sharing one database (issue 16): each node's heartbeat, and
-- which node runs each session. Operational state, not part of the audit
-- chain: a session's own row says what happened in it.
CREATE TABLE cluster_nodes (
    name         TEXT PRIMARY KEY,
    instance     TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);

CREATE TABLE session_nodes (
    session_id TEXT PRIMARY KEY,
    node       TEXT NOT NULL
);
CREATE INDEX session_nodes_node ON session_nodes (node);
