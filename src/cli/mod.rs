//! The ops CLI: argument definitions (clap derive), output formatting and
//! the input lines some verbs read ([`Stdin`]). Every verb runs through
//! `ops` with the caller's identity, so the same definitions serve the
//! local binary and `ssh bastion rampart ...` (where standard input is the
//! client's, and files on the bastion are never read). `man/rampart.8` is
//! generated from these definitions (see `tests/man.rs`).
//!
//! [`dispatch`] hands each noun to its own file (`user.rs`, `asset.rs`,
//! `audit.rs`, `me.rs`, ...). What they share ([`Io`], [`Outcome`], the
//! argument readers) is in `verb.rs`, which imports none of them.

mod account;
mod acl;
mod asset;
mod audit;
mod db;
mod edit;
mod filter;
mod group;
mod import;
mod me;
mod node;
mod output;
mod perm;
mod rdp;
mod replay;
mod web;
pub use db::ticket_text as db_ticket_text;
pub use rdp::ticket_text as rdp_ticket_text;
pub use web::link_text as web_link_text;
mod run;
mod session;
mod stdin;
mod user;
mod verb;

pub use run::{dispatch, report_init, run};
pub use stdin::{
    AllCollector, IDLE_TIMEOUT, LINE_TIMEOUT, LineCollector, MAX_IMPORT, MAX_INPUT, Stdin,
    StdinError, TOTAL_TIMEOUT, reads_all, wanted,
};
pub use verb::{Io, Outcome};

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The binary's arguments.
#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version,
    about = "A terminal-native bastion host: SSH access that is authenticated, authorised, accounted for and audited",
    long_about = "rampart is a terminal-native bastion host. People reach the servers they are \
allowed to through one SSH endpoint; rampart holds the target credentials, checks permissions, \
records every session and logs every command, login, transfer and admin change in a \
tamper-evident chain. This command runs the server and the ops verbs that manage it.",
    after_help = "Configuration: --config FILE, else $RAMPART_CONFIG, else ./rampart.toml, else \
built-in defaults with data in ./rampart-data. See rampart.toml(5).\n\
Exit status: 0 on success, 1 when an operation is refused or fails (one line on stderr), \
2 on a usage error."
)]
pub struct Cli {
    /// Configuration file (default: $RAMPART_CONFIG, else ./rampart.toml if present)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print lists as one JSON object per line instead of a table
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The clap command, for man page generation and tests.
    pub fn command() -> clap::Command {
        <Cli as clap::CommandFactory>::command()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Initialise the data dir: database, master key, host key and an admin user
    Init,
    /// Run the SSH front door (initialising an empty data dir first)
    Serve {
        /// Also start a demo SSH target on loopback, registered as asset `demo` for `admin`
        #[arg(long)]
        demo: bool,
    },
    /// Copy the whole database into another, empty one (SQLite to PostgreSQL, or back), audit chain included
    Migrate {
        /// The database to copy: sqlite://FILE or postgres://USER@HOST/DB
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty database to copy into (PostgreSQL: created by its administrator)
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Play a session's recording in this terminal
    Replay {
        /// The session id (see `rampart audit sessions`)
        session: String,
        /// Playback speed, 0.25 to 16
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Shorten pauses longer than this many seconds
        #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
        idle_cap: f64,
        /// How a desktop (RDP) recording's picture is drawn: auto asks the terminal (when standard output is one) and takes kitty, then sixel, else half blocks
        #[arg(long, value_enum, value_name = "HOW", default_value_t = GraphicsArg::Auto)]
        graphics: GraphicsArg,
    },
    /// Write a session's recording: the asciicast, with --raw exactly the bytes the client received, with --format png one picture of a desktop (RDP) session, with --format gif or mp4 its animation or video
    Export {
        session: String,
        /// Output file (default: standard output)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write the exact output bytes instead of the asciicast file
        #[arg(long, conflicts_with = "format")]
        raw: bool,
        /// A desktop session's screen as a picture or an animation instead of the recording
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<ExportFormat>,
        /// With --format png: the moment, as seconds or [HH:]MM:SS from the start (default: the end)
        #[arg(long, value_name = "TIME", requires = "format")]
        at: Option<String>,
    },
    /// Manage users, their keys, passwords and MFA
    #[command(subcommand)]
    User(UserCmd),
    /// Manage user groups and their members
    #[command(subcommand)]
    Group(GroupCmd),
    /// Manage the node tree assets are filed under
    #[command(subcommand)]
    Node(NodeCmd),
    /// Manage assets (servers, databases, desktops)
    #[command(subcommand)]
    Asset(AssetCmd),
    /// Manage the accounts the bastion holds on assets
    #[command(subcommand)]
    Account(AccountCmd),
    /// Manage permissions: who may reach which assets, how and when
    #[command(subcommand)]
    Perm(PermCmd),
    /// Manage command filters (deny, allow, warn, review)
    #[command(subcommand)]
    Filter(FilterCmd),
    /// Manage login ACLs (source addresses and time windows)
    #[command(subcommand)]
    Acl(AclCmd),
    /// List sessions
    #[command(subcommand)]
    Session(SessionCmd),
    /// Import assets or users from CSV or XLSX (a file, or - for standard input), all rows or none
    #[command(subcommand)]
    Import(ImportCmd),
    /// Read the audit logs and verify the hash chain
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Your own account, over SSH: show it, change your password, SSH keys and MFA
    Me(MeArgs),
    /// Windows desktops over RDP, over SSH: one-time credentials for your RDP client
    #[command(subcommand)]
    Rdp(RdpCmd),
    /// Database assets, over SSH: one-time passwords for desktop database tools through ssh -L
    #[command(subcommand)]
    Db(DbCmd),
    /// Web assets, over SSH: one-time links for your browser
    #[command(subcommand)]
    Web(WebCmd),
}

#[derive(Debug, Subcommand)]
pub enum WebCmd {
    /// A one-time link to web ASSET for your browser, valid 60 s, for one visit; you arrive logged in, and the site's password never reaches the browser
    Link {
        asset: String,
        /// The account on the asset (needed when you have several)
        #[arg(long)]
        account: Option<String>,
        /// Leave out the QR code
        #[arg(long)]
        no_qr: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// A one-time password for a desktop tool (DBeaver; psql, mysql or redis-cli on your machine) reaching database ASSET through `ssh -L`, valid 60 s, for one connection
    Ticket {
        asset: String,
        /// The account on the asset (needed when you have several)
        #[arg(long)]
        account: Option<String>,
    },
}

/// What `replay --graphics` draws a desktop with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphicsArg {
    /// Ask the terminal; half blocks when it does not answer or is not a terminal
    Auto,
    /// Half blocks in 24-bit colour (two pixels a cell)
    Blocks,
    /// DEC sixel images
    Sixel,
    /// The kitty graphics protocol
    Kitty,
}

/// What `export --format` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One PNG picture of the desktop at --at
    Png,
    /// The desktop as a GIF animation: at most 5 frames a second, at most 960 pixels wide, pauses shortened to 2 s
    Gif,
    /// The desktop as an MP4 video (H.264, 5 frames a second, pauses shortened to 2 s), made by ffmpeg, which must be installed on the bastion
    Mp4,
}

#[derive(Debug, Subcommand)]
pub enum RdpCmd {
    /// One-time RDP credentials for ASSET: a user name and password for mstsc or xfreerdp, valid 60 s, for one connection
    Ticket {
        asset: String,
        /// The account on the asset (needed when you have several)
        #[arg(long)]
        account: Option<String>,
    },
}

/// `rampart me [VERB]`: without a verb, shows the account.
#[derive(Debug, Args)]
#[command(
    after_help = "These verbs act on the user you log in as, whatever your role, and work only \
over SSH: ssh -p 2222 USER@BASTION rampart me ..."
)]
pub struct MeArgs {
    #[command(subcommand)]
    pub cmd: Option<MeCmd>,
}

#[derive(Debug, Subcommand)]
pub enum MeCmd {
    /// Show your account: role, email, groups, keys, MFA, last login
    Show,
    /// Change your password: standard input gives two lines, the current password (an empty line if you have none) and the new one
    Passwd {
        /// Read the current and the new password from standard input (required: there is no other way)
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Your SSH public keys
    #[command(subcommand)]
    Keys(MeKeysCmd),
    /// Your second factor (TOTP): status, enrol, confirm, reset
    Mfa(MeMfaArgs),
    /// A password for your RDP client that works for every desktop you may use, until it expires (rdp.password_lifetime); shown once, it replaces any earlier one
    RdpPassword {
        /// Turn your RDP password off instead
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MeKeysCmd {
    /// List your public keys
    List,
    /// Add a public key: --key LINE, or the key line on standard input
    Add {
        /// An OpenSSH public key line ("ssh-ed25519 AAAA... comment")
        #[arg(long, value_name = "LINE")]
        key: Option<String>,
    },
    /// Remove one of your keys by its SHA256 fingerprint (not your last way to log in)
    Remove {
        /// The key's SHA256 fingerprint, as `rampart me keys list` shows it
        fingerprint: String,
    },
}

/// `rampart me mfa [VERB]`: without a verb, shows the status.
#[derive(Debug, Args)]
pub struct MeMfaArgs {
    #[command(subcommand)]
    pub cmd: Option<MeMfaCmd>,
}

#[derive(Debug, Subcommand)]
pub enum MeMfaCmd {
    /// Show whether MFA is on, pending or off, and whether it is required
    Status,
    /// Start enrolling: prints a QR code and the secret for your authenticator app; then run `me mfa confirm CODE`
    Enrol,
    /// Finish enrolling with a 6-digit code from the app (within 10 minutes of `me mfa enrol`)
    Confirm {
        /// The 6-digit code the app shows now
        code: String,
    },
    /// Turn MFA off, proven by a current code (refused when the server requires MFA)
    Reset {
        /// The 6-digit code the app shows now (one not used to log in)
        code: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user; without --password-stdin or --key a one-time password is printed once
    Add {
        name: String,
        #[arg(long, default_value = "user", value_parser = ["admin", "auditor", "user"])]
        role: String,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
        /// An OpenSSH public key line ("ssh-ed25519 AAAA... comment")
        #[arg(long, value_name = "LINE")]
        key: Vec<String>,
        /// A public key file (.pub or one authorized_keys line)
        #[arg(long, value_name = "FILE")]
        key_file: Vec<PathBuf>,
        /// Add the user to this group (repeatable)
        #[arg(long, value_name = "GROUP")]
        group: Vec<String>,
        /// The account stops working at this time (RFC 3339, 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DD')
        #[arg(long, value_name = "TIME")]
        expires: Option<String>,
    },
    /// List users
    List,
    /// Show a user with groups and keys
    Show { name: String },
    /// Change a user's role, email, expiry or groups; what is not given stays. A new role applies at once: what they have open under the old one ends
    Edit {
        name: String,
        #[arg(long, value_parser = ["admin", "auditor", "user"])]
        role: Option<String>,
        /// New email ("" to clear)
        #[arg(long)]
        email: Option<String>,
        /// New expiry, or "never"
        #[arg(long, value_name = "TIME")]
        expires: Option<String>,
        /// The user's groups: repeatable, replaces every membership; "" leaves all groups
        #[arg(long, value_name = "GROUP")]
        group: Vec<String>,
    },
    /// Disable a user: they can no longer log in, and what they have open (sessions, menu, console, commands over SSH) ends within seconds
    Disable { name: String },
    /// Enable a disabled user
    Enable { name: String },
    /// Remove a user and their keys and group memberships; what they have open ends within seconds
    Remove { name: String },
    /// Set a user's password (--password-stdin) or print a new one-time password; admins only (your own: `rampart me passwd`)
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lift a lockout and clear the failure count
    Unlock { name: String },
    /// Remove a user's TOTP enrolment; they enrol again at next login
    MfaReset { name: String },
    /// Manage a user's SSH public keys; admins only (your own: `rampart me keys`)
    #[command(subcommand)]
    Key(KeyCmd),
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Add a public key to a user
    Add {
        name: String,
        #[arg(
            long,
            value_name = "LINE",
            conflicts_with = "key_file",
            required_unless_present = "key_file"
        )]
        key: Option<String>,
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// Remove a key by its SHA256 fingerprint
    Remove { name: String, fingerprint: String },
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Add a group
    Add { name: String },
    /// Remove a group (its members stay)
    Remove { name: String },
    /// List groups with their members
    List,
    /// Add or remove members
    #[command(subcommand)]
    Members(MembersCmd),
}

#[derive(Debug, Subcommand)]
pub enum MembersCmd {
    /// Add users to a group
    Add {
        group: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Remove users from a group
    Remove {
        group: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// Add a node (and its missing parents), e.g. /DEFAULT/prod/web
    Add { path: String },
    /// Remove an empty node
    Remove { path: String },
    /// Rename or move a node with everything below it (alias: rename); missing parents of TO are created
    #[command(visible_alias = "rename")]
    Move {
        /// The node's path now, e.g. /DEFAULT/prod
        from: String,
        /// Its new path, e.g. /DEFAULT/production (must not exist yet)
        to: String,
    },
    /// List nodes with their asset counts
    List,
}

#[derive(Debug, Subcommand)]
pub enum AssetCmd {
    /// Add an asset
    Add {
        name: String,
        /// Host name or IP address
        #[arg(long)]
        address: String,
        /// A protocol with its port, e.g. ssh/22 (repeatable)
        #[arg(long = "protocol", value_name = "NAME/PORT", required = true)]
        protocols: Vec<String>,
        /// A node path to file it under (repeatable; default /DEFAULT)
        #[arg(long = "node", value_name = "PATH")]
        nodes: Vec<String>,
        #[arg(long, default_value = "linux")]
        platform: String,
        /// A database asset's default database, opened when the person names none
        #[arg(long, value_name = "NAME")]
        database: Option<String>,
        /// Reach the database server over TLS, its certificate pinned on first use (`asset trust` forgets it)
        #[arg(long)]
        tls: bool,
        /// A web asset's site, e.g. https://10.0.0.7:8443/ (with --protocol https/443 or http/80)
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
        /// Add it disabled
        #[arg(long)]
        inactive: bool,
    },
    /// Change an asset: each option given replaces that aspect, the others are kept
    Edit {
        name: String,
        /// Rename it (its accounts, keys, permissions and filters follow)
        #[arg(long = "name", value_name = "NEW")]
        new_name: Option<String>,
        /// Host name or IP address
        #[arg(long)]
        address: Option<String>,
        /// A protocol with its port, e.g. ssh/22 (repeatable; replaces the list)
        #[arg(long = "protocol", value_name = "NAME/PORT")]
        protocols: Vec<String>,
        /// A node path to file it under (repeatable; replaces the list)
        #[arg(long = "node", value_name = "PATH")]
        nodes: Vec<String>,
        /// The platform, e.g. linux
        #[arg(long)]
        platform: Option<String>,
        /// A database asset's default database ("" for none)
        #[arg(long, value_name = "NAME")]
        database: Option<String>,
        /// Reach the database server over TLS, its certificate pinned on first use
        #[arg(long, conflicts_with = "no_tls")]
        tls: bool,
        /// Reach the database server over plain TCP
        #[arg(long)]
        no_tls: bool,
        /// A web asset's site ("" for none)
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Enable it
        #[arg(long, conflicts_with = "inactive")]
        active: bool,
        /// Disable it: its running sessions end
        #[arg(long)]
        inactive: bool,
        /// New comment ("" to clear)
        #[arg(long)]
        comment: Option<String>,
    },
    /// Log in to an asset over ssh with one of its accounts and its pinned host key, then disconnect; exit 1 if that fails
    Test {
        name: String,
        /// The account to use (default: the first with a stored secret)
        #[arg(long, value_name = "USER")]
        account: Option<String>,
    },
    /// List assets
    List,
    /// Show an asset with its accounts and pinned host keys
    Show { name: String },
    /// Remove an asset and its accounts
    Remove { name: String },
    /// Re-pin the target host key: the given key, or whatever the next connection presents
    Trust {
        name: String,
        /// The target's public host key line (as in known_hosts, without the host name)
        #[arg(long, value_name = "LINE")]
        key: Option<String>,
    },
    /// The programs a Windows asset publishes for RemoteApp
    #[command(subcommand)]
    App(AssetAppCmd),
}

#[derive(Debug, Subcommand)]
pub enum AssetAppCmd {
    /// Publish a program of an RDP asset: people who may use the asset get a .rdp file that opens it alone in a window
    Add {
        asset: String,
        /// The alias the Windows server publishes it under (RemoteApp Manager, or the registry's TSAppAllowList)
        alias: String,
        /// What people see
        #[arg(long)]
        name: String,
        /// Its command line arguments
        #[arg(long = "args", value_name = "ARGS", default_value = "")]
        arguments: String,
    },
    /// List the published programs, of one asset or all
    List { asset: Option<String> },
    /// Stop offering a program
    Remove { asset: String, alias: String },
}

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Add an account on an asset; the secret is sealed in the vault
    Add {
        asset: String,
        username: String,
        /// Read the password from the first line of standard input
        #[arg(long, conflicts_with = "key_file")]
        password_stdin: bool,
        /// The private key file used to reach the target
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        #[arg(long)]
        privileged: bool,
        /// How a web asset's account is logged in with its secret: none, basic, header:NAME[=TEMPLATE], form:PATH[;form=SELECTOR][;user=FIELD][;password=FIELD][;success=TEXT]
        #[arg(long, value_name = "SPEC")]
        web: Option<String>,
    },
    /// Change an account's secret, privileged flag or web login; the new secret is sealed in the vault
    Edit {
        asset: String,
        username: String,
        /// Read the new password from the first line of standard input
        #[arg(long, conflicts_with_all = ["key_file", "no_secret"])]
        password_stdin: bool,
        /// The new private key file used to reach the target
        #[arg(long, value_name = "FILE", conflicts_with = "no_secret")]
        key_file: Option<PathBuf>,
        /// Forget the stored secret
        #[arg(long)]
        no_secret: bool,
        /// Mark it privileged
        #[arg(long, conflicts_with = "unprivileged")]
        privileged: bool,
        /// Mark it not privileged
        #[arg(long)]
        unprivileged: bool,
        /// How a web asset's account is logged in (see `account add --web`)
        #[arg(long, value_name = "SPEC")]
        web: Option<String>,
    },
    /// List accounts, of one asset or all
    List { asset: Option<String> },
    /// Remove an account
    Remove { asset: String, username: String },
    /// Disable an account: no permission grants it, its running sessions end
    Disable { asset: String, username: String },
    /// Enable a disabled account
    Enable { asset: String, username: String },
}

/// Who a permission or filter applies to and what it covers.
#[derive(Debug, Args)]
pub struct Bindings {
    /// A user (repeatable)
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// A group (repeatable)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// An asset (repeatable)
    #[arg(long = "asset", value_name = "ASSET")]
    pub assets: Vec<String>,
    /// A node path, covering every asset below it (repeatable)
    #[arg(long = "node", value_name = "PATH")]
    pub nodes: Vec<String>,
}

/// The bindings of an edit verb: each flag given replaces that whole list,
/// a flag not given keeps it, and a lone "" empties it.
#[derive(Debug, Args)]
pub struct EditBindings {
    /// The users (repeatable; replaces the list; "" empties it)
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// The groups (repeatable; replaces the list; "" empties it)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// The assets (repeatable; replaces the list; "" empties it)
    #[arg(long = "asset", value_name = "ASSET")]
    pub assets: Vec<String>,
    /// The node paths (repeatable; replaces the list; "" empties it)
    #[arg(long = "node", value_name = "PATH")]
    pub nodes: Vec<String>,
}

/// `perm edit`: what is given replaces, the rest stays as it is.
#[derive(Debug, Args)]
pub struct PermEdit {
    /// The permission to change
    pub name: String,
    /// Rename the permission
    #[arg(long = "name", value_name = "NEW")]
    pub new_name: Option<String>,
    #[command(flatten)]
    pub bindings: EditBindings,
    /// @ALL, @INPUT, @USER or account usernames, comma separated
    #[arg(long)]
    pub accounts: Option<String>,
    /// all, or protocol names, comma separated
    #[arg(long)]
    pub protocols: Option<String>,
    /// all (everything but tunnel), or connect,upload,download,delete,copy,paste,share,tunnel
    #[arg(long)]
    pub actions: Option<String>,
    /// Valid from (RFC 3339, 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DD'), or "never" for no start
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Valid until (exclusive), or "never" for no end
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Each connection it grants waits for an admin to approve it in the console
    #[arg(long, conflicts_with = "no_approval")]
    pub require_approval: bool,
    /// Connections it grants no longer wait for an approval
    #[arg(long)]
    pub no_approval: bool,
    /// A note for other admins ("" to clear)
    #[arg(long)]
    pub comment: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PermCmd {
    /// Add a permission
    Add {
        name: String,
        #[command(flatten)]
        bindings: Box<Bindings>,
        /// @ALL, @INPUT, @USER or account usernames, comma separated
        #[arg(long, default_value = "@ALL")]
        accounts: String,
        /// all, or protocol names, comma separated
        #[arg(long, default_value = "all")]
        protocols: String,
        /// all (everything but tunnel), or connect,upload,download,delete,copy,paste,share,tunnel
        #[arg(long, default_value = "all")]
        actions: String,
        /// Valid from (RFC 3339, 'YYYY-MM-DD HH:MM' or 'YYYY-MM-DD')
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Valid until (exclusive)
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
        /// Each connection it grants waits for an admin to approve it in the console
        #[arg(long)]
        require_approval: bool,
    },
    /// List permissions
    List,
    /// Show a permission
    Show { name: String },
    /// Change a permission: each option given replaces that field or list, the rest stays; sessions it no longer allows end
    Edit(Box<PermEdit>),
    /// Remove a permission
    Remove { name: String },
    /// Disable a permission: it grants nothing, the sessions only it allowed end
    Disable { name: String },
    /// Enable a disabled permission
    Enable { name: String },
    /// Who can reach an asset now, and through which permission
    Who { asset: String },
    /// What a user can reach now, and through which permission
    What { user: String },
}

/// `filter edit`: what is given replaces, the rest stays as it is.
#[derive(Debug, Args)]
pub struct FilterEdit {
    /// The command filter to change
    pub name: String,
    /// Rename the filter
    #[arg(long = "name", value_name = "NEW")]
    pub new_name: Option<String>,
    /// A regular expression matched against each command line
    #[arg(long)]
    pub pattern: Option<String>,
    #[arg(long, value_parser = ["deny", "allow", "warn", "review"])]
    pub action: Option<String>,
    /// What the pattern is matched against: shell, sql or redis
    #[arg(long, value_parser = ["shell", "sql", "redis"])]
    pub on: Option<String>,
    /// Lower numbers win among non-deny rules
    #[arg(long)]
    pub priority: Option<i32>,
    #[command(flatten)]
    pub bindings: EditBindings,
    /// @ALL, @INPUT, @USER or account usernames, comma separated
    #[arg(long)]
    pub accounts: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum FilterCmd {
    /// Add a command filter rule
    Add {
        name: String,
        /// A regular expression matched against each command line
        #[arg(long)]
        pattern: String,
        #[arg(long, value_parser = ["deny", "allow", "warn", "review"])]
        action: String,
        /// What the pattern is matched against: lines typed into terminal sessions, SQL statements, or Redis commands
        #[arg(long, value_parser = ["shell", "sql", "redis"], default_value = "shell")]
        on: String,
        /// Lower numbers win among non-deny rules
        #[arg(long, default_value_t = 50)]
        priority: i32,
        #[command(flatten)]
        bindings: Bindings,
        /// @ALL, @INPUT, @USER or account usernames, comma separated
        #[arg(long, default_value = "@ALL")]
        accounts: String,
    },
    /// List command filters
    List,
    /// Show a command filter
    Show { name: String },
    /// Change a command filter: each option given replaces that field or list, the rest stays
    Edit(Box<FilterEdit>),
    /// Remove a command filter
    Remove { name: String },
}

/// `acl edit`: what is given replaces, the rest stays as it is.
#[derive(Debug, Args)]
pub struct AclEdit {
    /// The login ACL to change
    pub name: String,
    /// Rename the ACL
    #[arg(long = "name", value_name = "NEW")]
    pub new_name: Option<String>,
    #[arg(long, value_parser = ["allow", "deny"])]
    pub action: Option<String>,
    /// Lower numbers are tried first; the first matching ACL decides
    #[arg(long)]
    pub priority: Option<i32>,
    /// The users (repeatable; replaces the list; "" empties it)
    #[arg(long = "user", value_name = "USER")]
    pub users: Vec<String>,
    /// The groups (repeatable; replaces the list; "" empties it)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Source addresses or CIDR blocks (repeatable; replaces the list; "" empties it: any source)
    #[arg(long = "source", value_name = "CIDR")]
    pub sources: Vec<String>,
    /// Weekly windows (repeatable; replaces the list; "" empties it: always)
    #[arg(long = "window", value_name = "WINDOW")]
    pub windows: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AclCmd {
    /// Add a login ACL: allow or deny logins by source address and time
    Add {
        name: String,
        #[arg(long, value_parser = ["allow", "deny"])]
        action: String,
        /// Lower numbers are tried first; the first matching ACL decides
        #[arg(long, default_value_t = 50)]
        priority: i32,
        #[arg(long = "user", value_name = "USER")]
        users: Vec<String>,
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// A source address or CIDR block (repeatable; none = any)
        #[arg(long = "source", value_name = "CIDR")]
        sources: Vec<String>,
        /// A weekly window such as "Mon-Fri 08:00-18:00" (repeatable; none = always)
        #[arg(long = "window", value_name = "WINDOW")]
        windows: Vec<String>,
    },
    /// Change a login ACL: each option given replaces that field or list, the rest stays
    Edit(Box<AclEdit>),
    /// List login ACLs
    List,
    /// Remove a login ACL
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum SessionCmd {
    /// List sessions, newest first; --live asks the running server
    List {
        /// Only sessions running now, from the running server
        #[arg(long)]
        live: bool,
        #[command(flatten)]
        filter: AuditFilter,
    },
    /// End a running session; the person sees the reason
    Kill {
        id: String,
        #[arg(long, default_value = "ended by an administrator")]
        reason: String,
    },
    /// A one-time link to a terminal session's recording, for asciinema-player or a download (the web side; 60 s, one use)
    Link { id: String },
    /// Requests waiting for an admin's decision in the running server: commands held by a review filter, connections through a permission with --require-approval
    Approvals,
    /// Approve a waiting request (ID from `session approvals`); never one you asked for
    Approve { id: u64 },
    /// Deny a waiting request: the command or connection does not happen, the person sees the reason
    Deny {
        id: u64,
        /// Shown to the person after who denied it
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// Import assets: columns name,address,protocols[,platform,nodes,active,comment]
    Assets(ImportArgs),
    /// Import users: columns name,role[,email,groups,active,key,expires]
    Users(ImportArgs),
}

impl ImportCmd {
    /// `assets` or `users`, as typed.
    pub fn kind(&self) -> &'static str {
        match self {
            ImportCmd::Assets(_) => "assets",
            ImportCmd::Users(_) => "users",
        }
    }
}

/// Where an import reads from.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// FILE.csv or FILE.xlsx on the bastion (local CLI only), or - to read
    /// the file from standard input, also over SSH:
    /// `ssh BASTION rampart import assets - < assets.csv` (at most 16 MiB)
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
    /// The file's format [default: from the extension; for - XLSX when the
    /// input is a zip archive (starts with PK\x03\x04), else CSV]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<crate::import::Format>,
}

impl ImportArgs {
    /// `-`: the file comes on standard input.
    pub fn is_stdin(&self) -> bool {
        self.file.as_os_str() == "-"
    }
}

/// Filters shared by the audit listings.
#[derive(Debug, Args)]
pub struct AuditFilter {
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub asset: Option<String>,
    /// Only rows at or after this time (RFC 3339, date, or a duration ago such as 24h or 7d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only rows before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// At most this many rows
    #[arg(long)]
    pub limit: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Login attempts with their method, source and result
    Logins(AuditFilter),
    /// Sessions
    Sessions(AuditFilter),
    /// Commands typed in sessions and the action taken
    Commands(AuditFilter),
    /// File transfers with their digests
    Transfers(AuditFilter),
    /// Admin changes with before and after
    Operations(AuditFilter),
    /// Requests refused after login (forwarding, x11, agent, env, subsystems)
    Refusals(AuditFilter),
    /// Where a text appeared on the screen of a recorded session: who saw it, where and when (see SCREEN-TEXT SEARCH)
    Screen {
        /// The text to find (case-insensitive for ASCII)
        text: String,
        /// At most this many places, newest first
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Today's and the last 7 days' figures (logins, sessions, denied commands, transfers)
    Dashboard,
    /// Recompute the keyed hash chain and recording digests; name the first broken row (see AUDIT CHAIN)
    Verify,
}
