//! The login form in a page, for a web account's form login
//! ([`crate::model::FormLogin`]): which form, what it posts where, and which
//! of its inputs take the name and the password. Pure: a page's text in, a
//! [`Form`] out.
//!
//! The page is read by html5gum, a WHATWG tokenizer: tag soup (unclosed
//! tags, unquoted attributes) reads as a browser reads it, and character
//! references in attribute values are decoded. No tree is built: forms do
//! not nest (a `<form>` inside an open one is ignored, as browsers do), so
//! the tags in order say which form owns which input; an input's `form=ID`
//! attribute gives it to that form instead.
//!
//! Selectors (`form=` in the login's spec) are one compound selector on the
//! form element itself: an optional tag (`form`), then any of `#id`,
//! `.class`, `[attr]`, `[attr=value]` (the value bare or quoted), e.g.
//! `form`, `#login`, `.signin`, `form#login`, `form.signin`,
//! `[action=/session]`, `form[name="login"]`. No combinators (`div form`).
//!
//! Must never: see the secret (it is filled in by `login`, after this).

use std::collections::BTreeMap;

use html5gum::{DefaultEmitter, Token, Tokenizer};

use crate::model::FormLogin;

/// A login form as a browser would submit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// The `action` attribute as written (entities decoded, trimmed);
    /// empty when the form has none: it posts to the page's own URL.
    pub action: String,
    /// `GET` or `POST`.
    pub method: String,
    /// What the form sends, in document order: hidden and text inputs with
    /// their values, checked checkboxes and radios, selected options,
    /// textareas, and the first named submit button. The user and password
    /// fields are among them (appended when the page has them disabled).
    pub fields: Vec<(String, String)>,
    /// The input that takes the account's name, if the form has one.
    pub user_field: Option<String>,
    /// The input that takes the secret.
    pub password_field: String,
}

/// Finds the login form of `login` in `html`, the page at `login.path`:
/// the form matching `login.form`, else the first with a password input
/// (or with an input named `login.password_field`). The error is one line
/// saying what was not found.
pub fn find(html: &str, login: &FormLogin) -> Result<Form, String> {
    let page = &login.path;
    let forms = parse(html);
    let form = match &login.form {
        Some(text) => {
            let selector = Selector::parse(text)?;
            forms
                .iter()
                .find(|f| selector.matches(&f.attrs))
                .ok_or_else(|| format!("no form matching {text} on {page}"))?
        }
        None => forms
            .iter()
            .find(|f| password_index(f, login.password_field.as_deref()).is_some())
            .ok_or_else(|| match &login.password_field {
                Some(name) => format!("no form with an input named {name:?} on {page}"),
                None => format!("no form with a password input on {page}"),
            })?,
    };
    let password = password_index(form, login.password_field.as_deref())
        .and_then(|i| form.controls.get(i).map(|c| (i, c.name.clone())));
    let Some((at, password_field)) = password else {
        return Err(match &login.password_field {
            Some(name) => format!("the login form on {page} has no input named {name:?}"),
            None => format!("the login form on {page} has no password input"),
        });
    };
    let user_field = match &login.user_field {
        Some(name) => {
            if !form
                .controls
                .iter()
                .any(|c| &c.name == name && c.is_input())
            {
                return Err(format!(
                    "the login form on {page} has no input named {name:?}"
                ));
            }
            Some(name.clone())
        }
        None => form
            .controls
            .get(..at)
            .unwrap_or_default()
            .iter()
            .rev()
            .find(|c| matches!(c.kind.as_str(), "text" | "email") && !c.name.is_empty())
            .map(|c| c.name.clone()),
    };
    let mut fields = form.fields();
    for name in user_field.iter().chain([&password_field]) {
        if !fields.iter().any(|(n, _)| n == name) {
            fields.push((name.clone(), String::new()));
        }
    }
    let method = match form.attrs.get("method") {
        Some(m) if m.trim().eq_ignore_ascii_case("post") => "POST",
        _ => "GET",
    };
    Ok(Form {
        action: form
            .attrs
            .get("action")
            .map_or("", |a| a.trim())
            .to_string(),
        method: method.to_string(),
        fields,
        user_field,
        password_field,
    })
}

/// Whether `html` has a form with a password input: a page that still
/// shows one after a login did not log in.
pub fn has_password_form(html: &str) -> bool {
    parse(html)
        .iter()
        .any(|f| password_index(f, None).is_some())
}

/// The index of the form's password control: the input named `name`, or
/// the first named `type=password` input.
fn password_index(form: &RawForm, name: Option<&str>) -> Option<usize> {
    form.controls.iter().position(|c| match name {
        Some(name) => c.name == name && c.is_input(),
        None => c.kind == "password" && !c.name.is_empty(),
    })
}

/// One `<form>` and the controls it owns, in document order.
#[derive(Debug, Default)]
struct RawForm {
    attrs: BTreeMap<String, String>,
    controls: Vec<Control>,
}

/// An input, select, textarea or button.
#[derive(Debug, Clone, Default)]
struct Control {
    /// An input's type (`text` when missing or unknown), `submit`/`button`/
    /// `reset` for a button, `select`, `textarea`.
    kind: String,
    name: String,
    /// An input's or button's value (one), a select's chosen options, a
    /// textarea's text (one).
    values: Vec<String>,
    checked: bool,
    disabled: bool,
}

impl Control {
    /// Takes text typed by a person (not a button, box or file).
    fn is_input(&self) -> bool {
        !matches!(
            self.kind.as_str(),
            "checkbox" | "radio" | "submit" | "image" | "reset" | "button" | "file" | "select"
        )
    }
}

impl RawForm {
    /// The form data set a browser would send, its first named submit
    /// button standing for the click.
    fn fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut submitted = false;
        for c in &self.controls {
            if c.disabled || c.name.is_empty() {
                continue;
            }
            let value = c.values.first().cloned().unwrap_or_default();
            match c.kind.as_str() {
                "checkbox" | "radio" if c.checked => {
                    let value = if value.is_empty() { "on".into() } else { value };
                    out.push((c.name.clone(), value));
                }
                "submit" if !submitted => {
                    submitted = true;
                    out.push((c.name.clone(), value));
                }
                "checkbox" | "radio" | "submit" | "image" | "reset" | "button" | "file" => {}
                _ => out.extend(c.values.iter().map(|v| (c.name.clone(), v.clone()))),
            }
        }
        out
    }
}

const INPUT_TYPES: &[&str] = &[
    "hidden",
    "text",
    "search",
    "tel",
    "url",
    "email",
    "password",
    "date",
    "month",
    "week",
    "time",
    "datetime-local",
    "number",
    "range",
    "color",
    "checkbox",
    "radio",
    "file",
    "submit",
    "image",
    "reset",
    "button",
];

/// What the tokenizer is in the middle of.
#[derive(Default)]
struct Parser {
    forms: Vec<RawForm>,
    /// Controls in document order, with the form open around them and
    /// their `form` attribute.
    controls: Vec<(Option<usize>, Option<String>, Control)>,
    open_form: Option<usize>,
    select: Option<OpenSelect>,
    /// The open option: its value attribute, its text, selected.
    option: Option<(Option<String>, String, bool)>,
    /// The open textarea: its control's index and text.
    textarea: Option<(usize, String)>,
}

/// A select being read.
struct OpenSelect {
    /// Its control's index in `Parser::controls`.
    control: usize,
    multiple: bool,
    /// (value, selected) of its options so far.
    options: Vec<(String, bool)>,
}

fn parse(html: &str) -> Vec<RawForm> {
    let mut emitter = DefaultEmitter::default();
    // Script, style, textarea and title bodies are text, not tags.
    emitter.naively_switch_states(true);
    let mut p = Parser::default();
    for token in Tokenizer::new_with_emitter(html, emitter).flatten() {
        match token {
            Token::StartTag(tag) => {
                let attrs = tag
                    .attributes
                    .iter()
                    .map(|(k, v)| (lossy(k), lossy(v)))
                    .collect();
                p.start(&lossy(&tag.name), attrs);
            }
            Token::EndTag(tag) => p.end(&lossy(&tag.name)),
            Token::String(text) => p.text(&lossy(&text)),
            Token::Comment(_) | Token::Doctype(_) | Token::Error(_) => {}
        }
    }
    p.finish()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Parser {
    fn start(&mut self, name: &str, attrs: BTreeMap<String, String>) {
        match name {
            // A form inside an open one is ignored, as browsers do.
            "form" if self.open_form.is_none() => {
                self.open_form = Some(self.forms.len());
                self.forms.push(RawForm {
                    attrs,
                    controls: Vec::new(),
                });
            }
            "input" => {
                let kind = attrs
                    .get("type")
                    .map(|t| t.trim().to_ascii_lowercase())
                    .filter(|t| INPUT_TYPES.contains(&t.as_str()))
                    .unwrap_or_else(|| "text".into());
                let value = attrs.get("value").cloned().unwrap_or_default();
                self.push(kind, vec![value], &attrs);
            }
            "button" => {
                let kind = match attrs.get("type").map(|t| t.trim().to_ascii_lowercase()) {
                    Some(t) if t == "button" || t == "reset" => t,
                    _ => "submit".into(),
                };
                let value = attrs.get("value").cloned().unwrap_or_default();
                self.push(kind, vec![value], &attrs);
            }
            "select" => {
                self.end_select();
                let control = self.push("select".into(), Vec::new(), &attrs);
                self.select = Some(OpenSelect {
                    control,
                    multiple: attrs.contains_key("multiple"),
                    options: Vec::new(),
                });
            }
            "option" | "optgroup" => {
                self.end_option();
                if name == "option" && self.select.is_some() {
                    let value = attrs.get("value").cloned();
                    let selected = attrs.contains_key("selected");
                    self.option = Some((value, String::new(), selected));
                }
            }
            "textarea" => {
                let index = self.push("textarea".into(), Vec::new(), &attrs);
                self.textarea = Some((index, String::new()));
            }
            _ => {}
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "form" => self.open_form = None,
            "option" | "optgroup" => self.end_option(),
            "select" => self.end_select(),
            "textarea" => self.end_textarea(),
            _ => {}
        }
    }

    fn text(&mut self, text: &str) {
        if let Some((_, t)) = &mut self.textarea {
            t.push_str(text);
        } else if let Some((_, t, _)) = &mut self.option {
            t.push_str(text);
        }
    }

    fn push(
        &mut self,
        kind: String,
        values: Vec<String>,
        attrs: &BTreeMap<String, String>,
    ) -> usize {
        let control = Control {
            kind,
            name: attrs.get("name").cloned().unwrap_or_default(),
            values,
            checked: attrs.contains_key("checked"),
            disabled: attrs.contains_key("disabled"),
        };
        self.controls
            .push((self.open_form, attrs.get("form").cloned(), control));
        self.controls.len() - 1
    }

    fn end_option(&mut self) {
        let (Some((value, text, selected)), Some(select)) = (self.option.take(), &mut self.select)
        else {
            return;
        };
        let value = value.unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "));
        select.options.push((value, selected));
    }

    fn end_select(&mut self) {
        self.end_option();
        let Some(OpenSelect {
            control: index,
            multiple,
            options,
        }) = self.select.take()
        else {
            return;
        };
        let mut chosen: Vec<String> = options
            .iter()
            .filter(|(_, selected)| *selected)
            .map(|(v, _)| v.clone())
            .collect();
        if !multiple {
            // One choice: the last marked selected wins, else the first.
            chosen = match chosen.pop() {
                Some(last) => vec![last],
                None => options
                    .first()
                    .map(|(v, _)| v.clone())
                    .into_iter()
                    .collect(),
            };
        }
        if let Some((_, _, control)) = self.controls.get_mut(index) {
            control.values = chosen;
        }
    }

    fn end_textarea(&mut self) {
        let Some((index, text)) = self.textarea.take() else {
            return;
        };
        // A newline right after <textarea> is not part of its value.
        let text = text
            .strip_prefix("\r\n")
            .or_else(|| text.strip_prefix('\n'))
            .unwrap_or(&text);
        if let Some((_, _, control)) = self.controls.get_mut(index) {
            control.values = vec![text.to_string()];
        }
    }

    fn finish(mut self) -> Vec<RawForm> {
        self.end_select();
        self.end_textarea();
        for (open, owner, control) in self.controls {
            let form = match owner {
                Some(id) => self
                    .forms
                    .iter()
                    .position(|f| f.attrs.get("id") == Some(&id)),
                None => open,
            };
            if let Some(form) = form.and_then(|i| self.forms.get_mut(i)) {
                form.controls.push(control);
            }
        }
        self.forms
    }
}

/// One compound selector on a form (see the module docs).
#[derive(Debug, Default, PartialEq, Eq)]
struct Selector {
    id: Option<String>,
    classes: Vec<String>,
    /// `[name]` (any value) or `[name=value]`.
    attrs: Vec<(String, Option<String>)>,
}

impl Selector {
    fn parse(text: &str) -> Result<Selector, String> {
        let bad = |why: &str| format!("form selector {text:?}: {why}");
        let s = text.trim();
        let tag_end = s
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '-')
            .unwrap_or(s.len());
        let (tag, mut rest) = s.split_at(tag_end);
        if !tag.is_empty() && !tag.eq_ignore_ascii_case("form") {
            return Err(bad(&format!("it picks <{tag}>, not a form")));
        }
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let mut selector = Selector::default();
        let ident_end = |r: &str| {
            r.find(|c: char| "#.[]".contains(c) || c.is_whitespace() || c == '>')
                .unwrap_or(r.len())
        };
        loop {
            let mut chars = rest.chars();
            let Some(first) = chars.next() else { break };
            let after = chars.as_str();
            match first {
                '#' | '.' => {
                    let (name, tail) = after.split_at(ident_end(after));
                    if name.is_empty() {
                        return Err(bad(&format!("a name after {first}")));
                    }
                    if first == '#' {
                        selector.id = Some(name.to_string());
                    } else {
                        selector.classes.push(name.to_string());
                    }
                    rest = tail;
                }
                '[' => {
                    let (inner, tail) = after
                        .split_once(']')
                        .ok_or_else(|| bad("a [ without its ]"))?;
                    let (name, value) = match inner.split_once('=') {
                        Some((n, v)) => (n.trim(), Some(unquote(v.trim()).to_string())),
                        None => (inner.trim(), None),
                    };
                    if name.is_empty() {
                        return Err(bad("an attribute name inside [ ]"));
                    }
                    selector.attrs.push((name.to_ascii_lowercase(), value));
                    rest = tail;
                }
                _ => {
                    return Err(bad(
                        "one form only: form, #id, .class, [attr=value] and their joins (form#id)",
                    ));
                }
            }
        }
        Ok(selector)
    }

    fn matches(&self, attrs: &BTreeMap<String, String>) -> bool {
        let id_ok = self
            .id
            .as_ref()
            .is_none_or(|id| attrs.get("id") == Some(id));
        let classes = attrs.get("class").map_or("", String::as_str);
        let classes_ok = self
            .classes
            .iter()
            .all(|c| classes.split_whitespace().any(|have| have == c));
        let attrs_ok = self
            .attrs
            .iter()
            .all(|(name, value)| match (attrs.get(name), value) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            });
        id_ok && classes_ok && attrs_ok
    }
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

#[cfg(test)]
mod tests;
