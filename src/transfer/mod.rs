//! File transfers as the audit sees them: the bytes of one file as they pass
//! through the bastion, counted and hashed in file order without a second
//! read ([`Passing`]), the legacy SCP protocol ([`scp`]), and the exec
//! commands that are file transfers rather than commands ([`ExecTransfer`]:
//! legacy scp and rsync, recognised exactly, see [`shell`]). The SFTP
//! protocol is in [`crate::sftp`]; the sessions that carry them are in
//! `ssh`.

pub mod rsync;
pub mod scp;
pub mod shell;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::model::Action;

/// An exec'd command that moves files, recognised so it is checked against
/// `upload`/`download`/`delete` rather than `connect`.
///
/// Only the exact command lines the clients send are recognised: a person
/// with `upload` alone must not be able to run anything else on the target
/// by dressing it up as a transfer (`rsync --server ...; sh`). Whatever is
/// not recognised is a plain command and needs `connect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecTransfer {
    /// Legacy SCP (`scp -O`): the bastion logs each file.
    Scp(scp::ScpCommand),
    /// The remote half of rsync over SSH: `rsync --server [--sender] ...`.
    /// Relayed and recorded as an exec session; files are not logged one by
    /// one (rsync's protocol is not parsed).
    Rsync(rsync::RsyncCommand),
}

impl ExecTransfer {
    /// Recognises `scp -t|-f ...` ([`scp::parse_command`]) and
    /// `rsync --server ...` ([`rsync::parse_command`]).
    pub fn classify(command: &str) -> Option<ExecTransfer> {
        scp::parse_command(command)
            .map(ExecTransfer::Scp)
            .or_else(|| rsync::parse_command(command).map(ExecTransfer::Rsync))
    }

    /// The actions the command needs, the first being the main one.
    pub fn actions(&self) -> Vec<Action> {
        match self {
            ExecTransfer::Scp(c) => match c.direction {
                scp::Direction::Upload => vec![Action::Upload],
                scp::Direction::Download => vec![Action::Download],
            },
            ExecTransfer::Rsync(c) => {
                let mut actions = vec![if c.sender {
                    Action::Download
                } else {
                    Action::Upload
                }];
                if c.reads_list && !c.sender {
                    actions.push(Action::Download);
                }
                if c.deletes {
                    actions.push(Action::Delete);
                }
                actions
            }
        }
    }
}

/// How many bytes may arrive ahead of a gap (pipelined reads answered out of
/// order) before the digest is given up for that file.
const MAX_EARLY: usize = 64 * 1024 * 1024;
/// What holding one chunk ahead of a gap costs besides its bytes (the map's
/// node, the buffer's header, the allocation), counted against
/// [`MAX_EARLY`]: a flood of one-byte writes past a gap is bounded like one
/// large write.
const EARLY_CHUNK_COST: usize = 128;

/// The bytes of one file as they pass, at the offsets they were written or
/// read. The SHA-256 covers the file from offset 0 when every byte passed
/// exactly once; a resumed, sparse or rewritten transfer has a byte count
/// but no digest (it would not be the digest of any file).
pub struct Passing {
    next: u64,
    hasher: Sha256,
    early: BTreeMap<u64, Bytes>,
    early_bytes: usize,
    digest_lost: bool,
    bytes: u64,
    keep: Option<Keep>,
}

/// A copy of the file being written as its bytes pass, in file order
/// (`recording.keep_files`). It becomes `DIR/<sha256>` when the whole file
/// passed; a file over the size limit, or without a digest, is not kept.
struct Keep {
    part: PathBuf,
    file: std::fs::File,
    written: u64,
    limit: u64,
}

impl Keep {
    fn write(&mut self, data: &[u8]) -> bool {
        self.written += data.len() as u64;
        // Writes go to the page cache: a short, bounded stall of the relay,
        // like the recorder's own writes.
        self.written <= self.limit && self.file.write_all(data).is_ok()
    }

    fn discard(self) {
        let _ = std::fs::remove_file(&self.part);
    }
}

/// What is known of a file once its transfer is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    /// Lowercase hex SHA-256, when the bytes were the whole file once each.
    pub sha256: Option<String>,
    /// The kept copy, with `recording.keep_files`.
    pub kept: Option<PathBuf>,
}

impl Default for Passing {
    fn default() -> Self {
        Passing::new()
    }
}

impl Passing {
    pub fn new() -> Passing {
        Passing {
            next: 0,
            hasher: Sha256::new(),
            early: BTreeMap::new(),
            early_bytes: 0,
            digest_lost: false,
            bytes: 0,
            keep: None,
        }
    }

    /// Also keeps a copy of the file in `dir` (created 0700 if missing), up
    /// to `limit` bytes; `name` is the temporary name while it passes. When
    /// the copy cannot be started the transfer goes on without one (and a
    /// warning is logged).
    pub fn keeping(dir: &Path, name: &str, limit: u64) -> Passing {
        let mut passing = Passing::new();
        let part = dir.join(format!(".{name}.part"));
        let opened = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&part)
            });
        match opened {
            Ok(file) => {
                passing.keep = Some(Keep {
                    part,
                    file,
                    written: 0,
                    limit,
                })
            }
            Err(e) => tracing::warn!(
                "cannot keep a copy of a transferred file in {}: {e}",
                dir.display()
            ),
        }
        passing
    }

    /// `data` passed at `offset`.
    pub fn add(&mut self, offset: u64, data: Bytes) {
        self.bytes += data.len() as u64;
        if self.digest_lost || data.is_empty() {
            return;
        }
        if offset < self.next {
            self.lose_digest();
            return;
        }
        if offset > self.next {
            self.early_bytes += data.len() + EARLY_CHUNK_COST;
            if self.early_bytes > MAX_EARLY {
                self.lose_digest();
                return;
            }
            // A copy: the chunk may be a slice of a much larger buffer (the
            // packet it came in), which it would otherwise keep alive.
            if self
                .early
                .insert(offset, Bytes::copy_from_slice(&data))
                .is_some()
            {
                self.lose_digest();
            }
            return;
        }
        self.take(&data);
        // Whatever was waiting for this gap follows now.
        while let Some(entry) = self.early.first_entry() {
            let at = *entry.key();
            if at > self.next {
                break;
            }
            let chunk = entry.remove();
            self.early_bytes -= chunk.len() + EARLY_CHUNK_COST;
            if at < self.next {
                self.lose_digest();
                return;
            }
            self.take(&chunk);
        }
    }

    fn take(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.next += data.len() as u64;
        if let Some(keep) = self.keep.as_mut()
            && !keep.write(data)
            && let Some(keep) = self.keep.take()
        {
            keep.discard();
        }
    }

    fn lose_digest(&mut self) {
        self.digest_lost = true;
        self.early.clear();
        self.early_bytes = 0;
        if let Some(keep) = self.keep.take() {
            keep.discard();
        }
    }

    /// Bytes that passed, counting any that passed twice.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The transfer is over: `complete` when it ended well. The digest is
    /// there when the bytes that passed were the whole file from offset 0,
    /// once each; a kept copy is renamed to its digest, or removed.
    pub fn finish(self, complete: bool) -> Passed {
        let sha256 = (complete && !self.digest_lost && self.early.is_empty())
            .then(|| hex::encode(self.hasher.finalize()));
        let kept = match (self.keep, &sha256) {
            (Some(keep), Some(sha)) => {
                let target = keep.part.with_file_name(sha);
                match std::fs::rename(&keep.part, &target) {
                    Ok(()) => Some(target),
                    Err(e) => {
                        tracing::warn!("cannot keep {}: {e}", target.display());
                        keep.discard();
                        None
                    }
                }
            }
            (Some(keep), None) => {
                keep.discard();
                None
            }
            (None, _) => None,
        };
        Passed { sha256, kept }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn file_moving_commands_are_recognised() {
        use Action::*;
        let cases: &[(&str, Option<Vec<Action>>)] = &[
            ("scp -t /tmp", Some(vec![Upload])),
            ("scp -r -d -t -- /srv", Some(vec![Upload])),
            ("scp -f /etc/hosts", Some(vec![Download])),
            (
                "rsync --server -vlogDtpre.iLsfxCIvu . /dst/",
                Some(vec![Upload]),
            ),
            (
                "rsync --server --sender -vlogDtpre.iLsfxCIvu . /src/",
                Some(vec![Download]),
            ),
            (
                "/usr/bin/rsync --server -r --delete-during . /d",
                Some(vec![Upload, Delete]),
            ),
            ("rsync -av /a /b", None),
            ("uname -a", None),
            ("scp -t /a /b", None),
        ];
        for (command, actions) in cases {
            assert_eq!(
                ExecTransfer::classify(command).map(|e| e.actions()),
                *actions,
                "{command}"
            );
        }
    }

    /// Remote commands collected from real clients (rsync 3.x with `-e` set
    /// to a script that logs its argv, OpenSSH 9.2 `scp -O -S` the same way;
    /// ssh joins the words with spaces), with what each needs.
    #[test]
    fn what_real_rsync_and_scp_clients_send_is_a_transfer() {
        use Action::*;
        let up = || Some(vec![Upload]);
        let down = || Some(vec![Download]);
        let cases: &[(&str, Option<Vec<Action>>)] = &[
            // rsync -a, -av, -avz, -avv, -aHAX, -ac, -n, -q, -W, -S, -y, -U, -R
            ("rsync --server -logDtpre.iLsfxCIvu . /dst/", up()),
            (
                "rsync --server --sender -logDtpre.iLsfxCIvu . /srv/x",
                down(),
            ),
            ("rsync --server -vlogDtpre.iLsfxCIvu . /dst/", up()),
            ("rsync --server -vlogDtprze.iLsfxCIvu . /dst/", up()),
            (
                "rsync --server --sender -vvlogDtpre.iLsfxCIvu . /srv/x",
                down(),
            ),
            ("rsync --server -lHogDtpAXre.iLsfxCIvu . /dst/", up()),
            ("rsync --server -logDtprce.iLsfxCIvu . /dst/", up()),
            ("rsync --server -nlogDtpre.iLsfxCIvu . /dst/", up()),
            ("rsync --server -qlogDtpre.iLsfxCIvu . /dst/", up()),
            ("rsync --server -lWogDtpre.iLsfxCIvu . /dst/", up()),
            (
                "rsync --server -logDtprSe.iLsfxCIvu --inplace . /dst/",
                up(),
            ),
            ("rsync --server -lyogDtpre.iLsfxCIvu . /dst/", up()),
            ("rsync --server -logDtUpre.iLsfxCIvu . /dst/", up()),
            (
                "rsync --server -logDtprRe.iLsfxCIvu --no-implied-dirs . /dst/",
                up(),
            ),
            // --protocol=29: no -e capabilities.
            ("rsync --server --sender -logDtpr . /srv/x", down()),
            // Long options as rsync's server_options() sends them.
            (
                "rsync --server -logDtpre.iLsfxCIvu --log-format=X --partial . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --log-format=%i . /dst/",
                up(),
            ),
            ("rsync --server -logDtpre.iLsfxCIvu --append . /dst/", up()),
            (
                "rsync --server -logDtpre.iLsfxCIvu --bwlimit=100 . /dst/",
                up(),
            ),
            (
                "rsync --server --sender -logDtpre.iLsfxCIvu --timeout=5 . /srv/x",
                down(),
            ),
            (
                "rsync --server -blogDtpre.iLsfxCIvu --backup-dir /tmp/bk . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --suffix=.old . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --max-size=1048576 . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --partial-dir .part . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --temp-dir /tmp/t . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --link-dest /tmp/l . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtprze.iLsfxCIvu --compress-level=3 . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --checksum-choice=md5 . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --compress-choice=zstd . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --iconv=latin1 . /dst/",
                up(),
            ),
            (
                r"rsync --server -logDtpre.iLsfxCIvu --usermap=\*:a --groupmap=\*:b . /dst/",
                up(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --numeric-ids --mkpath . /dst/",
                up(),
            ),
            ("rsync --server -logDtpre.iLsfxCIvu -B1024 . /dst/", up()),
            (
                "rsync --server -logDtpre.iLsfxCIvu --inplace --write-devices . /dst/",
                up(),
            ),
            (
                "rsync --server --sender -logDtpre.iLsfxCIvu --max-alloc=2G . /srv/x",
                down(),
            ),
            (
                "rsync --server --sender -logDtpre.iLsfxCIvu --skip-compress=gz/jpg . /srv/x",
                down(),
            ),
            (
                "rsync --server --sender -logDtpRe.LsfxCIvu --files-from=- --from0 . /srv/x",
                down(),
            ),
            (
                "rsync --server --sender -logDtpre.iLsfxCIvu . /a /b",
                down(),
            ),
            // Paths: rsync backslash-escapes the shell's characters and a
            // leading dash becomes ./-x; wildcards after a literal start
            // are the remote shell's to expand.
            (r"rsync --server -logDtpre.iLsfxCIvu . /d\ st/", up()),
            (r"rsync --server -logDtpre.iLsfxCIvu . /a\'b", up()),
            (r#"rsync --server -logDtpre.iLsfxCIvu . /a\"b"#, up()),
            (r"rsync --server -logDtpre.iLsfxCIvu . /a\#c\\d", up()),
            ("rsync --server -logDtpre.iLsfxCIvu . ./-x", up()),
            ("rsync --server -logDtpre.iLsfxCIvu . ~/x", up()),
            (r"rsync --server --sender -logDtpre.iLsfxCIvu . \~", down()),
            (
                "rsync --server --sender -logDtpre.iLsfxCIvu . /var/log/*.log",
                down(),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu . /\u{e9}\\ \u{fc}",
                up(),
            ),
            ("rsync --server -logDtpre.iLsfxCIvu . rel/path", up()),
            // What needs delete as well.
            (
                "rsync --server -logDtpre.iLsfxCIvu --delete . /dst/",
                Some(vec![Upload, Delete]),
            ),
            (
                "rsync --server -logDtpre.iLsfxCIvu --max-delete=3 --delete-after --delete-excluded --force . /dst/",
                Some(vec![Upload, Delete]),
            ),
            (
                "rsync --server --sender -logDtpre.iLsfxCIvu --remove-source-files . /srv/x",
                Some(vec![Download, Delete]),
            ),
            (
                "rsync --server --sender -logDtpre.iLsfxCIvu --delete-missing-args . /srv/x",
                Some(vec![Download, Delete]),
            ),
            // An upload whose file list is read from a file on the target
            // also reads that file.
            (
                "rsync --server -logDtpRe.LsfxCIvu --files-from /srv/list --no-relative . /dst/",
                Some(vec![Upload, Download]),
            ),
            ("/usr/bin/rsync --server -logDtpre.iLsfxCIvu . /dst/", up()),
            // scp -O (OpenSSH 9.2) quotes nothing itself; the person does.
            ("scp -t /d", up()),
            ("scp -f /srv/x", down()),
            ("scp -r -d -t /x", up()),
            ("scp -r -p -d -t /x", up()),
            ("scp -v -d -t /x", up()),
            ("scp -t -- -x", up()),
            ("scp -f ~/x", down()),
            ("scp -f /a*b", down()),
            ("scp -t '/d st/'", up()),
        ];
        for (command, actions) in cases {
            assert_eq!(
                ExecTransfer::classify(command).map(|e| e.actions()),
                *actions,
                "{command}"
            );
        }
    }

    /// Anything else that starts like a transfer is a command: the shell on
    /// the target would run more than rsync or scp, or rsync would do more
    /// than move files. Each needs `connect`.
    #[test]
    fn commands_dressed_as_transfers_are_not_transfers() {
        let cases = [
            // Shell syntax after a real form.
            "rsync --server -logDtpre.iLsfxCIvu . /dst/; touch /tmp/x",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/;touch /tmp/x",
            "rsync --server ; touch /tmp/x",
            "rsync --server || touch /tmp/x",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/ || touch /tmp/x",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/ && touch /tmp/x",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/ & touch /tmp/x",
            "rsync --server -logDtpre.iLsfxCIvu . $(touch /tmp/x)",
            "rsync --server -logDtpre.iLsfxCIvu . \"$(touch /tmp/x)\"",
            "rsync --server -logDtpre.iLsfxCIvu . `touch /tmp/x`",
            "rsync --server $(touch /tmp/x)",
            "rsync --server `touch /tmp/x`",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/\ntouch /tmp/x",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/\rtouch /tmp/x",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/ > /tmp/x",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/ < /etc/passwd",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/ | sh",
            "rsync --server -logDtpre.iLsfxCIvu . /dst/ # comment",
            "rsync --server -logDtpre.iLsfxCIvu . ${HOME}",
            "rsync --server -logDtpre.iLsfxCIvu . $HOME",
            "rsync --server -logDtpre.iLsfxCIvu . (x)",
            "rsync --server -logDtpre.iLsfxCIvu . {-f,x}",
            "rsync --server -logDtpre.iLsfxCIvu . 'unterminated",
            // Other programs, or an rsync the person may have written.
            "sudo rsync --server -logDtpre.iLsfxCIvu . /dst/",
            "FOO=1 rsync --server -logDtpre.iLsfxCIvu . /dst/",
            "/tmp/rsync --server -logDtpre.iLsfxCIvu . /dst/",
            "./rsync --server -logDtpre.iLsfxCIvu . /dst/",
            "rsync2 --server -logDtpre.iLsfxCIvu . /dst/",
            "r*ync --server -logDtpre.iLsfxCIvu . /dst/",
            // Not what the client sends.
            "rsync --server",
            "rsync --server -logDtpre.iLsfxCIvu",
            "rsync --server -logDtpre.iLsfxCIvu .",
            "rsync --server -logDtpre.iLsfxCIvu /dst/",
            "rsync --server -logDtpre.iLsfxCIvu . /a /b",
            "rsync --server -logDtpre.iLsfxCIvu . -x",
            "rsync --server -logDtpre.iLsfxCIvu . --daemon",
            "rsync --server -logDtpre.iLsfxCIvu . ''",
            "rsync --server --sender -logDtpre.iLsfxCIvu . *",
            "rsync --server --sender -logDtpre.iLsfxCIvu . ?x",
            "rsync --server --sender -logDtpre.iLsfxCIvu . [-]x",
            "rsync --server --daemon .",
            "rsync --server --daemon --config=/tmp/r.conf .",
            "rsync --server -logDtpre.iLsfxCIvu --log-file=/home/u/.bashrc . /dst/",
            "rsync --server -logDtpre.iLsfxCIvu --log-format=%f . /dst/",
            "rsync --server -logDtpre.iLsfxCIvu --rsh=sh . /dst/",
            "rsync --server -logDtpre.iLsfxCIvu --foo . /dst/",
            "rsync --server -logDtpre.iLsfxCIvu --timeout . /dst/",
            "rsync --server -logDtpre.iLsfxCIvu --backup-dir . /dst/",
            "rsync --server -logDtpre.iLsfxCIvu --suffix=* . /dst/",
            "rsync --server -logDtpre.iLsfxCIvu -M . /dst/",
            "rsync --server -logDtpre.iLsfxCIvu -e.x . /dst/",
            "rsync --server -logDtpre.iLsfxCIvu -logDtpr . /dst/",
            "rsync --server --sender --sender -logDtpr . /x",
            "rsync --server -logDtpre.iLsfxCIvu --sender . /x",
            "rsync -logDtpre.iLsfxCIvu --server . /dst/",
            "rsync --server -logDtpr;e . /dst/",
            r"rsync --server -logDtpr\;e . /dst/",
            // What rsync sends for a path holding a shell's character:
            // escaped for a POSIX shell, but not every login shell is one.
            r"rsync --server -logDtpre.iLsfxCIvu . /a\$b",
            r"rsync --server -logDtpre.iLsfxCIvu . /a\;b",
            r"rsync --server -logDtpre.iLsfxCIvu . /a\&b",
            r"rsync --server -logDtpre.iLsfxCIvu . /a\{b,c\}",
            r"rsync --server -logDtpre.iLsfxCIvu . /a\!b",
            "rsync --server -logDtpre.iLsfxCIvu . '/a;b'",
            // --secluded-args: the rest comes on stdin, unseen.
            "rsync --server -slogDtpre.iLsfxCIvu",
            "rsync --server --sender -slogDtpre.iLsfxCIvu",
            "rsync --server -slogDtpre.iLsfxCIvu . /dst/",
            "rsync -av /a /b",
            // scp: the same holes.
            "scp -t /a; touch /tmp/x",
            "scp -t /a || touch /tmp/x",
            "scp -t $(touch /tmp/x)",
            "scp -t `touch /tmp/x`",
            "scp -t /a\ntouch /tmp/x",
            "scp -t /a > /tmp/x",
            "scp -t /a | sh",
            "scp -t *",
            "scp -f ?",
            "scp -t {-f,x}",
        ];
        for command in cases {
            assert_eq!(ExecTransfer::classify(command), None, "{command:?}");
        }
    }

    #[test]
    fn in_order_bytes_give_the_file_digest() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut p = Passing::new();
        for (i, chunk) in data.chunks(32768).enumerate() {
            p.add(i as u64 * 32768, Bytes::copy_from_slice(chunk));
        }
        assert_eq!(p.bytes(), data.len() as u64);
        assert_eq!(p.finish(true).sha256, Some(sha(&data)));
        assert_eq!(Passing::new().finish(true).sha256, Some(sha(b"")));
    }

    #[test]
    fn pipelined_answers_out_of_order_are_put_back_in_order() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 13) as u8).collect();
        let chunks: Vec<(u64, &[u8])> = data
            .chunks(1000)
            .enumerate()
            .map(|(i, c)| (i as u64 * 1000, c))
            .collect();
        let mut p = Passing::new();
        for &i in &[3usize, 1, 0, 2, 9, 5, 4, 6, 8, 7] {
            let (at, c) = chunks[i];
            p.add(at, Bytes::copy_from_slice(c));
        }
        assert_eq!(p.finish(true).sha256, Some(sha(&data)));
    }

    /// Small chunks ahead of a gap cost what holding them costs, not just
    /// their bytes: a client writing (or making the target answer) one
    /// byte at a time past a gap gives the digest up after a bounded
    /// number of chunks, as one large chunk of the same cost would, instead
    /// of making the bastion hold millions of them.
    #[test]
    fn tiny_chunks_ahead_of_a_gap_are_counted_per_chunk() {
        let chunks = MAX_EARLY / 64;
        let mut p = Passing::new();
        for i in 0..chunks {
            p.add(1 + i as u64, Bytes::from_static(b"x"));
        }
        assert!(
            p.early.len() < chunks,
            "{} chunks held ahead of the gap",
            p.early.len()
        );
        p.add(0, Bytes::from_static(b"x"));
        assert_eq!(p.bytes(), chunks as u64 + 1);
        assert_eq!(p.finish(true).sha256, None);
    }

    #[test]
    fn short_reads_followed_by_the_remainder_keep_the_digest() {
        // The client asked 0..8 and 8..16; the first answer was short (0..5),
        // so it asks 5..8 again after 8..16 arrived.
        let data = b"0123456789abcdef";
        let mut p = Passing::new();
        p.add(0, Bytes::from_static(&data[..5]));
        p.add(8, Bytes::from_static(&data[8..]));
        p.add(5, Bytes::from_static(&data[5..8]));
        assert_eq!(p.finish(true).sha256, Some(sha(data)));
    }

    #[test]
    fn kept_copies_are_named_by_digest_and_only_whole_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("files").join("s1");
        let mut whole = Passing::keeping(&files, "1", 1000);
        whole.add(0, Bytes::from_static(b"hello "));
        whole.add(6, Bytes::from_static(b"world"));
        let passed = whole.finish(true);
        let kept = passed.kept.expect("kept");
        assert_eq!(kept, files.join(sha(b"hello world")));
        assert_eq!(std::fs::read(&kept).unwrap(), b"hello world");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&kept), 0o600, "like the recordings");
        assert_eq!(mode(&files), 0o700);

        let mut big = Passing::keeping(&files, "2", 4);
        big.add(0, Bytes::from_static(b"too big"));
        assert_eq!(big.finish(true).kept, None);
        let mut broken = Passing::keeping(&files, "3", 1000);
        broken.add(0, Bytes::from_static(b"half"));
        assert_eq!(broken.finish(false).kept, None);
        // Nothing else is left behind.
        let names: Vec<_> = std::fs::read_dir(&files)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn resumed_rewritten_or_gappy_transfers_have_no_digest() {
        let mut resumed = Passing::new();
        resumed.add(100, Bytes::from_static(b"tail"));
        assert_eq!(resumed.bytes(), 4);
        assert_eq!(resumed.finish(true).sha256, None);

        let mut twice = Passing::new();
        twice.add(0, Bytes::from_static(b"abcd"));
        twice.add(0, Bytes::from_static(b"abcd"));
        assert_eq!(twice.bytes(), 8);
        assert_eq!(twice.finish(true).sha256, None);

        let mut overlap = Passing::new();
        overlap.add(4, Bytes::from_static(b"efgh"));
        overlap.add(0, Bytes::from_static(b"abcdef"));
        assert_eq!(overlap.finish(true).sha256, None);
    }
}
