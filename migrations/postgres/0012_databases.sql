-- A database asset's default database (`asset add --database NAME`): the
-- one its native client opens when the person names none. Empty: none
-- (the server's default, the account's name for PostgreSQL).
ALTER TABLE assets ADD COLUMN database_name TEXT NOT NULL DEFAULT '';

-- What a command filter's pattern is matched against (`filter add --on`):
-- `shell` the lines typed into a terminal session, `sql` the statements of
-- a database session, `redis` its commands.
ALTER TABLE command_filters ADD COLUMN scope TEXT NOT NULL DEFAULT 'shell';
