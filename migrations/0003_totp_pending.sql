-- A TOTP enrolment begun with `rampart me mfa enrol` and not yet confirmed
-- with a code: the seed sealed by the vault, and when it was begun (it
-- expires). Login never reads these columns.
ALTER TABLE users ADD COLUMN totp_pending TEXT;
ALTER TABLE users ADD COLUMN totp_pending_at TEXT;
