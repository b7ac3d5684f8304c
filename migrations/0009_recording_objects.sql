-- Recordings kept in an object store (issue 16): which sessions' files have
-- been uploaded (the cast, and the raw sidecar when there is one), and their
-- size. A recorded session that has ended without a row here is still in
-- the spool (the recording dir of the node that ran it). Derived state:
-- the digest in the session's row, in the audit chain, is what `audit
-- verify` checks the object against.
CREATE TABLE recording_objects (
    session_id  TEXT PRIMARY KEY,
    uploaded_at TEXT NOT NULL,
    bytes       BIGINT NOT NULL
);
