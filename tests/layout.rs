//! The source's shape, as the module map in `src/lib.rs` promises it:
//! dependencies between modules run one way (no import cycle, between the
//! top-level modules nor between the files of one module), no file passes
//! ~800 lines and no function ~150 lines outside tests. Read from the
//! source text: a `crate::X` path written in module Y (outside comments and
//! test modules) is an edge Y -> X; `super::X` in a module's direct child
//! file is an edge between siblings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 150;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code lines: without `#[cfg(test)] mod x { ... }` blocks and
/// without comment lines. Test files (`tests.rs`) have none.
fn code_lines(path: &Path) -> Vec<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return Vec::new();
    }
    let text = std::fs::read_to_string(path).expect("source");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        if line == "#[cfg(test)]" && next.starts_with("mod ") && next.ends_with('{') {
            let mut depth = 0i64;
            let mut j = i + 1;
            while j < lines.len() {
                depth += brace_balance(lines[j]);
                if depth <= 0 {
                    break;
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if !line.starts_with("//") {
            out.push(lines[i].to_string());
        }
        i += 1;
    }
    out
}

/// Opening minus closing braces, outside string and char literals (good
/// enough for this source: no raw strings with unbalanced braces).
fn brace_balance(line: &str) -> i64 {
    let mut depth = 0;
    let mut in_str = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_str => {
                chars.next();
            }
            '"' => in_str = !in_str,
            '\'' if !in_str => {
                // A char literal such as '{' or '\''; a lifetime has no
                // closing quote within two characters.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') {
                    // The backslash, the escaped character, up to the quote.
                    chars.next();
                    chars.next();
                    for c in chars.by_ref() {
                        if c == '\'' {
                            break;
                        }
                    }
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                }
            }
            '/' if !in_str && chars.peek() == Some(&'/') => break,
            '{' if !in_str => depth += 1,
            '}' if !in_str => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// Names `crate::NAME` paths and `use crate::{A, B::c}` groups point at.
fn crate_paths(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        if let Some(group) = after.strip_prefix('{') {
            // Top-level names of the group: the first word of each item.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.extend(first_word(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.extend(first_word(&item));
        } else {
            out.extend(first_word(after));
        }
        rest = &rest[at + prefix.len()..];
    }
    out
}

fn first_word(s: &str) -> Option<String> {
    let word: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// The strongly connected groups of more than one node.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Reachability is enough at this size: a and b are in one cycle when
    // each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|k| (k, reach(k))).collect();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for (a, from_a) in &reaches {
        if !from_a.contains(*a) || groups.iter().any(|g| g.contains(a)) {
            continue;
        }
        let group: Vec<String> = reaches
            .iter()
            .filter(|(b, from_b)| from_a.contains(**b) && from_b.contains(*a))
            .map(|(b, _)| (*b).clone())
            .collect();
        groups.push(group);
    }
    groups
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module a file belongs to, `levels` deep below `src/` (`relay` for
/// `src/relay/pump.rs` at 1; `relay::pump` at 2).
fn module_of(path: &Path, levels: usize) -> Vec<String> {
    let rel = path.strip_prefix(src()).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.truncate(levels);
    parts
}

#[test]
fn modules_depend_one_way() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Per top-level module, the edges between its own files.
    let mut inner: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for path in &files {
        let module = module_of(path, 2);
        let Some(me) = module.first() else { continue };
        if matches!(me.as_str(), "lib" | "main") {
            continue;
        }
        let code = code_lines(path).join("\n");
        let uses = crate_paths(&code, "crate::");
        top.entry(me.clone())
            .or_default()
            .extend(uses.iter().filter(|m| *m != me).cloned());
        let Some(sub) = module.get(1) else { continue };
        let siblings = inner
            .entry(me.clone())
            .or_default()
            .entry(sub.clone())
            .or_default();
        siblings.extend(crate_paths(&code, &format!("crate::{me}::")));
        // `super::x` from a direct child file of the module.
        let direct = path.parent() == Some(src().join(me).as_path());
        if direct {
            siblings.extend(crate_paths(&code, "super::"));
        }
        siblings.remove(sub);
    }
    let mut found = Vec::new();
    for group in cycles(&top) {
        found.push(format!("between modules: {}", group.join(" <-> ")));
    }
    for (module, edges) in &inner {
        let names: BTreeSet<&String> = edges.keys().collect();
        let edges: BTreeMap<String, BTreeSet<String>> = edges
            .iter()
            .map(|(k, v)| {
                let v = v.iter().filter(|n| names.contains(n)).cloned().collect();
                (k.clone(), v)
            })
            .collect();
        for group in cycles(&edges) {
            found.push(format!("inside {module}: {}", group.join(" <-> ")));
        }
    }
    assert!(
        found.is_empty(),
        "import cycles (see the layers in src/lib.rs): {found:#?}"
    );
}

#[test]
fn files_and_functions_stay_small() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut found = Vec::new();
    for path in &files {
        let lines = code_lines(path);
        let name = path.strip_prefix(src()).expect("under src").display();
        if lines.len() > MAX_FILE_LINES {
            found.push(format!("{name}: {} lines", lines.len()));
        }
        for (i, line) in lines.iter().enumerate() {
            let Some(fn_name) = fn_name(line) else {
                continue;
            };
            if line.contains('{') && brace_balance(line) == 0 {
                continue; // a one-line function
            }
            let indent = line.len() - line.trim_start().len();
            let closing = " ".repeat(indent) + "}";
            let end = lines[i + 1..]
                .iter()
                .position(|l| l.starts_with(&closing) && l.len() - l.trim_start().len() == indent)
                .map_or(lines.len(), |p| i + 1 + p);
            let length = end - i + 1;
            if length > MAX_FN_LINES {
                found.push(format!("{name}: fn {fn_name} is {length} lines"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "over {MAX_FILE_LINES} lines per file or {MAX_FN_LINES} per function (tests and comments not counted): {found:#?}"
    );
}

/// The name of a function whose body starts on this line.
fn fn_name(line: &str) -> Option<String> {
    let t = line.trim_start();
    if t.ends_with(';') {
        return None;
    }
    let mut words = t.split_whitespace();
    let mut word = words.next()?;
    loop {
        if word == "fn" {
            return words.next().map(|n| {
                n.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect()
            });
        }
        if !(word.starts_with("pub") || matches!(word, "async" | "const" | "unsafe")) {
            return None;
        }
        word = words.next()?;
    }
}
