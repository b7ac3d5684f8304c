-- The text that appeared on the screens of recorded sessions, line by line
-- with its moment, for "who saw this string, and when". Derived from what
-- was recorded; not part of the audit chain (the recordings are, by digest).
CREATE TABLE screen_text (
    id         INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    offset_ms  BIGINT NOT NULL,
    line       TEXT NOT NULL
);
CREATE INDEX screen_text_session ON screen_text (session_id);

-- A trigram index: any substring of three characters or more is found
-- without scanning every line.
CREATE VIRTUAL TABLE screen_text_fts USING fts5(
    line,
    content = 'screen_text',
    content_rowid = 'id',
    tokenize = 'trigram'
);
CREATE TRIGGER screen_text_ai AFTER INSERT ON screen_text BEGIN
    INSERT INTO screen_text_fts (rowid, line) VALUES (new.id, new.line);
END;
CREATE TRIGGER screen_text_ad AFTER DELETE ON screen_text BEGIN
    INSERT INTO screen_text_fts (screen_text_fts, rowid, line) VALUES ('delete', old.id, old.line);
END;
