-- RemoteApp (issue 18): the programs a Windows asset publishes, each
-- opened alone in a window through the RDP front (`asset app add`). The
-- alias is the one the server publishes (`||ALIAS`); the name is shown.
CREATE TABLE remote_apps (
    asset_id    TEXT NOT NULL REFERENCES assets(id) ON DELETE CASCADE,
    alias       TEXT NOT NULL,
    name        TEXT NOT NULL,
    arguments   TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    PRIMARY KEY (asset_id, alias)
);
