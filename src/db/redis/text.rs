//! Commands and replies as the log and the rules read them.
//!
//! A command is its words joined by single spaces, the name (and the
//! subcommand of a container command such as `CLIENT KILL`) upper-cased,
//! so that `flushall` and `FLUSHALL` meet the same rule. A word that is not
//! plain is quoted as redis-cli quotes it (`"a b"`, `"caf\xc3\xa9"`), so the
//! text reads back into the same words and no space or quote inside a key
//! can pass for a word boundary. Secrets are masked before anything else
//! sees the text: the password of `AUTH`, of `HELLO ... AUTH`, of `MIGRATE
//! ... AUTH|AUTH2`, the passwords and hashes of `ACL SETUSER`, and
//! `CONFIG SET requirepass|masterauth` and the TLS key passphrases (the
//! arguments Redis itself redacts from its slow log).

use std::fmt::Write;

use bytes::Bytes;

use super::Outcome;
use super::reply::{Answer, Many};

/// The longest command text put in a log.
pub const MAX_LOGGED: usize = 64 << 10;
/// The most bytes of a string reply shown in its summary.
pub const MAX_SHOWN: usize = 200;
/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Commands with subcommands: the subcommand is part of the name.
const CONTAINERS: [&str; 16] = [
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DEBUG", "FUNCTION", "LATENCY", "MEMORY",
    "MODULE", "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
];

/// `CONFIG SET` parameters whose value is a secret.
const SECRET_PARAMETERS: [&str; 4] = [
    "requirepass",
    "masterauth",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
];

/// The command as the rules and the log read it: normalised, quoted,
/// secrets masked. Not capped: the rules see all of it.
pub fn describe(args: &[Bytes]) -> String {
    let masks = masks(args);
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if let Some(Some(mask)) = masks.get(i) {
            out.push_str(mask);
            continue;
        }
        let word = if i == 0 || (i == 1 && is_container(args)) {
            Bytes::from(arg.to_ascii_uppercase())
        } else {
            arg.clone()
        };
        quote(&word, &mut out);
        // Everything after AUTH's first argument is secret: `AUTH ***`.
        if i == 0 && is(arg, "AUTH") && args.len() > 1 {
            out.push(' ');
            out.push_str(MASK);
            break;
        }
    }
    out
}

/// A command's text for the log: at most [`MAX_LOGGED`] bytes, and then
/// how long it was.
pub fn logged(text: &str) -> String {
    if text.len() <= MAX_LOGGED {
        return text.to_string();
    }
    let mut cut = MAX_LOGGED;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{} … [{} bytes in all]",
        text.get(..cut).unwrap_or_default(),
        text.len()
    )
}

/// Whether `arg` is the word `name`, in any case.
pub fn is(arg: &[u8], name: &str) -> bool {
    arg.eq_ignore_ascii_case(name.as_bytes())
}

fn is_container(args: &[Bytes]) -> bool {
    args.first()
        .is_some_and(|name| CONTAINERS.iter().any(|c| is(name, c)))
}

/// What replaces each argument that is a secret.
fn masks(args: &[Bytes]) -> Vec<Option<String>> {
    let mut masks = vec![None; args.len()];
    let mut mask = |i: usize, keep: &str| {
        if let Some(m) = masks.get_mut(i) {
            *m = Some(format!("{keep}{MASK}"));
        }
    };
    let word = |i: usize| args.get(i).map(|a| a.as_ref()).unwrap_or_default();
    let name = word(0);
    if is(name, "HELLO") {
        // HELLO protover [AUTH username password] [SETNAME name]
        for i in 2..args.len() {
            if is(word(i), "AUTH") {
                mask(i + 2, "");
            }
        }
    } else if is(name, "MIGRATE") {
        // MIGRATE host port key db timeout [COPY] [REPLACE]
        //   [AUTH password | AUTH2 username password] [KEYS key ...]
        for i in 6..args.len() {
            match word(i) {
                w if is(w, "KEYS") => break,
                w if is(w, "AUTH") => mask(i + 1, ""),
                w if is(w, "AUTH2") => mask(i + 2, ""),
                _ => {}
            }
        }
    } else if is(name, "ACL") && is(word(1), "SETUSER") {
        // >password, <password, #hash, !hash: the rule's first character
        // says what it does, the rest is the secret.
        for i in 3..args.len() {
            if let Some(&c @ (b'>' | b'<' | b'#' | b'!')) = word(i).first() {
                mask(i, &char::from(c).to_string());
            }
        }
    } else if is(name, "CONFIG") && is(word(1), "SET") {
        // CONFIG SET parameter value [parameter value ...]
        for i in (2..args.len()).step_by(2) {
            if SECRET_PARAMETERS.iter().any(|p| is(word(i), p)) {
                mask(i + 1, "");
            }
        }
    }
    masks
}

/// Whether redis-cli would show the word without quotes.
fn plain(arg: &[u8]) -> bool {
    !arg.is_empty()
        && arg
            .iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\'))
}

/// The word as redis-cli shows it: as is when plain, else in double
/// quotes with its escapes (Redis' `sdscatrepr`).
pub fn quote(arg: &[u8], out: &mut String) {
    if plain(arg) {
        out.push_str(&String::from_utf8_lossy(arg));
        return;
    }
    out.push('"');
    escape(arg, out);
    out.push('"');
}

/// The inside of `sdscatrepr`'s quotes.
fn escape(arg: &[u8], out: &mut String) {
    for &b in arg {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b' '..=b'~' => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
}

/// A top-level reply as the log shows its outcome: `OK`, `(integer) 3`,
/// `"value"`, `(array) 12 items`, `(nil)`; an error reply as such.
pub fn outcome(answer: &Answer) -> Outcome {
    let done = match answer {
        Answer::Status(s) => s.clone(),
        Answer::Error(e) => return Outcome::Error(shorten(e, PREVIEW_ERROR)),
        Answer::Integer(n) => format!("(integer) {n}"),
        Answer::Bulk { head, len } => {
            let shown = head.get(..MAX_SHOWN).unwrap_or(head);
            let mut out = String::from("\"");
            escape(shown, &mut out);
            out.push('"');
            if *len > shown.len() {
                let _ = write!(out, "… ({len} bytes)");
            }
            out
        }
        Answer::Null => "(nil)".into(),
        Answer::Double(d) => format!("(double) {d}"),
        Answer::Boolean(b) => format!("({b})"),
        Answer::BigNumber(n) => format!("(big number) {n}"),
        Answer::Many { kind, len } => {
            let kind = match kind {
                Many::Array => "array",
                Many::Map => "map",
                Many::Set => "set",
                Many::Push => "push",
            };
            match len {
                0 => format!("(empty {kind})"),
                1 => format!("({kind}) 1 item"),
                n => format!("({kind}) {n} items"),
            }
        }
    };
    Outcome::Done(done)
}

/// The longest error message kept in a log, in characters.
const PREVIEW_ERROR: usize = 1000;

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", text.get(..at).unwrap_or_default()),
        None => text.to_string(),
    }
}
