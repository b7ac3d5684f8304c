//! Legacy SCP through the bastion (`scp -O` with the target in the login
//! name): the exec of `scp -t`/`scp -f` is relayed like any exec, and this
//! tap follows the source's stream to write one transfer row per file, with
//! its size and SHA-256 (upload: the person's stream; download: the
//! target's). The bytes are never held or changed here.

use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use crate::relay::StreamTap;
use crate::services::Services;
use crate::session::{Rows, Transfer};
use crate::transfer::Passing;
use crate::transfer::scp::{Direction, Event, ScpCommand, SourceParser, download_base};

pub struct ScpTap {
    direction: Direction,
    state: Mutex<State>,
    services: Services,
    rows: Rows,
    /// The path to log for the one file of an upload to a named file
    /// (`scp -O f host:/tmp/x.bin` runs `scp -t /tmp/x.bin`): the file lands
    /// there, unless that is an existing directory, which the bastion cannot
    /// know; the name the person gave is what the row shows.
    named_file: Option<String>,
}

struct State {
    parser: SourceParser,
    /// Bytes of the file in progress so far.
    current: u64,
    /// The kept copy of the file in progress (`recording.keep_files`).
    keep: Option<Passing>,
    /// Files seen, to name kept copies while they pass.
    files: u64,
    /// Set once the stream stopped being SCP; nothing more is logged.
    broken: bool,
}

/// One row to write, collected under the lock and written outside it.
struct Row {
    path: String,
    size: u64,
    result: &'static str,
    sha256: Option<String>,
    error: String,
}

impl ScpTap {
    pub fn new(command: &ScpCommand, services: &Services, rows: Rows) -> ScpTap {
        let base = match command.direction {
            Direction::Upload => command.path.clone(),
            Direction::Download => download_base(&command.path),
        };
        ScpTap {
            direction: command.direction,
            state: Mutex::new(State {
                parser: SourceParser::new(&base),
                current: 0,
                keep: None,
                files: 0,
                broken: false,
            }),
            services: services.clone(),
            rows,
            named_file: (command.direction == Direction::Upload
                && !command.recursive
                && !command.directory
                && !command.path.ends_with('/')
                && !matches!(command.path.as_str(), "." | "~"))
            .then(|| command.path.clone()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn source(&self, data: &[u8]) {
        let mut rows = Vec::new();
        {
            let mut guard = self.state();
            let state = &mut *guard;
            if state.broken {
                return;
            }
            let current = &mut state.current;
            let broken = &mut state.broken;
            let keep = &mut state.keep;
            let files = &mut state.files;
            let keeping = self.services.config.recording.keep_files;
            state.parser.feed(data, &mut |event| match event {
                Event::FileStart { .. } => {
                    *current = 0;
                    *files += 1;
                    *keep = keeping.then(|| self.keeping(*files));
                }
                Event::Data(bytes) => {
                    if let Some(k) = keep.as_mut() {
                        k.add(*current, Bytes::copy_from_slice(bytes));
                    }
                    *current += bytes.len() as u64;
                }
                Event::FileEnd { path, size, sha256 } => {
                    if let Some(k) = keep.take() {
                        k.finish(true);
                    }
                    rows.push(Row {
                        path,
                        size,
                        result: "ok",
                        sha256: Some(sha256),
                        error: String::new(),
                    })
                }
                Event::SourceError {
                    path: Some(path),
                    message,
                    ..
                } => {
                    if let Some(k) = keep.take() {
                        k.finish(false);
                    }
                    rows.push(Row {
                        path,
                        size: *current,
                        result: "failed",
                        sha256: None,
                        error: message,
                    })
                }
                Event::Unparsable { reason } => {
                    tracing::warn!("scp stream not followed any further: {reason}");
                    *broken = true;
                }
                Event::SourceError { path: None, .. } | Event::DirStart { .. } | Event::DirEnd => {}
            });
        }
        self.write(rows);
    }

    /// A kept copy for the `n`th file of the session.
    fn keeping(&self, n: u64) -> Passing {
        let config = &self.services.config;
        let dir = config
            .recording_dir()
            .join("files")
            .join(self.rows.session_id());
        Passing::keeping(&dir, &n.to_string(), config.recording.keep_files_max_size)
    }

    /// The session ended: a file still in progress is logged as failed with
    /// the bytes that passed, and every row is written when this returns.
    pub async fn finish(&self) {
        if let Some(k) = self.state().keep.take() {
            k.finish(false);
        }
        let rows = match self.state().parser.finish() {
            Some((path, size)) => vec![Row {
                path,
                size,
                result: "failed",
                sha256: None,
                error: "the session ended in the middle of the file".into(),
            }],
            None => Vec::new(),
        };
        self.write(rows);
        self.services.audit.flush().await;
    }

    fn write(&self, rows: Vec<Row>) {
        let operation = match self.direction {
            Direction::Upload => "upload",
            Direction::Download => "download",
        };
        for row in rows {
            let event = self.rows.transfer(Transfer {
                operation: operation.into(),
                path: self.named_file.clone().unwrap_or(row.path),
                size: row.size,
                result: row.result.into(),
                sha256: row.sha256,
                error: row.error,
            });
            // From the byte pump's callback, which cannot wait: the
            // writer's bounded overflow holds it while its queue is full.
            self.services.audit.queue(event, self.services.clock.now());
        }
    }
}

impl StreamTap for ScpTap {
    fn person_sent(&self, data: &[u8]) {
        if self.direction == Direction::Upload {
            self.source(data);
        }
    }

    fn target_sent(&self, data: &[u8]) {
        if self.direction == Direction::Download {
            self.source(data);
        }
    }
}
