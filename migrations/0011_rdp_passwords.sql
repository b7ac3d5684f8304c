-- Per-person RDP passwords (issue 17): `rampart me rdp-password` gives a
-- person a password for the RDP front that works for every desktop they
-- may use, until it expires (`rdp.password_lifetime`) or they turn it
-- off; issuing a new one replaces the old. NTLM needs the password
-- itself, so it is kept sealed by the vault key, like tickets.
CREATE TABLE rdp_passwords (
    user_id     TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

-- A ticket issued through a permission that needs an administrator's
-- approval records who gave it: the front admits such a connection only
-- with an approved ticket (one approval, one connection).
ALTER TABLE rdp_tickets ADD COLUMN approved_by TEXT;
