//! The web side: web assets reached through the bastion with the
//! account's login injected, on `http.listen`.
//!
//! Layout: `contract` (the site, the request log, the login's one call to
//! the proxy), `client` (the client of one visit: dials the site only,
//! its certificate pinned, the visit's cookies), `jar` (the visit's
//! cookie jar, kept on the bastion), `proxy` (one browser request to the
//! site and back: header rules, upload/download cuts, cross-site
//! refusals, WebSocket tunnels, the request's log line), `form` (the
//! login form in a page: which form, its fields, where it posts), `login`
//! (the account's login: the headers of `basic` and `header:`, the
//! server-side `form:` login through the proxy's client).

pub mod client;
pub mod contract;
pub mod form;
pub mod jar;
pub mod login;
pub mod proxy;
