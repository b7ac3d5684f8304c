//! Routing: the SSH login name and a channel request (shell, exec,
//! subsystem) become an [`Intent`] — what the person asked for, before
//! anyone decides whether they may have it.
//!
//! This module owns the textual forms of DESIGN.md §2's front-door table:
//! `alice`, `alice@web1`, `alice@root@web1` as login names, and `web1`,
//! `root@web1`, `web1 CMD...`, `rampart ARGS...` as exec commands. It is pure:
//! no I/O, no database, no policy. It must never look up whether an asset
//! exists or is allowed (that is `policy`'s job, and a route error must not
//! reveal it), and never re-quote or rewrite a command that goes to a target.

use std::fmt;

/// The asset name kept for the bastion itself: `ssh bastion rampart ...`
/// runs the ops CLI, so no asset may be called this (`ops` refuses to create
/// one) and `alice@rampart` is not a target.
pub use crate::model::RESERVED_ASSET;

/// The only subsystem the front door offers.
pub const SFTP: &str = "sftp";

const LOGIN_FORMS: &str = "USER, USER@ASSET or USER@ACCOUNT@ASSET";
const TARGET_FORMS: &str = "ASSET or ACCOUNT@ASSET";

/// A parsed SSH login name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The rampart user who authenticates.
    pub user: String,
    /// Set when the login name names a target (`alice@web1`,
    /// `alice@root@web1`): then every channel request goes to that target.
    pub target: Option<Target>,
}

/// A target as a person names it: an asset, and optionally the account on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `None` lets policy choose: the one account the person may use there,
    /// or a chooser when there are several.
    pub account: Option<String>,
    pub asset: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(account) => write!(f, "{account}@{}", self.asset),
            None => f.write_str(&self.asset),
        }
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(target) => write!(f, "{}@{target}", self.user),
            None => f.write_str(&self.user),
        }
    }
}

/// The channel request that starts the session, as the `ssh` layer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `shell`, after a `pty-req` or not.
    Shell { pty: bool },
    /// `exec COMMAND`. `pty` matters too: `ssh -t bastion web1` is an
    /// interactive jump, and `ssh -t bastion web1 top` needs a pty upstream.
    Exec { command: String, pty: bool },
    /// `subsystem NAME`.
    Subsystem(String),
}

/// What the person asked for. Authorisation comes later, in `policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// The TUI menu (user-only login, shell with a pty).
    Menu,
    /// No pty and no command: print the reachable assets and the usage lines,
    /// exit 0.
    Usage,
    /// An interactive shell on a target.
    Jump { target: Target, pty: bool },
    /// A command on a target, passed verbatim (never re-quoted: the target's
    /// shell parses it, exactly as with plain `ssh web1 CMD`).
    Exec {
        target: Target,
        command: String,
        pty: bool,
    },
    /// The sftp subsystem: relayed to `target`, or the virtual tree
    /// `/ASSET/ACCOUNT/...` when there is none.
    Sftp { target: Option<Target> },
    /// `rampart ARGS...`: the ops CLI on the bastion. `args` excludes the
    /// program name itself.
    Admin { args: Vec<String> },
    /// A well-formed request the front door does not offer; `reason` is the
    /// one line shown to the person.
    Refuse { reason: String },
}

/// Why a login name or command cannot be understood. The text is what the
/// person sees: one line, saying what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("empty login name: log in as {LOGIN_FORMS}")]
    EmptyLogin,
    #[error("login name {given}: too many '@'; log in as {LOGIN_FORMS}")]
    LoginForm { given: String },
    #[error("target {given}: too many '@'; use {TARGET_FORMS}")]
    TargetForm { given: String },
    #[error("{given}: the {what} name is missing; use {forms}")]
    Missing {
        what: &'static str,
        given: String,
        forms: &'static str,
    },
    #[error(
        "{what} name {given} is not valid: 1-64 letters, digits, '.', '_' or '-', \
         starting with a letter, digit or '_'"
    )]
    Name { what: &'static str, given: String },
    #[error(
        "\"{RESERVED_ASSET}\" is the bastion itself, not an asset: \
         run `ssh USER@bastion {RESERVED_ASSET} ...` for the ops commands"
    )]
    Reserved,
    #[error("unbalanced {quote} quote in the command")]
    UnbalancedQuote { quote: char },
    #[error("the command ends with a lone backslash")]
    TrailingBackslash,
}

/// Parses a login name: `alice`, `alice@web1` or `alice@root@web1`.
///
/// The client splits `alice@root@web1@bastion` at its last '@', so the
/// server receives `alice@root@web1`.
pub fn parse_login(login: &str) -> Result<Login, RouteError> {
    if login.is_empty() {
        return Err(RouteError::EmptyLogin);
    }
    let parts: Vec<&str> = login.split('@').collect();
    let missing = |what| RouteError::Missing {
        what,
        given: shown(login),
        forms: LOGIN_FORMS,
    };
    let (user, account, asset) = match parts.as_slice() {
        [user] => (*user, None, None),
        [user, asset] => (*user, None, Some(*asset)),
        [user, account, asset] => (*user, Some(*account), Some(*asset)),
        _ => {
            return Err(RouteError::LoginForm {
                given: shown(login),
            });
        }
    };
    check_name("user", user, missing("user"))?;
    let target = match asset {
        None => None,
        Some(asset) => Some(target_from(account, asset, missing)?),
    };
    Ok(Login {
        user: user.to_string(),
        target,
    })
}

/// Parses a target as typed in an exec command: `web1` or `root@web1`.
pub fn parse_target(text: &str) -> Result<Target, RouteError> {
    let missing = |what| RouteError::Missing {
        what,
        given: shown(text),
        forms: TARGET_FORMS,
    };
    match text.split('@').collect::<Vec<_>>().as_slice() {
        [asset] => target_from(None, asset, missing),
        [account, asset] => target_from(Some(account), asset, missing),
        _ => Err(RouteError::TargetForm { given: shown(text) }),
    }
}

fn target_from(
    account: Option<&str>,
    asset: &str,
    missing: impl Fn(&'static str) -> RouteError,
) -> Result<Target, RouteError> {
    if let Some(account) = account {
        check_name("account", account, missing("account"))?;
    }
    check_name("asset", asset, missing("asset"))?;
    if asset == RESERVED_ASSET {
        return Err(RouteError::Reserved);
    }
    Ok(Target {
        account: account.map(str::to_string),
        asset: asset.to_string(),
    })
}

/// Decides what a channel request on a login means (DESIGN.md §2).
pub fn route(login: &Login, request: &Request) -> Result<Intent, RouteError> {
    match (&login.target, request) {
        // The target is in the login name: everything goes to it, so scp,
        // rsync, sftp and IDEs work unchanged.
        (Some(target), Request::Shell { pty }) => Ok(Intent::Jump {
            target: target.clone(),
            pty: *pty,
        }),
        (Some(target), Request::Exec { command, pty }) => Ok(Intent::Exec {
            target: target.clone(),
            command: command.clone(),
            pty: *pty,
        }),
        (Some(target), Request::Subsystem(name)) => Ok(subsystem(name, Some(target))),
        (None, Request::Shell { pty: true }) => Ok(Intent::Menu),
        (None, Request::Shell { pty: false }) => Ok(Intent::Usage),
        (None, Request::Exec { command, pty }) => exec_on_bastion(command, *pty),
        (None, Request::Subsystem(name)) => Ok(subsystem(name, None)),
    }
}

fn subsystem(name: &str, target: Option<&Target>) -> Intent {
    if name == SFTP {
        Intent::Sftp {
            target: target.cloned(),
        }
    } else {
        Intent::Refuse {
            reason: format!(
                "subsystem {} refused: rampart offers only the {SFTP} subsystem",
                shown(name)
            ),
        }
    }
}

/// An exec command on a user-only login: `web1`, `root@web1`, `web1 CMD...`
/// or `rampart ARGS...`.
fn exec_on_bastion(command: &str, pty: bool) -> Result<Intent, RouteError> {
    let command = command.trim_start_matches(is_space);
    let (first, rest) = match command.find(is_space) {
        Some(at) => command.split_at(at),
        None => (command, ""),
    };
    // OpenSSH sends a shell request for an empty command; a client that
    // sends `exec ""` instead gets the same.
    if first.is_empty() {
        return Ok(if pty { Intent::Menu } else { Intent::Usage });
    }
    if first == RESERVED_ASSET {
        return Ok(Intent::Admin {
            args: split_words(rest)?,
        });
    }
    let target = parse_target(first)?;
    // The remote command keeps its own quoting and spacing: only the
    // separator after the target goes.
    let remote = rest.trim_start_matches(is_space);
    if remote.trim_end_matches(is_space).is_empty() {
        Ok(Intent::Jump { target, pty })
    } else {
        Ok(Intent::Exec {
            target,
            command: remote.to_string(),
            pty,
        })
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Splits `rampart` arguments the way a POSIX shell would, without any
/// expansion: whitespace separates words, single quotes are literal, double
/// quotes honour `\"`, `\\`, `\$` and `` \` ``, a backslash outside quotes
/// escapes the next character.
pub fn split_words(text: &str) -> Result<Vec<String>, RouteError> {
    let mut words = Vec::new();
    // `None` between words; `Some` once a word has started, even an empty
    // one (`''` is an argument).
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if is_space(c) => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(RouteError::UnbalancedQuote { quote: '\'' }),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err(RouteError::UnbalancedQuote { quote: '"' }),
                        },
                        Some(c) => w.push(c),
                        None => return Err(RouteError::UnbalancedQuote { quote: '"' }),
                    }
                }
            }
            '\\' => match chars.next() {
                // A backslash-newline joins lines, as in sh.
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(RouteError::TrailingBackslash),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(done) = word {
        words.push(done);
    }
    Ok(words)
}

/// The name rules of `ops` ([`crate::model::check_name`]), with the
/// router's own errors.
fn check_name(what: &'static str, name: &str, missing: RouteError) -> Result<(), RouteError> {
    if name.is_empty() {
        return Err(missing);
    }
    crate::model::check_name(what, name).map_err(|_| RouteError::Name {
        what,
        given: shown(name),
    })
}

/// Person-supplied text as it may appear in a message: quoted, control
/// characters escaped (it is written to their terminal), and cut short so a
/// 64 KiB command cannot fill the screen.
fn shown(text: &str) -> String {
    // Counted after escaping: one ESC shows as six characters.
    const MAX: usize = 64;
    let mut out = String::from("\"");
    let mut width = 0;
    for c in text.chars() {
        let escaped: String = match c {
            // `{:?}` of a str leaves single quotes alone; match it.
            '\'' => "'".to_string(),
            c => c.escape_debug().collect(),
        };
        width += escaped.chars().count();
        if width > MAX {
            out.push_str("\"…");
            return out;
        }
        out.push_str(&escaped);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(account: Option<&str>, asset: &str) -> Target {
        Target {
            account: account.map(str::to_string),
            asset: asset.to_string(),
        }
    }

    fn shell(pty: bool) -> Request {
        Request::Shell { pty }
    }

    fn exec(command: &str, pty: bool) -> Request {
        Request::Exec {
            command: command.to_string(),
            pty,
        }
    }

    fn sub(name: &str) -> Request {
        Request::Subsystem(name.to_string())
    }

    fn run(login: &str, request: &Request) -> Result<Intent, RouteError> {
        route(&parse_login(login)?, request)
    }

    /// One row per line of the DESIGN.md §2 front-door table, as the
    /// server sees it: (login name, channel request, expected intent).
    #[test]
    fn front_door_table() {
        let rows: Vec<(&str, &str, Request, Intent)> = vec![
            (
                "ssh -p 2222 alice@bastion",
                "alice",
                shell(true),
                Intent::Menu,
            ),
            (
                "ssh -p 2222 -t alice@bastion web1",
                "alice",
                exec("web1", true),
                Intent::Jump {
                    target: t(None, "web1"),
                    pty: true,
                },
            ),
            (
                "ssh -p 2222 -t alice@bastion root@web1",
                "alice",
                exec("root@web1", true),
                Intent::Jump {
                    target: t(Some("root"), "web1"),
                    pty: true,
                },
            ),
            (
                "ssh -p 2222 alice@bastion web1 uname -a",
                "alice",
                exec("web1 uname -a", false),
                Intent::Exec {
                    target: t(None, "web1"),
                    command: "uname -a".into(),
                    pty: false,
                },
            ),
            (
                "ssh -p 2222 -t alice@root@web1@bastion",
                "alice@root@web1",
                shell(true),
                Intent::Jump {
                    target: t(Some("root"), "web1"),
                    pty: true,
                },
            ),
            (
                "ssh -p 2222 alice@web1@bastion",
                "alice@web1",
                shell(true),
                Intent::Jump {
                    target: t(None, "web1"),
                    pty: true,
                },
            ),
            (
                "ssh -p 2222 alice@web1@bastion uname -a",
                "alice@web1",
                exec("uname -a", false),
                Intent::Exec {
                    target: t(None, "web1"),
                    command: "uname -a".into(),
                    pty: false,
                },
            ),
            (
                "scp -P 2222 f alice@root@web1@bastion:/tmp (legacy scp)",
                "alice@root@web1",
                exec("scp -t /tmp", false),
                Intent::Exec {
                    target: t(Some("root"), "web1"),
                    command: "scp -t /tmp".into(),
                    pty: false,
                },
            ),
            (
                "rsync -e 'ssh -p 2222' d alice@web1@bastion:/srv",
                "alice@web1",
                exec("rsync --server -logDtpre.iLsfxC . /srv", false),
                Intent::Exec {
                    target: t(None, "web1"),
                    command: "rsync --server -logDtpre.iLsfxC . /srv".into(),
                    pty: false,
                },
            ),
            (
                "sftp -P 2222 alice@root@web1@bastion",
                "alice@root@web1",
                sub("sftp"),
                Intent::Sftp {
                    target: Some(t(Some("root"), "web1")),
                },
            ),
            (
                "sftp -P 2222 alice@bastion",
                "alice",
                sub("sftp"),
                Intent::Sftp { target: None },
            ),
            (
                "ssh -p 2222 admin@bastion rampart user list",
                "admin",
                exec("rampart user list", false),
                Intent::Admin {
                    args: vec!["user".into(), "list".into()],
                },
            ),
            (
                "ssh -p 2222 alice@bastion (no pty, no command)",
                "alice",
                shell(false),
                Intent::Usage,
            ),
            (
                "ssh -p 2222 -T alice@bastion web1 (no pty)",
                "alice",
                exec("web1", false),
                Intent::Jump {
                    target: t(None, "web1"),
                    pty: false,
                },
            ),
            (
                "ssh -p 2222 -t alice@bastion web1 top",
                "alice",
                exec("web1 top", true),
                Intent::Exec {
                    target: t(None, "web1"),
                    command: "top".into(),
                    pty: true,
                },
            ),
            (
                "ssh -p 2222 alice@web1@bastion rampart user list (the target's own command)",
                "alice@web1",
                exec("rampart user list", false),
                Intent::Exec {
                    target: t(None, "web1"),
                    command: "rampart user list".into(),
                    pty: false,
                },
            ),
        ];
        for (typed, login, request, expected) in rows {
            assert_eq!(run(login, &request), Ok(expected), "{typed}");
        }
    }

    #[test]
    fn unknown_subsystems_are_refused_in_one_line() {
        for login in ["alice", "alice@web1"] {
            let Ok(Intent::Refuse { reason }) = run(login, &sub("netconf")) else {
                panic!("netconf not refused for {login}");
            };
            assert!(reason.contains("\"netconf\""), "{reason}");
            assert!(reason.contains("sftp"), "{reason}");
            assert!(!reason.contains('\n'));
        }
        let Ok(Intent::Refuse { reason }) = run("alice", &sub("x\x1b[2Jy")) else {
            panic!("escape subsystem not refused");
        };
        assert!(
            !reason.contains('\x1b'),
            "control characters reach the terminal: {reason}"
        );
    }

    #[test]
    fn remote_commands_are_passed_verbatim() {
        let cases = [
            ("web1 uname -a", "uname -a"),
            ("web1   ls  -l   'a  b' ", "ls  -l   'a  b' "),
            ("web1\tgrep \"x y\" /etc/hosts", "grep \"x y\" /etc/hosts"),
            ("  web1 echo $HOME; ls | wc -l", "echo $HOME; ls | wc -l"),
            ("web1 echo 'unbalanced", "echo 'unbalanced"),
        ];
        for (command, remote) in cases {
            match run("alice", &exec(command, false)) {
                Ok(Intent::Exec { command, .. }) => assert_eq!(command, remote),
                other => panic!("{command:?} -> {other:?}"),
            }
        }
    }

    #[test]
    fn blank_exec_is_a_shell() {
        assert_eq!(run("alice", &exec("", true)), Ok(Intent::Menu));
        assert_eq!(run("alice", &exec("  \t", false)), Ok(Intent::Usage));
        assert_eq!(
            run("alice", &exec("web1   ", true)),
            Ok(Intent::Jump {
                target: t(None, "web1"),
                pty: true
            })
        );
    }

    #[test]
    fn admin_arguments_are_split_like_a_shell() {
        let cases: [(&str, &[&str]); 8] = [
            ("rampart", &[]),
            ("rampart   ", &[]),
            (
                "rampart user add bob --role auditor",
                &["user", "add", "bob", "--role", "auditor"],
            ),
            (
                "rampart session kill 42 --reason 'policy change'",
                &["session", "kill", "42", "--reason", "policy change"],
            ),
            (
                r#"rampart filter add rm --pattern "rm -rf \"/\"""#,
                &["filter", "add", "rm", "--pattern", r#"rm -rf "/""#],
            ),
            (r"rampart a\ b c\\d", &["a b", r"c\d"]),
            ("rampart '' x", &["", "x"]),
            (r#"rampart "a\nb" 'c\d'"#, &[r"a\nb", r"c\d"]),
        ];
        for (command, args) in cases {
            let expected: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            assert_eq!(
                run("admin", &exec(command, false)),
                Ok(Intent::Admin { args: expected }),
                "{command}"
            );
        }
    }

    #[test]
    fn login_and_target_errors() {
        let cases: &[(&str, RouteError)] = &[
            ("", RouteError::EmptyLogin),
            (
                "@web1",
                RouteError::Missing {
                    what: "user",
                    given: "\"@web1\"".into(),
                    forms: LOGIN_FORMS,
                },
            ),
            (
                "alice@",
                RouteError::Missing {
                    what: "asset",
                    given: "\"alice@\"".into(),
                    forms: LOGIN_FORMS,
                },
            ),
            (
                "alice@@web1",
                RouteError::Missing {
                    what: "account",
                    given: "\"alice@@web1\"".into(),
                    forms: LOGIN_FORMS,
                },
            ),
            (
                "a@b@c@d",
                RouteError::LoginForm {
                    given: "\"a@b@c@d\"".into(),
                },
            ),
            (
                "al ice",
                RouteError::Name {
                    what: "user",
                    given: "\"al ice\"".into(),
                },
            ),
            (
                "alice@-web1",
                RouteError::Name {
                    what: "asset",
                    given: "\"-web1\"".into(),
                },
            ),
            (
                "alice@ro/ot@web1",
                RouteError::Name {
                    what: "account",
                    given: "\"ro/ot\"".into(),
                },
            ),
            (
                "é@web1",
                RouteError::Name {
                    what: "user",
                    given: "\"é\"".into(),
                },
            ),
            ("alice@rampart", RouteError::Reserved),
            ("alice@root@rampart", RouteError::Reserved),
        ];
        for (login, error) in cases {
            assert_eq!(parse_login(login).as_ref(), Err(error), "{login:?}");
        }
        let long = "a".repeat(65);
        assert!(matches!(
            parse_login(&long),
            Err(RouteError::Name { what: "user", .. })
        ));
        assert!(parse_login(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn exec_errors() {
        let cases: &[(&str, RouteError)] = &[
            (
                "rampart user add 'bob",
                RouteError::UnbalancedQuote { quote: '\'' },
            ),
            (
                "rampart user add \"bob",
                RouteError::UnbalancedQuote { quote: '"' },
            ),
            ("rampart user add bob\\", RouteError::TrailingBackslash),
            (
                "a@b@c uname",
                RouteError::TargetForm {
                    given: "\"a@b@c\"".into(),
                },
            ),
            (
                "@web1 ls",
                RouteError::Missing {
                    what: "account",
                    given: "\"@web1\"".into(),
                    forms: TARGET_FORMS,
                },
            ),
            (
                "root@ ls",
                RouteError::Missing {
                    what: "asset",
                    given: "\"root@\"".into(),
                    forms: TARGET_FORMS,
                },
            ),
            (
                "'web1' ls",
                RouteError::Name {
                    what: "asset",
                    given: "\"'web1'\"".into(),
                },
            ),
            ("root@rampart ls", RouteError::Reserved),
        ];
        for (command, error) in cases {
            assert_eq!(
                run("alice", &exec(command, false)).as_ref(),
                Err(error),
                "{command:?}"
            );
        }
    }

    #[test]
    fn messages_are_one_short_line() {
        let huge = format!("x{}", "\x1b[2J\x07".repeat(10_000));
        let errors = [
            parse_login(&huge).map(|_| ()),
            parse_login("alice\nroot").map(|_| ()),
            parse_login("a@b@c@d").map(|_| ()),
            parse_login("").map(|_| ()),
            parse_login("alice@rampart").map(|_| ()),
            run("alice", &exec(&format!("{huge} ls"), false)).map(|_| ()),
        ];
        for error in errors {
            let Err(error) = error else {
                panic!("accepted");
            };
            let text = error.to_string();
            assert!(!text.contains('\n') && !text.contains('\x1b'), "{text:?}");
            assert!(text.chars().count() < 250, "{text}");
        }
    }

    #[test]
    fn targets_and_logins_print_as_typed() {
        for login in ["alice", "alice@web1", "alice@root@web1"] {
            let parsed = parse_login(login);
            assert_eq!(parsed.map(|l| l.to_string()).as_deref(), Ok(login));
        }
    }
}
