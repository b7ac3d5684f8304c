-- One-time RDP credentials (issue 17): issued to a person for one asset and
-- one account (`rampart rdp ticket`), valid for 60 s and redeemed once by
-- the RDP front's NLA. NTLM needs the password itself, so it is kept
-- sealed by the vault key, like account secrets; a redeemed or expired
-- ticket is worthless and is deleted a day later.
CREATE TABLE rdp_tickets (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    asset_id    TEXT NOT NULL,
    account     TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT
);
CREATE INDEX rdp_tickets_user_asset ON rdp_tickets (user_id, asset_id);
