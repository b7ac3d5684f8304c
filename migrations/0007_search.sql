-- Screen-text search moves off the relay path (issue 14): the old table kept
-- a second copy of every line on screen and was written while the session
-- ran. The new index is built afterwards from the recordings, which hold
-- every byte already: a block is a stretch of one recording, filed under the
-- distinct trigrams of its text. A search finds the blocks holding every
-- trigram of its text, then reads those stretches of the recordings.
-- Derived data: not part of the audit chain (the recordings are, by digest).
DROP TRIGGER IF EXISTS screen_text_ai;
DROP TRIGGER IF EXISTS screen_text_ad;
DROP TABLE IF EXISTS screen_text_fts;
DROP TABLE IF EXISTS screen_text;

-- A stretch of a recording: the events from byte cast_start to cast_end of
-- the cast, whose text goes on from `carry` (the line unfinished where the
-- stretch starts, begun at carry_ms). The block's lines are those completed
-- inside it, and with `last` also the line left unfinished at the end.
CREATE TABLE search_blocks (
    id         INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    cast_start BIGINT NOT NULL,
    cast_end   BIGINT NOT NULL,
    first_ms   BIGINT NOT NULL,
    last_ms    BIGINT NOT NULL,
    carry      TEXT NOT NULL DEFAULT '',
    carry_ms   BIGINT NOT NULL DEFAULT 0,
    last       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX search_blocks_session ON search_blocks (session_id);

-- The trigrams of each block (rowid = search_blocks.id), as words; only the
-- index is kept, not the words.
CREATE VIRTUAL TABLE search_terms USING fts5(
    terms,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'ascii'
);

-- How far each recording is indexed. A session without a row here is not
-- indexed at all yet; `done` once its recording is closed and read to the
-- end. skipped_bytes: bytes of cast not indexed (the middle of a long exec
-- session's output without a pty).
CREATE TABLE search_progress (
    session_id    TEXT PRIMARY KEY,
    cast_offset   BIGINT NOT NULL,
    indexed_ms    BIGINT NOT NULL,
    text_bytes    BIGINT NOT NULL,
    skipped_bytes BIGINT NOT NULL DEFAULT 0,
    carry         TEXT NOT NULL DEFAULT '',
    carry_ms      BIGINT NOT NULL DEFAULT 0,
    done          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX search_progress_skipped ON search_progress (session_id) WHERE skipped_bytes > 0;

-- Every recorded session started before `watermark` is indexed to its end:
-- the indexer looks for work from there on. After each pass it notes the
-- earliest moment of recorded output not yet indexed (`behind_since`, NULL
-- when none), which the search view shows without scanning every session.
CREATE TABLE search_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    watermark    TEXT NOT NULL,
    behind_since TEXT,
    updated_at   TEXT NOT NULL
);
