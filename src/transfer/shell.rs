//! The remote command of an exec'd transfer as the target's shell will read
//! it: the words of a plain command, or nothing.
//!
//! sshd runs an exec'd command through the account's login shell, so the
//! bastion must see exactly what that shell will run before it calls a
//! command a file transfer (which needs only `upload`/`download`, not
//! `connect`). This splitter understands POSIX quoting (single quotes,
//! double quotes, backslashes), which is all rsync and a person typing an
//! scp path use, and refuses every command that holds a character some
//! shell acts on (`;` `&` `|` `<` `>` `(` `)` `$` backquote `{` `}` `!`
//! and every control character, newline included) even quoted or escaped:
//! not every login shell reads quotes as a POSIX shell does (cmd.exe takes
//! `\&` and `'a&b'` as two commands), and a file whose name holds one of
//! them can still be moved over SFTP, or by someone with `connect`. A `#`
//! starting a word (a comment) is refused too. Refused means `None`: the
//! command is then not a transfer and needs `connect` like any other.
//!
//! Unquoted wildcards (`*` `?` `[`) are kept, since rsync leaves them for
//! the remote shell to expand in paths; [`Word::open_start`] tells the
//! callers when an expansion could begin with anything at all (a `-`, and
//! so an option).

use std::mem;

/// What some shell acts on wherever it stands, quoted or not.
const ACTIVE: &str = ";&|<>()$`{}!";

/// One word of the command, unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// Has an unquoted `*`, `?` or `[`: the shell may expand it to other
    /// words (names of existing files).
    pub globs: bool,
    /// Begins with an unquoted `*`, `?` or `[`: what it expands to may
    /// begin with any character, `-` included.
    pub open_start: bool,
}

impl Word {
    /// Literal as written: no unquoted wildcard.
    pub fn literal(&self) -> Option<&str> {
        (!self.globs).then_some(self.text.as_str())
    }
}

/// Splits `command` into the words a POSIX shell would pass to one simple
/// command, or `None` when the shell would do anything else with it.
pub fn words(command: &str) -> Option<Vec<Word>> {
    // A tab separates words; inside a word it is refused below.
    if command
        .chars()
        .any(|c| (c.is_control() && c != '\t') || ACTIVE.contains(c))
    {
        return None;
    }
    let mut words = Vec::new();
    let mut word = Word {
        text: String::new(),
        globs: false,
        open_start: false,
    };
    // Whether a word has begun: `''` is an empty word, not nothing.
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(mem::replace(
                        &mut word,
                        Word {
                            text: String::new(),
                            globs: false,
                            open_start: false,
                        },
                    ));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match literal(chars.next()?)? {
                        '\'' => break,
                        c => word.text.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match literal(chars.next()?)? {
                        '"' => break,
                        // Inside double quotes a backslash only escapes these;
                        // before anything else it is itself.
                        '\\' => match literal(chars.next()?)? {
                            escaped @ ('$' | '`' | '"' | '\\') => word.text.push(escaped),
                            other => {
                                word.text.push('\\');
                                word.text.push(other);
                            }
                        },
                        c => word.text.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.text.push(literal(chars.next()?)?);
            }
            '#' if !in_word => return None,
            '*' | '?' | '[' => {
                if !in_word {
                    word.open_start = true;
                }
                in_word = true;
                word.globs = true;
                word.text.push(c);
            }
            c => {
                in_word = true;
                word.text.push(literal(c)?);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// `c`, unless it is a control character: a newline ends a shell command
/// (a backslash before it joins two lines), and none of them belongs in a
/// logged path.
fn literal(c: char) -> Option<char> {
    (!c.is_control()).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(command: &str) -> Option<Vec<String>> {
        words(command).map(|w| w.into_iter().map(|w| w.text).collect())
    }

    #[test]
    fn quoting_is_undone_as_a_shell_would() {
        let cases: &[(&str, &[&str])] = &[
            ("a b\tc", &["a", "b", "c"]),
            ("  a  ", &["a"]),
            ("'a b' \"c d\" e\\ f", &["a b", "c d", "e f"]),
            ("'' \"\"", &["", ""]),
            ("'it'\\''s'", &["it's"]),
            (r#""a\"b\\c\d""#, &[r#"a"b\c\d"#]),
            (r"\#\*\ \~", &["#* ~"]),
            ("'#a b' \"~\"", &["#a b", "~"]),
            ("a#b", &["a#b"]),
            ("ünï cødé", &["ünï", "cødé"]),
        ];
        for (command, expected) in cases {
            let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            assert_eq!(texts(command), Some(expected), "{command:?}");
        }
    }

    #[test]
    fn anything_a_shell_would_act_on_is_refused() {
        for command in [
            "a;b",
            "a ; b",
            "a & b",
            "a && b",
            "a || b",
            "a | b",
            "a > f",
            "a < f",
            "(a)",
            "a $(b)",
            "a `b`",
            "a \"$(b)\"",
            "a \"`b`\"",
            "a $HOME",
            "a ${x}",
            "a {b,c}",
            "! a",
            "a # c",
            "a\nb",
            "a\\\nb",
            "'a\nb'",
            "\"a\rb\"",
            "a\u{0}b",
            "'open",
            "\"open",
            "trailing\\",
            // Even quoted or escaped: cmd.exe, for one, still reads them.
            r"a\;b",
            r"a\&b",
            r"a\|b",
            r"a\$b",
            r"a\(b\)",
            r"a\{b,c\}",
            r"a\!b",
            r"a\`b",
            "'a;b'",
            "'$HOME'",
            "\"a&b\"",
            "'a|b'",
            "'<a>'",
        ] {
            assert_eq!(words(command), None, "{command:?}");
        }
    }

    #[test]
    fn wildcards_are_marked_and_an_open_start_is_told() {
        let w = words(r"/var/*.log \*x '*'y [ab]c").unwrap();
        let marks: Vec<(bool, bool)> = w.iter().map(|w| (w.globs, w.open_start)).collect();
        assert_eq!(
            marks,
            [(true, false), (false, false), (false, false), (true, true)]
        );
        assert_eq!(w[0].literal(), None);
        assert_eq!(w[1].literal(), Some("*x"));
    }
}
