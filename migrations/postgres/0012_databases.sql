-- A database asset's default database (`asset add --database NAME`): the
-- one its native client opens when the person names none. Empty: none
-- (the server's default, the account's name for PostgreSQL).
ALTER TABLE assets ADD COLUMN database_name TEXT NOT NULL DEFAULT '';

-- What a command filter's pattern is matched against (`filter add --on`):
-- `shell` the lines typed into a terminal session, `sql` the statements of
-- a database session, `redis` its commands.
ALTER TABLE command_filters ADD COLUMN scope TEXT NOT NULL DEFAULT 'shell';

-- One-time credentials serve database tunnels too (`rampart db ticket`):
-- each ticket says which front may redeem it, so an RDP ticket never logs
-- in to a database, nor the other way round.
ALTER TABLE rdp_tickets ADD COLUMN protocol TEXT NOT NULL DEFAULT 'rdp';
