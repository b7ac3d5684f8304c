-- A permission created with --require-approval: a connection it grants
-- waits for an administrator to approve it in the console.
ALTER TABLE permissions ADD COLUMN require_approval BIGINT NOT NULL DEFAULT 0;
