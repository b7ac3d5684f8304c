-- A database asset's default database (`asset add --database NAME`): the
-- one its native client opens when the person names none. Empty: none
-- (the server's default, the account's name for PostgreSQL).
ALTER TABLE assets ADD COLUMN database_name TEXT NOT NULL DEFAULT '';
