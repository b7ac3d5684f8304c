use super::*;

fn login(spec: &str) -> FormLogin {
    match spec.parse::<crate::model::WebLogin>() {
        Ok(crate::model::WebLogin::Form(form)) => form,
        other => panic!("{spec}: {other:?}"),
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A Django admin login page, as the framework renders it.
const DJANGO: &str = r#"<!DOCTYPE html>
<html lang="en-us" dir="ltr">
<head><title>Log in | Django site admin</title>
<link rel="stylesheet" href="/static/admin/css/base.css">
<script>if (document.querySelector('<form>')) {}</script>
</head>
<body class=" login" data-admin-utc-offset="0">
<div id="container">
<div id="content" class="colM">
<div id="content-main">
<form action="/admin/login/?next=/admin/" method="post" id="login-form"><input type="hidden" name="csrfmiddlewaretoken" value="k1Xq&amp;Z9">
  <div class="form-row">
    <label class="required" for="id_username">Username:</label> <input type="text" name="username" autofocus autocapitalize="none" autocomplete="username" maxlength="150" required id="id_username">
  </div>
  <div class="form-row">
    <label class="required" for="id_password">Password:</label> <input type="password" name="password" autocomplete="current-password" required id="id_password">
    <input type="hidden" name="next" value="/admin/">
  </div>
  <div class="submit-row">
    <input type="submit" value="Log in">
  </div>
</form>
</div></div></div></body></html>"#;

#[test]
fn a_django_form_keeps_its_csrf_token_and_next() {
    let form = find(DJANGO, &login("form:/admin/login/")).unwrap();
    assert_eq!(form.action, "/admin/login/?next=/admin/");
    assert_eq!(form.method, "POST");
    assert_eq!(form.user_field.as_deref(), Some("username"));
    assert_eq!(form.password_field, "password");
    // The entity in the token's value is decoded; the unnamed submit
    // sends nothing.
    assert_eq!(
        form.fields,
        pairs(&[
            ("csrfmiddlewaretoken", "k1Xq&Z9"),
            ("username", ""),
            ("password", ""),
            ("next", "/admin/"),
        ])
    );
}

/// A Rails-like page: a search form in the header, then the sign-in form
/// with unquoted attributes, a remember-me box, a named submit button, and
/// tags left unclosed.
const RAILS: &str = r#"<html><head><meta name=csrf-token content=abc></head><body>
<header><form action=/search method=get class=search><input name=q placeholder=Search><button>Go</button></form></header>
<main><p>Please sign in
<form class="new_user signin" id=new_user action=/users/sign_in accept-charset=UTF-8 method=post>
<input name=utf8 type=hidden value="&#x2713;">
<input type=hidden name=authenticity_token value=Zm9vYmFy==>
<label>Email<input autofocus type=email name="user[email]" id=user_email></label>
<label>Password<input type=password name="user[password]" id=user_password></label>
<input name="user[remember_me]" type=hidden value=0><input type=checkbox value=1 name="user[remember_me]" checked>
<select name=locale><option>en<option selected value=de>Deutsch<option>fr</select>
<input type=submit name=commit value="Log in" data-disable-with="Log in">
<input type=submit name=other value="Other">
</main>"#;

#[test]
fn the_search_form_before_the_login_form_is_passed_over() {
    let form = find(RAILS, &login("form:/users/sign_in")).unwrap();
    assert_eq!(form.action, "/users/sign_in");
    assert_eq!(form.method, "POST");
    assert_eq!(form.user_field.as_deref(), Some("user[email]"));
    assert_eq!(form.password_field, "user[password]");
    assert_eq!(
        form.fields,
        pairs(&[
            ("utf8", "✓"),
            ("authenticity_token", "Zm9vYmFy=="),
            ("user[email]", ""),
            ("user[password]", ""),
            ("user[remember_me]", "0"),
            ("user[remember_me]", "1"),
            ("locale", "de"),
            ("commit", "Log in"),
        ])
    );
}

#[test]
fn selectors_pick_the_form() {
    for selector in [
        "form#new_user",
        "#new_user",
        ".signin",
        "form.new_user.signin",
        "[action=/users/sign_in]",
        "form[method=\"post\"]",
        "[accept-charset]",
    ] {
        let form = find(RAILS, &login(&format!("form:/in;form={selector}"))).unwrap();
        assert_eq!(form.action, "/users/sign_in", "{selector}");
    }
    // The search form is picked when asked for, and then has no password.
    let err = find(RAILS, &login("form:/in;form=.search")).unwrap_err();
    assert_eq!(err, "the login form on /in has no password input");
    for (selector, says) in [
        ("#nope", "no form matching #nope on /in"),
        ("div#new_user", "it picks <div>, not a form"),
        ("form input", "one form only"),
        ("[action", "without its ]"),
        ("#", "a name after #"),
    ] {
        let err = find(RAILS, &login(&format!("form:/in;form={selector}"))).unwrap_err();
        assert!(err.contains(says), "{selector}: {err}");
        assert_eq!(err.lines().count(), 1);
    }
}

#[test]
fn a_form_without_action_or_method_posts_nowhere_else() {
    let page = "<form><input name=user><input type=password name=pw><p>unclosed";
    let form = find(page, &login("form:/login")).unwrap();
    assert_eq!(form.action, "");
    assert_eq!(form.method, "GET");
    assert_eq!(form.user_field.as_deref(), Some("user"));
    assert_eq!(form.fields, pairs(&[("user", ""), ("pw", "")]));
}

#[test]
fn named_fields_are_used_and_checked() {
    let page = r#"<form method=POST>
        <input type=text name=tenant value=acme>
        <input type=text name=login>
        <input type=text name=pin>
        <input type=password name=decoy disabled>
        </form>"#;
    let form = find(page, &login("form:/l;user=login;password=pin")).unwrap();
    assert_eq!(form.user_field.as_deref(), Some("login"));
    assert_eq!(form.password_field, "pin");
    assert_eq!(
        form.fields,
        pairs(&[("tenant", "acme"), ("login", ""), ("pin", "")])
    );
    let err = find(page, &login("form:/l;user=email;password=pin")).unwrap_err();
    assert_eq!(err, "the login form on /l has no input named \"email\"");
    let err = find(page, &login("form:/l;password=secret")).unwrap_err();
    assert_eq!(err, "no form with an input named \"secret\" on /l");
}

#[test]
fn pages_without_a_login_form_say_so() {
    for page in [
        "",
        "<html><body><h1>Welcome</h1></body></html>",
        "<form action=/search><input name=q></form>",
        // A password input outside any form is not a form.
        "<input type=password name=p>",
        // Nor is one written inside a script.
        "<form></form><script>var s = '<form><input type=password name=p></form>';</script>",
    ] {
        let err = find(page, &login("form:/login")).unwrap_err();
        assert_eq!(err, "no form with a password input on /login", "{page}");
        assert!(!has_password_form(page), "{page}");
    }
    assert!(has_password_form(DJANGO));
}

#[test]
fn the_user_field_is_the_nearest_text_input_before_the_password() {
    let page = r#"<form action="login.php" method="post">
        <input type="text" name="company">
        <input name="user">
        <input type="email" name="mail">
        <input type="checkbox" name="x" value="y">
        <input type="password" name="pass">
        <input type="text" name="otp">
        <textarea name="note">
hello &lt;b&gt;</textarea>
        <button type="submit" name="do" value="login">Sign in</button>
    </form>"#;
    let form = find(page, &login("form:/login")).unwrap();
    assert_eq!(form.user_field.as_deref(), Some("mail"));
    assert_eq!(form.action, "login.php");
    assert_eq!(
        form.fields,
        pairs(&[
            ("company", ""),
            ("user", ""),
            ("mail", ""),
            ("pass", ""),
            ("otp", ""),
            ("note", "hello <b>"),
            ("do", "login"),
        ])
    );
    // A form with only a password (a PIN page) has no user field.
    let form = find(
        "<form><input type=password name=pin></form>",
        &login("form:/p"),
    )
    .unwrap();
    assert_eq!(form.user_field, None);
}

#[test]
fn inputs_given_to_a_form_by_id_join_it_and_nested_forms_are_ignored() {
    let page = r#"<form id=outer method=post action=/in>
        <form id=inner action=/elsewhere><input name=u>
        </form>
        <input type=password name=p form=outer>
        <input type=hidden name=t value=1 form=outer>"#;
    let form = find(page, &login("form:/x")).unwrap();
    assert_eq!(form.action, "/in");
    assert_eq!(form.fields, pairs(&[("u", ""), ("p", ""), ("t", "1")]));
}
