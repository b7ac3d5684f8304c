//! The web side: web assets reached through the bastion with the
//! account's login injected, on `http.listen`.
//!
//! Layout: `contract` (the site, the request log, the login's one call to
//! the proxy), `form` (the login form in a page: which form, its fields,
//! where it posts), `login` (the account's login: the headers of `basic`
//! and `header:`, the server-side `form:` login through the proxy's
//! client).

pub mod contract;
pub mod form;
pub mod login;
