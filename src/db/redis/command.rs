//! What the proxy does with a command before the rules see it: a pure
//! decision by the command's name, beside the byte pump.
//!
//! The relay matches each reply to the oldest command still owed one, so
//! every forwarded command must get exactly one reply. Commands that get
//! none, or many, or that would change who the connection is logged in as,
//! are answered by the proxy itself or refused.

use bytes::Bytes;

use super::text::is;

/// The reason given for the commands the bastion always refuses.
pub const BASTION: &str = "bastion";

/// What to do with one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Put to the rules, then forwarded as these arguments (the client's
    /// own, but for `HELLO` without its `AUTH` option).
    Forward(Vec<Bytes>),
    /// `AUTH`: answered `+OK` by the proxy, never forwarded, so that the
    /// session's account on the server never changes.
    Auth,
    /// `QUIT`: answered `+OK`; the connection ends once the replies still
    /// owed are sent.
    Quit,
    /// Refused with this error text, logged as refused by `bastion`.
    Refuse(&'static str),
}

/// What the proxy does with `args` (a command with its name first).
pub fn classify(args: Vec<Bytes>) -> Action {
    let Some(name) = args.first() else {
        return Action::Forward(args);
    };
    let sub = args.get(1).map(|a| a.as_ref()).unwrap_or_default();
    let pushes = "rampart: pub/sub and MONITOR are not available through the bastion \
                  (their messages answer no command, so they cannot be audited)";
    if is(name, "AUTH") {
        Action::Auth
    } else if is(name, "QUIT") {
        Action::Quit
    } else if [
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "UNSUBSCRIBE",
        "PUNSUBSCRIBE",
        "SUNSUBSCRIBE",
        "MONITOR",
    ]
    .iter()
    .any(|c| is(name, c))
    {
        Action::Refuse(pushes)
    } else if ["SYNC", "PSYNC", "REPLCONF"].iter().any(|c| is(name, c)) {
        Action::Refuse("rampart: replication is not proxied by the bastion")
    } else if is(name, "RESET") {
        Action::Refuse(
            "rampart: RESET is not available through the bastion \
             (it would log the connection out of the session's account)",
        )
    } else if is(name, "CLIENT") && is(sub, "REPLY") {
        match args.get(2) {
            Some(mode) if is(mode, "ON") => Action::Forward(args),
            _ => Action::Refuse(
                "rampart: CLIENT REPLY OFF and SKIP are not available through the bastion \
                 (every command must be answered)",
            ),
        }
    } else if is(name, "HELLO") {
        Action::Forward(without_auth(args))
    } else {
        Action::Forward(args)
    }
}

/// `HELLO protover [AUTH username password] [SETNAME name]` without its
/// `AUTH` option; an `AUTH` short of its two arguments goes whole.
pub fn without_auth(args: Vec<Bytes>) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(args.len());
    let mut words = args.into_iter().enumerate();
    while let Some((i, word)) = words.next() {
        if i >= 2 && is(&word, "AUTH") {
            words.next();
            words.next();
            continue;
        }
        out.push(word);
    }
    out
}

/// The `username` and `password` of `HELLO n AUTH username password`, if
/// given.
pub fn hello_auth(args: &[Bytes]) -> Option<(&Bytes, &Bytes)> {
    let at = args.iter().skip(2).position(|a| is(a, "AUTH"))? + 2;
    Some((args.get(at + 1)?, args.get(at + 2)?))
}
