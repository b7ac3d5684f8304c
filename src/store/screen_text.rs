//! The screen-text index: lines that appeared in recorded sessions, and the
//! search over them (SQLite FTS5 with the trigram tokenizer, so any
//! substring of three characters or more is found through the index).

use jiff::Timestamp;
use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::{Result, parse_ts};

/// A place where the text was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenHit {
    pub session: String,
    pub user: String,
    pub asset: String,
    pub account: String,
    /// When the line appeared: the session's start plus its offset.
    pub at: Timestamp,
    pub offset_ms: i64,
    pub line: String,
}

/// Adds `lines` (`(offset_ms, text)`) of one session.
pub async fn insert(
    conn: &mut SqliteConnection,
    session: &str,
    lines: &[(i64, String)],
) -> Result<()> {
    for (offset, line) in lines {
        sqlx::query("INSERT INTO screen_text (session_id, offset_ms, line) VALUES ($1, $2, $3)")
            .bind(session)
            .bind(offset)
            .bind(line)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// An FTS5 phrase for `text`: quoted, inner quotes doubled, so that no
/// character of the search is read as query syntax.
fn phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// `LIKE` pattern for `text`, with `\` escaping the wildcards.
fn like(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Where `text` appeared, newest first, at most `limit` places.
/// Case-insensitive for ASCII. Searches shorter than three characters
/// cannot use the trigram index and scan the lines instead.
pub async fn search(conn: &mut SqliteConnection, text: &str, limit: i64) -> Result<Vec<ScreenHit>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let select = "SELECT t.session_id, t.offset_ms, t.line, s.user_name, s.asset_name,
                         s.account, s.started_at
                  FROM screen_text t JOIN sessions s ON s.id = t.session_id";
    let rows = if text.chars().count() >= 3 {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{select} WHERE t.id IN (SELECT rowid FROM screen_text_fts WHERE screen_text_fts MATCH $1)
             ORDER BY t.id DESC LIMIT $2"
        )))
        .bind(phrase(text))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
    } else {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{select} WHERE t.line LIKE $1 ESCAPE '\\' ORDER BY t.id DESC LIMIT $2"
        )))
        .bind(like(text))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
    };
    rows.iter()
        .map(|r| {
            let offset_ms: i64 = r.try_get(1)?;
            let started = parse_ts(&r.try_get::<String, _>(6)?)?;
            let at = started
                .checked_add(jiff::SignedDuration::from_millis(offset_ms))
                .unwrap_or(started);
            Ok(ScreenHit {
                session: r.try_get(0)?,
                line: r.try_get(2)?,
                user: r.try_get(3)?,
                asset: r.try_get(4)?,
                account: r.try_get(5)?,
                at,
                offset_ms,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_never_query_syntax() {
        assert_eq!(phrase(r#"a "b" OR c*"#), r#""a ""b"" OR c*""#);
        assert_eq!(like("50%_\\"), "%50\\%\\_\\\\%");
    }
}
