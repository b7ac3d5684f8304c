-- A database asset whose server is reached over TLS (`asset add --tls`):
-- its certificate is pinned on first use among the asset's host keys
-- (algorithm `PROTOCOL-tls`), like an SSH host key, and the proxy never
-- falls back to plain TCP. 0: plain TCP.
ALTER TABLE assets ADD COLUMN tls BIGINT NOT NULL DEFAULT 0;
