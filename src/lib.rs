//! rampart: a terminal-native bastion host.
//!
//! Every access to a server goes through one SSH endpoint that
//! authenticates the person, authorises the target, holds the credentials,
//! and records and audits what happens. The data flow is a straight line and
//! the modules follow it:
//!
//! ```text
//!  TCP accept ─▶ ssh ─▶ auth ─▶ route ─▶ tui (menu) ─▶ policy ─▶ upstream ─▶ relay
//!                        │                              │           │          │
//!                        ▼                              ▼           ▼          ▼
//!                      store ◀──────── audit ◀──────── Grant      vault    record + audit
//!
//!  rampart CLI / console ─▶ ops ─▶ store (one transaction per verb + its audit row)
//!  recordings ─▶ search (indexer, off the relay path) ─▶ store
//! ```
//!
//! What each module owns:
//!
//! | module | owns |
//! |---|---|
//! | [`model`] | plain domain types (users, assets, accounts, permissions, actions) and their text forms; no I/O |
//! | [`config`] | `rampart.toml`: lookup order, schema, defaults, validation with file/key/reason errors |
//! | [`alloc`] | the heap on glibc: two arenas, big blocks mapped apart, free memory back to the kernel after sessions and indexing, and every 10 s |
//! | [`clock`] | time as a dependency, so lockout, TOTP and validity are testable |
//! | [`store`] | the only place with SQL, on SQLite or PostgreSQL (one query layer; the few statements that differ ask [`store::Engine`]): pool, embedded migrations for each engine, one file per aggregate, the dashboard counts, the screen-text index's tables, the nodes' heartbeats, and the copy between engines (`rampart migrate`) |
//! | [`vault`] | the master key, [`vault::Secret`], sealing of account secrets and TOTP seeds, the audit chain's key derived from the master key |
//! | [`auth`] | passwords (argon2id), TOTP, public keys, lockout, login ACLs, and the login decision ([`auth::login`]) |
//! | [`policy`] | the permission semantics: [`policy::Snapshot`] answers `authorize`, `visible_assets`, who/what, command filters; the only builder of a [`policy::Grant`] |
//! | [`audit`] | the typed [`audit::AuditEvent`], the hash chain across all audit tables keyed with the master key ([`audit::chain`]: sealing, `verify`, the upgrade of an unkeyed chain), and the batching [`audit::AuditWriter`] for command and transfer rows |
//! | [`ops`] | the admin and auditor verbs and everyone's `me` verbs, taking the caller's identity: role checks against the caller's current standing in the store (read per verb, and again in each change's transaction) and an operation-log row for every change |
//! | [`import`] | CSV/XLSX parsing for `import assets|users` (the database side is in `ops`) |
//! | [`services`] | the bundle handed to every task; initialising and opening a data dir, the master-key refusal rules, the umask and the data dir's mode |
//! | [`cli`] | clap definitions, output as tables or JSON lines, input lines (`--password-stdin`); the same verbs run locally and over SSH; `man/rampart.8` is generated from it |
//! | [`ssh`] | the front door: listeners, cap, the PROXY protocol header of trusted load balancers (`ssh::proxy`), host keys, russh handler (auth, and the answer to each channel request, given in order in its callback: `ssh::request`), one task per session channel, the menu and staff desk (data loading, actions through `ops`, monitor/join), target sessions (with connect approval), a desktop asked for over SSH answered with an RDP ticket (`ssh::desktop`, approvals included), SFTP relay, legacy SCP log, tunnels, `rampart ...` over SSH, asking the person's terminal once what pictures it draws (`ssh::graphics`), the watch that ends a person's open menu, desk and commands when they are disabled, removed, expired or given another role (`ssh::standing`), shutdown |
//! | [`route`] | login names and channel requests to an `Intent` (menu, jump, exec, sftp, admin, refuse); pure |
//! | [`tui`] | ratatui apps over a channel: input parser (which keeps the terminal's answers to queries out of the keys), in-memory screen, themes, desktop pictures as kitty or sixel images where the terminal answers that it shows them ([`tui::graphics`]: encoders, detection queries and answers), menu, the staff desk (console and audit views, dashboard, forms, approval prompts), the monitor/join mirror, the replay screen, enrolment, password and message screens; gets its data passed in |
//! | [`upstream`] | connectors to targets, each taking a `Grant`: SSH via the russh client, host keys pinned; TLS towards a target with its certificate pinned on first use ([`upstream::tls`], for RDP and the database proxies); a program in a sandboxed pty ([`upstream::pty`]); plus the admin's connection test (`probe_ssh`: authenticate, disconnect, no channel); the read-ahead under every SSH connection, the person's and the target's ([`upstream::read_ahead`]: one `recv` per burst, immediate acknowledgements during handshakes) |
//! | [`sftp`] | the SFTP v3 wire format and the virtual `/ASSET/ACCOUNT/` tree; the relay that checks each operation is `ssh::sftp` |
//! | [`transfer`] | file transfers as the audit sees them: bytes and SHA-256 in file order, kept copies, legacy SCP, which exec'd commands move files |
//! | [`session`] | the life of every session, whatever its protocol: admit (the grant for every action, "no access" vs "not permitted", the per-person cap), open (recording, row, live entry), run (its command and transfer rows; the stop: a kill, a revocation or passed `--until`, shutdown), end (live entry gone, recording finished and digested, queued audit rows written, row closed with its chain entry); what a new protocol provides |
//! | [`relay`] | the SSH two-way pump with backpressure (output that has already queued up is joined into one piece, up to a packet), the Enter gate of the command filters (a pure type; a `review` holds the Enter for an admin), joined admins' keys through the same path, tee to recorder, tracker and live registry; never waits for the database |
//! | [`record`] | where recordings live ([`record::objects`]: the recording dir, and an S3-compatible bucket behind it), asciicast writer/reader, the raw sidecar, export/replay, the streaming [`record::Player`] (seek checkpoints, markers, idle compression; desktop recordings decoded into a picture, cold seeks from the stored keyframes the RDP relay marks), desktop pictures as PNG, GIF ([`record::gif`]) and MP4 through ffmpeg ([`record::video`]), command extraction from a vt100 model |
//! | [`search`] | screen-text search ("who saw this text, and when"): a background indexer that reads recordings after the relay wrote them (bounded rate, low priority) and files blocks of them under their trigrams, and the search that reads the candidate blocks back (from the object store when a recording is not here); no copy of the text |
//! | [`live`] | running sessions (output broadcast, kill, join, notices), the logins in progress that streaming sessions give way to ([`live::arrivals`]), a person's other open channels (menu, desk, commands over SSH) so they can be ended, requests waiting for an admin's approval, and the control socket the CLI talks to |
//! | [`demo`] | the loopback demo target of `serve --demo` (also the in-process test target) |
//! | [`spool`] | recordings on their way to the object store: sent in whole 5 MiB parts while their session runs and completed when it ends, kept in the recording dir while the bucket is down, drained oldest first |
//! | [`cluster`] | several nodes sharing one PostgreSQL database: this node's name and heartbeat, the sessions of a node that went silent marked interrupted, kills, monitors and joins reaching the node that runs a session (PostgreSQL `NOTIFY`) |
//! | [`http`] | the HTTP side service: the ops endpoints on `http.metrics_listen` (`/healthz`, `/readyz` naming what fails, `/metrics`), and the web side on `http.listen` ([`http::web`]): each web asset at an HTTPS origin of its own, visits opened by one-time links (`rampart web link`) as sessions under the common lifecycle, the site's login done by the bastion (Basic, a header, a server-side form login), the site's cookies kept on the bastion, every request a command row, uploads and downloads cut by the grant; RemoteApp `.rdp` files for RDP tickets and auditors' one-time recording links (`rampart session link`) on the bastion's own origin ([`http::web::remote_app`], [`http::web::recording`]) |
//! | [`metrics`] | what ops scrape: counters and histograms kept by the code that sees the event (sessions by protocol and end, bytes, logins by method and result, lockouts, recording errors, connect and channel-open latency), figures of the present read at scrape time |
//! | [`db`] | database sessions: the person's native client (psql, mariadb, redis-cli) in a sandboxed, recorded pty ([`db::client`], [`upstream::pty`]) against a wire proxy of the session (PostgreSQL [`db::pg`], MySQL/MariaDB [`db::mysql`], Redis [`db::redis`]) that logs in upstream with the vaulted secret (over TLS when the asset asks, the certificate pinned like a host key: [`db::server`], [`upstream::tls`]) and puts every statement to the `--on sql`/`--on redis` rules before forwarding it ([`db::log`]); rules also see the statements hidden inside others (a data-modifying CTE, EXPLAIN ANALYZE, PREPARE; `db::pg::nested`, with sqlparser); desktop tools reach the same proxies through `ssh -L` with a one-time password (`rampart db ticket`; [`db::contract::Login`]); a session ended from outside stops its running statement on the server |
//! | [`rdp`] | the RDP front door and relay: one-time tickets (approved ones for a permission that needs it) and per-person RDP passwords checked by NTLM inside CredSSP (the login through [`auth::login`]), TLS and CredSSP towards the target with the vaulted password, connection-sequence rewrites (the target sends plain bitmaps), clipboard and drive channels cut by the grant's actions, what crosses the clipboard logged as transfers, every update to the person recorded as a desktop cast and published to monitors (a full redraw asked of the target when one starts watching); the session through [`session`] |
//! | [`serve`] | `rampart serve` over services the binary opened: the front door, demo registration, signals |
//!
//! Dependencies run one way, down this list: a module uses only modules on
//! the lines below its own, so there is no import cycle. Lower modules are
//! handed data (a store, a time, a directory), never the services bundle.
//!
//! ```text
//!  main.rs (the binary)            cli, serve, services
//!  serve                           ssh, services, the demo target
//!  ssh                             everything below: the front door ties it together
//!  cli                             ops through services (ssh runs it for `rampart ...` over SSH)
//!  db                              session, services, policy, live, record, upstream
//!  cluster, http, rdp              services, audit, live, search, store, metrics
//!                                  (rdp: also session, auth, policy, record)
//!  relay                           session, services, record, live, policy
//!  session                         services, record, live, audit, policy, store
//!  services, tui                   ops and what it uses (tui gets its data passed in)
//!  ops                             auth, audit, search, upstream, policy, live, import, store
//!  certificate                     upstream (its TLS provider)
//!  upstream, search                auth (key fingerprints), policy (a Grant); record, store
//!  spool                           record, store, clock
//!  auth                            audit (login rows), store
//!  audit                           store
//!  store                           policy (the data it loads for it)
//!  policy, record, live, route,    model, vault (record: also config, for the bucket)
//!  import, transfer, sftp, demo
//!  model, config, clock, vault,    nothing of rampart
//!  alloc, metrics
//! ```
//!
//! Rules the modules keep: SQL only in `store`; a `Grant` only from
//! `policy`; secrets only inside `Secret` and sealed at rest, never in logs,
//! errors or output; every admin change through `ops`, with its audit row in
//! the same transaction.

pub mod alloc;
pub mod audit;
pub mod auth;
pub mod certificate;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod db;
pub mod demo;
pub mod http;
pub mod import;
pub mod live;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod policy;
pub mod rdp;
pub mod record;
pub mod relay;
pub mod route;
pub mod search;
pub mod serve;
pub mod services;
pub mod session;
pub mod sftp;
pub mod spool;
pub mod ssh;
pub mod store;
pub mod transfer;
pub mod tui;
pub mod upstream;
pub mod vault;
