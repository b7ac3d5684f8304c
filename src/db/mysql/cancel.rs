//! The client's Ctrl-C. The mariadb and mysql clients stop a running
//! statement by opening a second connection, with the same user and
//! password, that sends `KILL QUERY id` for the first one's id (from its
//! greeting, which the proxy passed on from the server). On the session's
//! socket such a connection logs in with the session's one-time password
//! again, and may then run that one statement and nothing else: the proxy
//! runs `KILL QUERY` on the server on a connection of its own, as the
//! session's account, for the session's own connection only. Any other
//! command is refused and the connection closed; before the first
//! connection has logged in, a second one is refused outright.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::UnixStream;
use zeroize::Zeroizing;

use super::front::{self, fatal, read_packet, write};
use super::wire::{self, Greeting, com};
use super::{ProxyError, Upstream, auth};

/// The greeting the session's first connection got, once it logged in.
pub(super) type Greeted = Arc<OnceLock<Greeting>>;

/// How long a cancel connection may take for its one command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection after the session's first.
pub(super) async fn serve(
    mut stream: UnixStream,
    token: Arc<Zeroizing<String>>,
    upstream: Arc<Upstream>,
    greeted: Greeted,
) {
    let Some(greeting) = greeted.get().cloned() else {
        return super::proxy::refuse_second(stream).await;
    };
    if let Err(e) = cancel(&mut stream, &token, &upstream, &greeting).await {
        tracing::info!(target: "db", "a second connection to the session: {e}");
    }
}

async fn cancel(
    stream: &mut UnixStream,
    token: &str,
    upstream: &Upstream,
    greeting: &Greeting,
) -> Result<(), ProxyError> {
    let agreed = front::greet(stream, token, greeting).await?;
    write(stream, &wire::build_ok(agreed.seq, greeting.status)).await?;
    let reading = read_packet(stream);
    let packet = tokio::time::timeout(COMMAND_TIMEOUT, reading)
        .await
        .map_err(|_| ProxyError::Timeout("the cancel connection's command"))?
        .map_err(front::ReadError::client)?;
    let Some((_, payload)) = packet else {
        return Ok(());
    };
    let text = match payload.split_first() {
        Some((&com::QUERY, text)) => String::from_utf8_lossy(text).into_owned(),
        Some((&com::QUIT, _)) => return Ok(()),
        _ => String::new(),
    };
    if !kills(&text, greeting.connection) {
        let said = "rampart: a second connection may only stop the session's running statement (KILL QUERY)";
        fatal(stream, 1, 1045, "42000", said).await;
        return Err(ProxyError::Second);
    }
    match auth::kill_query(upstream, greeting.connection).await {
        Ok(()) => write(stream, &wire::build_ok(1, greeting.status)).await,
        Err(e) => {
            fatal(
                stream,
                1,
                1105,
                "HY000",
                "rampart: the statement could not be stopped",
            )
            .await;
            Err(e)
        }
    }
}

/// Whether `text` is `KILL QUERY id` for the session's connection `id`
/// (any case and spacing, as clients write it).
fn kills(text: &str, id: u32) -> bool {
    let words: Vec<&str> = text
        .trim()
        .trim_end_matches(';')
        .split_whitespace()
        .collect();
    matches!(words.as_slice(), [kill, query, n]
        if kill.eq_ignore_ascii_case("kill")
            && query.eq_ignore_ascii_case("query")
            && n.parse::<u32>() == Ok(id))
}

#[cfg(test)]
mod tests {
    use super::kills;

    #[test]
    fn only_the_sessions_own_kill_query_is_taken() {
        assert!(kills("KILL QUERY 42", 42));
        assert!(kills("kill  query 42;", 42));
        assert!(!kills("KILL QUERY 43", 42));
        assert!(!kills("KILL 42", 42));
        assert!(!kills("KILL CONNECTION 42", 42));
        assert!(!kills("KILL QUERY 42; DROP TABLE t", 42));
        assert!(!kills("SELECT 1", 42));
    }
}
