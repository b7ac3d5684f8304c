//! What the bastion counts for ops, in the Prometheus text format (the
//! `http` module serves it on `http.metrics_listen`).
//!
//! Counters and histograms are kept as things happen, by the code that
//! sees them (an atomic add, never a wait); figures that describe the
//! present (live sessions, the audit writer's queue, the indexer's lag, the
//! process's memory and open files) are read when Prometheus scrapes.
//!
//! Labels hold only bounded values: protocols, login methods, the first
//! word of an end reason ("killed", "idle timeout"), never a user, an
//! address or free text, so the number of series stays small.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndLabels {
    protocol: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    method: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: String,
}

/// The figures read at scrape time, from their owners.
#[derive(Debug, Default, Clone)]
pub struct Present {
    /// Protocol of each live session on this node.
    pub live: Vec<String>,
    /// Bytes the live sessions relayed so far: (from the people, to them).
    pub live_bytes: (u64, u64),
    /// Rows waiting in the audit writer's queue.
    pub audit_queue: usize,
    /// Seconds since the oldest output the indexer has not read; 0 when it
    /// is up to date.
    pub index_lag: f64,
}

/// The bastion's metrics. Cheap to share (`Arc`); every method is a few
/// atomic operations.
pub struct Metrics {
    registry: Registry,
    sessions_started: Family<ProtocolLabels, Counter>,
    sessions_ended: Family<EndLabels, Counter>,
    sessions_live: Family<ProtocolLabels, Gauge>,
    bytes: Family<DirectionLabels, Counter>,
    live_bytes: Family<DirectionLabels, Gauge>,
    logins: Family<LoginLabels, Counter>,
    lockouts: Counter,
    recording_errors: Counter,
    audit_queue: Gauge,
    index_lag: Gauge<f64, AtomicU64>,
    connect_seconds: Histogram,
    channel_open_seconds: Histogram,
    rdp_relay_seconds: Family<DirectionLabels, Histogram, fn() -> Histogram>,
    resident_bytes: Gauge,
    open_files: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Latency buckets: 1 ms to about 33 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Relay time buckets: 10 µs to about 80 ms, doubling.
fn relay_time() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 14))
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("rampart"),
            sessions_started: Family::default(),
            sessions_ended: Family::default(),
            sessions_live: Family::default(),
            bytes: Family::default(),
            live_bytes: Family::default(),
            logins: Family::default(),
            lockouts: Counter::default(),
            recording_errors: Counter::default(),
            audit_queue: Gauge::default(),
            index_lag: Gauge::default(),
            connect_seconds: latency(),
            channel_open_seconds: latency(),
            rdp_relay_seconds: Family::new_with_constructor(relay_time),
            resident_bytes: Gauge::default(),
            open_files: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "sessions_started",
            "Sessions opened, by protocol",
            m.sessions_started.clone(),
        );
        r.register(
            "sessions_ended",
            "Sessions ended, by protocol and the first words of their end reason",
            m.sessions_ended.clone(),
        );
        r.register(
            "sessions_live",
            "Sessions running on this node, by protocol",
            m.sessions_live.clone(),
        );
        r.register(
            "relayed_bytes",
            "Bytes relayed by ended sessions: in = from the person, out = to the person",
            m.bytes.clone(),
        );
        r.register(
            "live_relayed_bytes",
            "Bytes relayed so far by the sessions running now (they move to relayed_bytes when a session ends)",
            m.live_bytes.clone(),
        );
        r.register(
            "logins",
            "Login attempts, by method and result",
            m.logins.clone(),
        );
        r.register(
            "lockouts",
            "Accounts or addresses locked out after failed logins",
            m.lockouts.clone(),
        );
        r.register(
            "recording_errors",
            "Recordings that could not be started or finished",
            m.recording_errors.clone(),
        );
        r.register(
            "audit_queue_rows",
            "Audit rows waiting to be written",
            m.audit_queue.clone(),
        );
        r.register(
            "index_lag_seconds",
            "Age of the oldest recorded output the screen-text indexer has not read",
            m.index_lag.clone(),
        );
        r.register(
            "target_connect_seconds",
            "Time to connect and log in to a target",
            m.connect_seconds.clone(),
        );
        r.register(
            "channel_open_seconds",
            "Time from a person's session request to its relay running",
            m.channel_open_seconds.clone(),
        );
        r.register(
            "rdp_relay_seconds",
            "Time the RDP relay holds a batch of PDUs, from reading it whole to having written it on (up: the person's input to the target; down: the target's updates to the person, recording included)",
            m.rdp_relay_seconds.clone(),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory of the rampart process",
            m.resident_bytes.clone(),
        );
        r.register(
            "process_open_files",
            "Open file descriptors of the rampart process",
            m.open_files.clone(),
        );
        m
    }

    pub fn session_started(&self, protocol: &str) {
        self.sessions_started
            .get_or_create(&ProtocolLabels {
                protocol: protocol.to_string(),
            })
            .inc();
    }

    /// A session ended: `reason` as its row holds it.
    pub fn session_ended(&self, protocol: &str, reason: &str, bytes_in: u64, bytes_out: u64) {
        self.sessions_ended
            .get_or_create(&EndLabels {
                protocol: protocol.to_string(),
                reason: reason_kind(reason),
            })
            .inc();
        for (direction, n) in [("in", bytes_in), ("out", bytes_out)] {
            self.bytes
                .get_or_create(&DirectionLabels {
                    direction: direction.to_string(),
                })
                .inc_by(n);
        }
    }

    /// A login attempt: `method` is `password`, `publickey`, `totp`...
    pub fn login(&self, method: &str, succeeded: bool) {
        self.logins
            .get_or_create(&LoginLabels {
                method: method.to_string(),
                result: if succeeded { "success" } else { "failure" }.to_string(),
            })
            .inc();
    }

    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    pub fn recording_error(&self) {
        self.recording_errors.inc();
    }

    pub fn target_connected(&self, took: Duration) {
        self.connect_seconds.observe(took.as_secs_f64());
    }

    pub fn channel_opened(&self, took: Duration) {
        self.channel_open_seconds.observe(took.as_secs_f64());
    }

    /// The histogram of the time the RDP relay holds a batch going
    /// `direction` (`up` or `down`): taken once per session, observed per
    /// batch without a lookup.
    pub fn rdp_relay(&self, direction: &str) -> Histogram {
        self.rdp_relay_seconds
            .get_or_create(&DirectionLabels {
                direction: direction.to_string(),
            })
            .clone()
    }

    /// The text Prometheus scrapes, with the present figures filled in.
    pub fn render(&self, present: &Present) -> String {
        self.sessions_live.clear();
        for protocol in &present.live {
            self.sessions_live
                .get_or_create(&ProtocolLabels {
                    protocol: protocol.clone(),
                })
                .inc();
        }
        for (direction, n) in [("in", present.live_bytes.0), ("out", present.live_bytes.1)] {
            self.live_bytes
                .get_or_create(&DirectionLabels {
                    direction: direction.to_string(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.audit_queue
            .set(i64::try_from(present.audit_queue).unwrap_or(i64::MAX));
        self.index_lag.set(present.index_lag);
        let (rss, files) = process_figures();
        self.resident_bytes.set(rss);
        self.open_files.set(files);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The label for an end reason: its words before any `:` ("killed: audit
/// hold" is `killed`), at most three words and 40 characters, so that
/// reasons with details do not each make a series.
fn reason_kind(reason: &str) -> String {
    let head = reason.split(':').next().unwrap_or_default();
    let words: Vec<&str> = head.split_whitespace().take(3).collect();
    let mut kind: String = words.join(" ").chars().take(40).collect();
    if kind.is_empty() {
        kind = "unknown".to_string();
    }
    kind
}

/// (resident bytes, open files) of this process; zeros where /proc cannot
/// tell.
fn process_figures() -> (i64, i64) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
        })
        .map_or(0, |kib| kib.saturating_mul(1024));
    let files = std::fs::read_dir("/proc/self/fd")
        .map(|d| i64::try_from(d.count()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    (rss, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons_are_labelled_by_their_kind() {
        assert_eq!(reason_kind("killed: audit hold"), "killed");
        assert_eq!(reason_kind("client closed"), "client closed");
        assert_eq!(reason_kind(""), "unknown");
        assert_eq!(
            reason_kind("node a stopped answering (last heartbeat ...)"),
            "node a stopped"
        );
    }

    #[test]
    fn the_text_names_every_figure() {
        let m = Metrics::new();
        m.session_started("ssh");
        m.session_ended("ssh", "killed: by admin", 10, 20);
        m.login("password", false);
        let text = m.render(&Present {
            live: vec!["ssh".into(), "ssh".into()],
            live_bytes: (5, 7),
            audit_queue: 3,
            index_lag: 1.5,
        });
        for line in [
            "rampart_sessions_started_total{protocol=\"ssh\"} 1",
            "rampart_sessions_ended_total{protocol=\"ssh\",reason=\"killed\"} 1",
            "rampart_sessions_live{protocol=\"ssh\"} 2",
            "rampart_live_relayed_bytes{direction=\"out\"} 7",
            "rampart_relayed_bytes_total{direction=\"out\"} 20",
            "rampart_logins_total{method=\"password\",result=\"failure\"} 1",
            "rampart_audit_queue_rows 3",
            "rampart_index_lag_seconds 1.5",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert!(text.contains("rampart_process_open_files "));
        assert!(text.ends_with("# EOF\n"));
    }
}
