//! Counts over the audit tables for the audit dashboard: today and the last
//! seven days (UTC days, the audit's clock), sessions per day, logins per
//! hour, and who and what was used most. Every query is an indexed range
//! scan on the time column plus a GROUP BY; nothing is loaded row by row.

use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{Result, ts};

/// Days shown in the sessions-per-day chart.
pub const DAYS: usize = 7;
/// Hours shown in the logins-per-hour chart.
pub const HOURS: usize = 24;
/// Names in each top list.
pub const TOP: usize = 5;

/// A count for today and for the last seven days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Figure {
    pub today: i64,
    pub week: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dashboard {
    /// The moment the counts were taken.
    pub at: String,
    pub logins_ok: Figure,
    pub logins_failed: Figure,
    pub sessions: Figure,
    pub commands_denied: Figure,
    pub transfers: Figure,
    /// `(YYYY-MM-DD, sessions)`, oldest first, today last; days without
    /// sessions included.
    #[serde(serialize_with = "as_map")]
    pub sessions_per_day: Vec<(String, i64)>,
    /// `(YYYY-MM-DDTHH, logins)` for the last 24 hours, this hour last.
    #[serde(serialize_with = "as_map")]
    pub logins_per_hour: Vec<(String, i64)>,
    /// Sessions per user and per asset over the seven days, most first.
    #[serde(serialize_with = "as_map")]
    pub top_users: Vec<(String, i64)>,
    #[serde(serialize_with = "as_map")]
    pub top_assets: Vec<(String, i64)>,
}

/// A series as a JSON object (`{"2026-11-23": 4}`), in its own order.
fn as_map<S: serde::Serializer>(series: &[(String, i64)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(series.len()))?;
    for (key, n) in series {
        map.serialize_entry(key, n)?;
    }
    map.end()
}

/// Midnight UTC of `now`'s day.
fn day_start(now: Timestamp) -> Timestamp {
    let secs = now.as_second();
    Timestamp::from_second(secs - secs.rem_euclid(86_400)).unwrap_or(now)
}

async fn count(
    conn: &mut AnyConnection,
    sql: &'static str,
    today: &str,
    week: &str,
) -> Result<Figure> {
    let mut figure = Figure::default();
    for (since, slot) in [(today, &mut figure.today), (week, &mut figure.week)] {
        *slot = sqlx::query_scalar(sql)
            .bind(since)
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok(figure)
}

async fn grouped(
    conn: &mut AnyConnection,
    sql: &'static str,
    since: &str,
) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query(sql).bind(since).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
        .collect()
}

/// Fills the gaps of `counts` (keyed by `key(slot)`) with zeros.
fn series(counts: &[(String, i64)], slots: impl Iterator<Item = String>) -> Vec<(String, i64)> {
    slots
        .map(|slot| {
            let n = counts
                .iter()
                .find(|(k, _)| *k == slot)
                .map_or(0, |(_, n)| *n);
            (slot, n)
        })
        .collect()
}

pub async fn dashboard(conn: &mut AnyConnection, now: Timestamp) -> Result<Dashboard> {
    let today_start = day_start(now);
    let week_start = today_start
        .checked_sub(((DAYS - 1) as i64 * 24).hours())
        .unwrap_or(today_start);
    let (today, week) = (ts(today_start), ts(week_start));
    let logins_ok = count(
        conn,
        "SELECT COUNT(*) FROM login_log WHERE at >= $1 AND result = 'ok'",
        &today,
        &week,
    )
    .await?;
    let logins_failed = count(
        conn,
        "SELECT COUNT(*) FROM login_log WHERE at >= $1 AND result <> 'ok'",
        &today,
        &week,
    )
    .await?;
    let sessions = count(
        conn,
        "SELECT COUNT(*) FROM sessions WHERE started_at >= $1",
        &today,
        &week,
    )
    .await?;
    let commands_denied = count(
        conn,
        "SELECT COUNT(*) FROM commands WHERE at >= $1 AND action = 'deny'",
        &today,
        &week,
    )
    .await?;
    let transfers = count(
        conn,
        "SELECT COUNT(*) FROM transfers WHERE at >= $1",
        &today,
        &week,
    )
    .await?;
    let per_day = grouped(
        conn,
        "SELECT substr(started_at, 1, 10), COUNT(*) FROM sessions
         WHERE started_at >= $1 GROUP BY 1",
        &week,
    )
    .await?;
    let sessions_per_day = series(
        &per_day,
        (0..DAYS).rev().map(|back| {
            today_start
                .checked_sub(((back as i64) * 24).hours())
                .unwrap_or(today_start)
                .strftime("%Y-%m-%d")
                .to_string()
        }),
    );
    let hour_start =
        Timestamp::from_second(now.as_second() - now.as_second().rem_euclid(3600)).unwrap_or(now);
    let first_hour = hour_start
        .checked_sub(SignedDuration::from_hours(HOURS as i64 - 1))
        .unwrap_or(hour_start);
    let per_hour = grouped(
        conn,
        "SELECT substr(at, 1, 13), COUNT(*) FROM login_log WHERE at >= $1 GROUP BY 1",
        &ts(first_hour),
    )
    .await?;
    let hours: Vec<Timestamp> = (0..HOURS)
        .rev()
        .map(|back| {
            hour_start
                .checked_sub(SignedDuration::from_hours(back as i64))
                .unwrap_or(hour_start)
        })
        .collect();
    let logins_per_hour = series(
        &per_hour,
        hours.iter().map(|h| h.strftime("%Y-%m-%dT%H").to_string()),
    );
    let mut top_users = grouped(
        conn,
        "SELECT user_name, COUNT(*) FROM sessions WHERE started_at >= $1
         GROUP BY 1 ORDER BY 2 DESC, 1",
        &week,
    )
    .await?;
    top_users.truncate(TOP);
    let mut top_assets = grouped(
        conn,
        "SELECT asset_name, COUNT(*) FROM sessions WHERE started_at >= $1
         GROUP BY 1 ORDER BY 2 DESC, 1",
        &week,
    )
    .await?;
    top_assets.truncate(TOP);
    Ok(Dashboard {
        at: ts(now),
        logins_ok,
        logins_failed,
        sessions,
        commands_denied,
        transfers,
        sessions_per_day,
        logins_per_hour,
        top_users,
        top_assets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_fill_the_gaps_and_days_start_at_midnight() {
        let counts = vec![("b".to_string(), 3)];
        assert_eq!(
            series(&counts, ["a", "b", "c"].iter().map(|s| s.to_string())),
            vec![("a".into(), 0), ("b".into(), 3), ("c".into(), 0)]
        );
        let now: Timestamp = "2026-11-23T07:30:12Z".parse().unwrap();
        assert_eq!(day_start(now).to_string(), "2026-11-23T00:00:00Z");
    }
}
