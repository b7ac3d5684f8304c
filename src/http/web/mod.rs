//! The web side: web assets reached through the bastion with the
//! account's login injected, on `http.listen`.
//!
//! Layout: `contract` (the site, the request log, the login's one call to
//! the proxy).

pub mod contract;
