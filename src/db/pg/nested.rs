//! The statements one statement holds, for the rules: the splitter
//! (`sql.rs`) finds where the server splits a query, but a statement's
//! head need not be its effect. `WITH d AS (DELETE FROM t RETURNING *)
//! SELECT ...`, `EXPLAIN ANALYZE DELETE ...` and `PREPARE p AS DELETE ...`
//! all start with another word than the DELETE they run, and a rule such as
//! `(?i)^delete\s` would not see it. Here each statement is parsed with
//! sqlparser and every statement nested in it, at any depth, is handed
//! back as its own text (rendered by sqlparser: keywords in upper case).
//!
//! What the parser models is seen: data-modifying CTE bodies and the
//! statement under a WITH, EXPLAIN's statement, PostgreSQL's PREPARE ... AS,
//! CREATE RULE actions, CREATE TRIGGER and PROCEDURE bodies, and the body
//! of a `LANGUAGE sql` function given as a string (handed back as text to
//! be split and read again). MySQL's `PREPARE s FROM '...'` and MariaDB's
//! `EXECUTE IMMEDIATE '...'` are read here by hand (sqlparser knows neither):
//! the string's content is handed back as text; prepared from anything but
//! one string literal (`@var`, MariaDB's `CONCAT(...)`) the statement is
//! unreadable, and the proxies refuse it.
//!
//! This module only adds: a statement the parser cannot read yields
//! nothing more, and the splitter's statement is still put to the rules as
//! it is. It never refuses on a parse failure (sqlparser does not cover
//! every construct of either dialect).

use std::ops::ControlFlow;

use sqlparser::ast::{CreateFunctionBody, Expr, Statement, visit_statements};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

/// Above this many bytes a statement is parsed only when it holds a word
/// that can nest one ([`NESTING`]): a 1 MiB INSERT of values takes
/// sqlparser tens of milliseconds, and holds no statement but itself.
pub(super) const PARSE_ALWAYS_BELOW: usize = 4096;

/// Every word that starts a construct holding another statement, as
/// lower-case substrings of the statement (matched anywhere, not as whole
/// words: a false match only costs a parse). The attacker writes the text,
/// so the list errs wide: `desc` is MySQL's EXPLAIN, `begin` opens a body,
/// `copy (DELETE ... RETURNING *) TO STDOUT` runs one.
const NESTING: &[&str] = &[
    "with", "explain", "desc", "prepare", "copy", "create", "declare", "begin",
];

/// Which parser reads the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    Postgres,
    MySql,
}

/// One thing found inside a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found {
    /// A nested statement as sqlparser renders it.
    Statement(String),
    /// SQL held in a string (a prepared string, a function body): a query
    /// to split and read again.
    Text(String),
    /// A statement prepared from text the proxy cannot see (`PREPARE s
    /// FROM @v`): the rules cannot judge what it runs.
    Unreadable,
}

/// What `statement` (one normalised statement) holds, or `None` when the
/// parser cannot read it. The statement itself is not among them.
pub(super) fn nested(statement: &str, lang: Lang) -> Option<Vec<Found>> {
    if lang == Lang::MySql
        && let Some(source) = mysql_prepared(statement)
    {
        return Some(prepared_text(source));
    }
    if statement.len() >= PARSE_ALWAYS_BELOW && !may_nest(statement) {
        return Some(Vec::new());
    }
    let dialect: &dyn Dialect = match lang {
        Lang::Postgres => &PostgreSqlDialect {},
        Lang::MySql => &MySqlDialect {},
    };
    let mut found = Vec::new();
    if lang == Lang::MySql
        && let Some(body) = mysql_body(statement)
    {
        found.push(Found::Text(body.to_string()));
    }
    let Ok(parsed) = Parser::parse_sql(dialect, statement) else {
        return (!found.is_empty()).then_some(found);
    };
    for root in &parsed {
        let _ = visit_statements(root, |s| {
            if !std::ptr::eq(s, root) {
                found.push(Found::Statement(s.to_string()));
            }
            if let Some(body) = sql_function_body(s) {
                found.push(Found::Text(body));
            }
            ControlFlow::<()>::Continue(())
        });
    }
    Some(found)
}

/// Whether a statement holds a word that may nest another statement.
pub(super) fn may_nest(statement: &str) -> bool {
    let lower = statement.to_ascii_lowercase();
    NESTING.iter().any(|w| lower.contains(w))
}

/// The body of `CREATE FUNCTION ... AS '...' LANGUAGE sql`: SQL the server
/// runs at each call. Other languages' bodies are not SQL the rules read.
fn sql_function_body(statement: &Statement) -> Option<String> {
    let Statement::CreateFunction(f) = statement else {
        return None;
    };
    let sql = f
        .language
        .as_ref()
        .is_none_or(|l| l.value.eq_ignore_ascii_case("sql"));
    let body = match f.function_body.as_ref()? {
        CreateFunctionBody::AsBeforeOptions { body, .. } => body,
        CreateFunctionBody::AsAfterOptions(body) => body,
        _ => return None,
    };
    match body {
        Expr::Value(v) if sql => v.value.clone().into_string(),
        _ => None,
    }
}

/// The body of a MySQL stored program sqlparser does not read, by its
/// head: what follows `FOR EACH ROW` (a trigger, past `FOLLOWS x` or
/// `PRECEDES x`), `DO` (an event) or `BEGIN` (a procedure's or function's
/// compound body, or MariaDB's `BEGIN NOT ATOMIC` block), in a statement
/// that starts with CREATE, ALTER, BEGIN or a label. A procedure whose
/// body is one statement without BEGIN is not found.
fn mysql_body(statement: &str) -> Option<&str> {
    let mut at = 0;
    let words: Vec<(usize, &str)> = statement
        .split(' ')
        .map(|w| {
            let word = (at, w);
            at += w.len() + 1;
            word
        })
        .collect();
    let is = |i: usize, names: &[&str]| {
        words
            .get(i)
            .is_some_and(|(_, w)| names.iter().any(|n| w.eq_ignore_ascii_case(n)))
    };
    let labelled = words.first().is_some_and(|(_, w)| w.ends_with(':'));
    if !is(0, &["create", "alter", "begin"]) && !labelled {
        return None;
    }
    let open = (0..words.len()).find(|&i| is(i, &["row", "do", "begin"]))?;
    // `FOLLOWS other`, `NOT ATOMIC`: two words more.
    let skip = if (is(open, &["row"]) && is(open + 1, &["follows", "precedes"]))
        || (is(open, &["begin"]) && is(open + 1, &["not"]))
    {
        2
    } else {
        0
    };
    let (start, _) = words.get(open + 1 + skip)?;
    statement.get(*start..)
}

/// What MySQL's `PREPARE name FROM source` and MariaDB's `EXECUTE
/// IMMEDIATE source` prepare: the text after the head. `None` for any
/// other statement.
fn mysql_prepared(statement: &str) -> Option<&str> {
    let mut words = statement.splitn(4, ' ');
    let head = words.next()?;
    let second = words.next()?;
    if head.eq_ignore_ascii_case("execute") && second.eq_ignore_ascii_case("immediate") {
        return Some(statement.splitn(3, ' ').nth(2).unwrap_or_default());
    }
    let from = words.next()?;
    if head.eq_ignore_ascii_case("prepare") && from.eq_ignore_ascii_case("from") {
        return Some(words.next().unwrap_or_default());
    }
    None
}

/// The SQL a prepared source holds: the content of its string literal,
/// read with and without backslash escapes (NO_BACKSLASH_ESCAPES) where
/// the two differ; unreadable when it is anything else (a variable, an
/// expression, which MariaDB allows). What may follow the literal
/// (`EXECUTE IMMEDIATE '...' USING ...`) does not matter.
fn prepared_text(source: &str) -> Vec<Found> {
    let mut found: Vec<Found> = [literal(source, true), literal(source, false)]
        .into_iter()
        .flatten()
        .map(Found::Text)
        .collect();
    found.dedup();
    if found.is_empty() {
        found.push(Found::Unreadable);
    }
    found
}

/// The content of the MySQL string literal `text` starts with, `''` (or
/// `""`) read as one quote and, with `escapes`, backslash escapes read as
/// the server does by default.
fn literal(text: &str, escapes: bool) -> Option<String> {
    let mut chars = text.char_indices().peekable();
    let (_, quote) = chars.next()?;
    if quote != '\'' && quote != '"' {
        return None;
    }
    let mut content = String::new();
    while let Some((_, c)) = chars.next() {
        if escapes && c == '\\' {
            let (_, e) = chars.next()?;
            content.push_str(&unescape(e));
        } else if c == quote {
            if chars.next_if(|&(_, n)| n == quote).is_none() {
                return Some(content);
            }
            content.push(quote);
        } else {
            content.push(c);
        }
    }
    None
}

/// MySQL's reading of `\c` in a string: the named escapes, `\%` and `\_`
/// kept with their backslash (for LIKE), any other character itself.
fn unescape(c: char) -> String {
    match c {
        '0' => "\0".into(),
        'b' => "\u{8}".into(),
        'n' => "\n".into(),
        'r' => "\r".into(),
        't' => "\t".into(),
        'Z' => "\u{1a}".into(),
        '%' | '_' => format!("\\{c}"),
        c => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::sql::{split, split_mysql};

    /// The statements the rules see, under PostgreSQL and MySQL.
    fn pg(text: &str) -> Vec<String> {
        let split = split(text);
        assert!(!split.ambiguous, "{text:?}");
        split.statements
    }

    fn my(text: &str) -> Vec<String> {
        let split = split_mysql(text.as_bytes(), None);
        assert!(!split.ambiguous, "{text:?}");
        split.statements
    }

    #[test]
    fn postgres_statements_hidden_behind_another_head_are_seen() {
        let cases: &[(&str, &str)] = &[
            (
                "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
                "DELETE FROM t RETURNING *",
            ),
            (
                "with x as (select 1) delete from t where a in (select * from x)",
                "DELETE FROM t WHERE a IN (SELECT * FROM x)",
            ),
            ("EXPLAIN ANALYZE DELETE FROM t", "DELETE FROM t"),
            ("explain (analyze, buffers) delete from t", "DELETE FROM t"),
            ("PREPARE p AS DELETE FROM t; EXECUTE p", "DELETE FROM t"),
            (
                "CREATE RULE r AS ON INSERT TO t DO ALSO DELETE FROM u",
                "DELETE FROM u",
            ),
            (
                "CREATE FUNCTION f() RETURNS void AS 'DELETE FROM t' LANGUAGE sql",
                "DELETE FROM t",
            ),
            (
                "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ delete from t $$",
                "delete from t",
            ),
            (
                "CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END",
                "DELETE FROM t",
            ),
            (
                "COPY (DELETE FROM t RETURNING *) TO STDOUT",
                "DELETE FROM t RETURNING *",
            ),
            // Twice nested: a CTE of the statement under EXPLAIN.
            (
                "EXPLAIN ANALYZE WITH d AS (UPDATE t SET a = 1 RETURNING a) SELECT * FROM d",
                "UPDATE t SET a = 1 RETURNING a",
            ),
        ];
        for (text, hidden) in cases {
            let got = pg(text);
            // The splitter's statement first, unchanged.
            assert_eq!(got.first().map(String::as_str), text.split(';').next());
            assert!(got.iter().any(|s| s == hidden), "{text:?}: {got:?}");
        }
    }

    #[test]
    fn mysql_statements_hidden_behind_another_head_are_seen() {
        let cases: &[(&str, &str)] = &[
            ("WITH d AS (SELECT 1) DELETE FROM t", "DELETE FROM t"),
            (
                "WITH d AS (SELECT 1) UPDATE t SET a = 1",
                "UPDATE t SET a = 1",
            ),
            ("EXPLAIN ANALYZE DELETE FROM t", "DELETE FROM t"),
            ("DESC ANALYZE DELETE FROM t", "DELETE FROM t"),
            ("PREPARE s FROM 'DELETE FROM t'", "DELETE FROM t"),
            ("prepare s from \"delete from t\"", "delete from t"),
            // The server's escapes, and a doubled quote.
            (
                r"PREPARE s FROM 'DEL\ETE FROM t WHERE a = ''x'''",
                "DELETE FROM t WHERE a = 'x'",
            ),
            ("EXECUTE IMMEDIATE 'DELETE FROM t' USING 1", "DELETE FROM t"),
            (
                "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW DELETE FROM u",
                "DELETE FROM u",
            ),
            (
                "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW FOLLOWS x BEGIN DELETE FROM u; END",
                "DELETE FROM u",
            ),
            (
                "CREATE PROCEDURE p() BEGIN DELETE FROM u; END",
                "DELETE FROM u",
            ),
            ("BEGIN NOT ATOMIC DELETE FROM t; END", "DELETE FROM t"),
            ("IF 1 THEN DELETE FROM t; END IF", "DELETE FROM t"),
            (
                "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO DELETE FROM t",
                "DELETE FROM t",
            ),
        ];
        for (text, hidden) in cases {
            let got = my(text);
            assert!(got.iter().any(|s| s == hidden), "{text:?}: {got:?}");
        }
    }

    #[test]
    fn sql_prepared_from_what_the_proxy_cannot_see_is_ambiguous() {
        for text in [
            "PREPARE s FROM @v",
            "PREPARE s FROM CONCAT('DEL', 'ETE FROM t')",
            "EXECUTE IMMEDIATE @v",
        ] {
            assert!(split_mysql(text.as_bytes(), None).ambiguous, "{text:?}");
        }
        // SQL in a string in a string, deeper than anyone writes it but to
        // hide a statement.
        let mut text = "DELETE FROM t".to_string();
        for _ in 0..6 {
            text = format!("PREPARE s FROM '{}'", text.replace('\'', "''"));
        }
        assert!(split_mysql(text.as_bytes(), None).ambiguous);
    }

    #[test]
    fn plain_and_unparseable_statements_are_as_the_splitter_gave_them() {
        for text in [
            "select 1",
            "SELECT a, b FROM t WHERE c = 'with x as (delete)'",
            "insert into t values (1, 'a'), (2, 'b')",
            "select from where",
            "vacuum (verbose, analyse) t",
            "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE plpgsql",
        ] {
            assert_eq!(pg(text), [text], "{text:?}");
            assert_eq!(my(text), [text], "{text:?}");
        }
        // Never fewer: the splitter's statements come first, as they were.
        let got = pg("select 1; WITH d AS (DELETE FROM t RETURNING *) SELECT 1; garbage (");
        assert_eq!(
            got,
            [
                "select 1",
                "WITH d AS (DELETE FROM t RETURNING *) SELECT 1",
                "garbage (",
                "DELETE FROM t RETURNING *",
            ]
        );
    }

    #[test]
    fn deep_nesting_is_refused_by_the_parser_not_the_stack() {
        // On a thread with a tokio worker's 2 MiB stack; both texts are
        // parsed (one under the size cap, one with WITH).
        let deep = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let parens = format!("select {}1{}", "(".repeat(2000), ")".repeat(2000));
                let ctes = format!(
                    "{}select 1{}",
                    "with a as (".repeat(500),
                    ") select 1".repeat(500)
                );
                (pg(&parens).len(), pg(&ctes).len(), my(&parens).len())
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
        assert_eq!(deep, (1, 1, 1));
    }
}
