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
