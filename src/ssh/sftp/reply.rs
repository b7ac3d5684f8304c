//! The targets' side: answers mapped back (handles, realpaths), bytes
//! accounted, and the transfer rows written.

use super::*;
use crate::session::Transfer;

impl Relay<'_> {
    pub(super) async fn backend_event(&mut self, event: Event) {
        match event {
            Event::Data(i, data) => {
                let b = &mut self.backends[i];
                b.bytes_out += data.len() as u64;
                b.session.live().add_out(data.len() as u64);
                b.frames.push(&data);
                loop {
                    let packet = match self.backends[i].frames.next_packet() {
                        Ok(Some(p)) => p,
                        Ok(None) => break,
                        Err(e) => {
                            self.backends[i].gone =
                                Some(format!("the target broke the SFTP protocol: {e}"));
                            self.fail_gone();
                            break;
                        }
                    };
                    match wire::parse_server(packet) {
                        Ok(ServerPacket::Reply { code, id, body }) => self.reply(i, code, id, body),
                        Ok(ServerPacket::Version { .. }) => {}
                        Err(e) => {
                            self.backends[i].gone =
                                Some(format!("the target broke the SFTP protocol: {e}"));
                            self.fail_gone();
                            break;
                        }
                    }
                }
            }
            Event::Closed(i) => {
                let b = &mut self.backends[i];
                if b.gone.is_none() {
                    b.gone = Some(format!("{} closed the connection", b.asset));
                }
                self.fail_gone();
            }
        }
    }

    /// Answers every request outstanding on a target that is gone, and logs
    /// its open files as failed with the bytes that passed.
    pub(super) fn fail_gone(&mut self) {
        let gone: Vec<(usize, String)> = self
            .backends
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.gone.clone().map(|g| (i, g)))
            .collect();
        for (i, reason) in gone {
            let ids: Vec<u32> = self
                .pending
                .iter()
                .filter(|(_, p)| p.backend == i)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                if let Some(Pending {
                    what: Await::Close(f),
                    ..
                }) = self.pending.remove(&id)
                {
                    self.log_file(*f, Some(reason.clone()));
                }
                self.reply_status(id, Refusal::new(status::CONNECTION_LOST, reason.clone()));
            }
            let handles: Vec<u32> = self
                .handles
                .iter()
                .filter(|(_, o)| match o {
                    Open::File(f) => f.backend == i,
                    Open::Dir { backend, .. } => *backend == i,
                    Open::Listing { .. } => false,
                })
                .map(|(h, _)| *h)
                .collect();
            for h in handles {
                if let Some(Open::File(f)) = self.handles.remove(&h) {
                    self.log_file(*f, Some(reason.clone()));
                }
            }
            let b = &self.backends[i];
            self.mounts.remove(&(b.asset.clone(), b.account.clone()));
        }
    }

    /// A target's answer to request `id`.
    pub(super) fn reply(&mut self, backend: usize, code: u8, id: u32, body: Bytes) {
        let Some(pending) = self.pending.remove(&id) else {
            // An answer to nothing: the target is confused; drop it.
            tracing::warn!(asset = %self.backends[backend].asset, id, "sftp answer to no request");
            return;
        };
        if pending.backend != backend {
            self.pending.insert(id, pending);
            return;
        }
        let status_text = || {
            wire::status_of(&body)
                .map(|(c, m)| {
                    if m.is_empty() {
                        format!("status {c}")
                    } else {
                        m
                    }
                })
                .unwrap_or_else(|_| "malformed status".into())
        };
        match pending.what {
            Await::Plain => wire::encode_reply(&mut self.to_client, code, id, &body),
            Await::Open { path, read, write } => {
                if code == kind::HANDLE
                    && let Ok(remote) = wire::first_string(&body)
                {
                    let handle = self.next_handle;
                    let file = FileState {
                        backend,
                        remote,
                        path,
                        read: read.then(|| self.passing(backend, handle, "r")),
                        write: write.then(|| self.passing(backend, handle, "w")),
                        error: None,
                    };
                    let handle = self.new_handle(Open::File(Box::new(file)));
                    wire::encode_handle(&mut self.to_client, id, &handle.to_be_bytes());
                    return;
                }
                let operation = if write { "upload" } else { "download" };
                self.log(backend, operation, &path, 0, "failed", None, &status_text());
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Opendir => {
                if code == kind::HANDLE
                    && let Ok(remote) = wire::first_string(&body)
                {
                    let handle = self.new_handle(Open::Dir { backend, remote });
                    wire::encode_handle(&mut self.to_client, id, &handle.to_be_bytes());
                    return;
                }
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Read { handle, offset } => {
                if let Some(Open::File(f)) = self.handles.get_mut(&handle) {
                    if code == kind::DATA {
                        if let (Ok(data), Some(r)) = (wire::first_string(&body), f.read.as_mut()) {
                            r.add(offset, data);
                        }
                    } else if code == kind::STATUS
                        && !matches!(wire::status_of(&body), Ok((status::EOF, _)))
                    {
                        f.error.get_or_insert_with(status_text);
                    }
                }
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Write { handle } => {
                if code != kind::STATUS || !matches!(wire::status_of(&body), Ok((status::OK, _))) {
                    let text = status_text();
                    if let Some(Open::File(f)) = self.handles.get_mut(&handle) {
                        f.error.get_or_insert(text);
                    }
                }
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Close(f) => {
                let error = match wire::status_of(&body) {
                    Ok((status::OK, _)) if code == kind::STATUS => None,
                    _ => Some(status_text()),
                };
                self.log_file(*f, error);
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
            Await::Realpath => {
                let b = &self.backends[backend];
                match wire::first_name(&body) {
                    Ok((count, name, rest)) if code == kind::NAME => {
                        let mapped = tree::virtual_path(&b.asset, &b.account, &name);
                        wire::encode_name_renamed(&mut self.to_client, id, count, &mapped, &rest);
                    }
                    _ => wire::encode_reply(&mut self.to_client, code, id, &body),
                }
            }
            Await::Change { operation, path } => {
                let ok =
                    code == kind::STATUS && matches!(wire::status_of(&body), Ok((status::OK, _)));
                let (result, error) = if ok {
                    ("ok", String::new())
                } else {
                    ("failed", status_text())
                };
                self.log(backend, operation, &path, 0, result, None, &error);
                wire::encode_reply(&mut self.to_client, code, id, &body);
            }
        }
    }

    /// The rows for a closed (or abandoned) file: one per direction used.
    pub(super) fn log_file(&mut self, f: FileState, error: Option<String>) {
        let error = f.error.or(error);
        let result = if error.is_some() { "failed" } else { "ok" };
        let error = error.unwrap_or_default();
        for (operation, passing) in [("download", f.read), ("upload", f.write)] {
            let Some(passing) = passing else { continue };
            let size = passing.bytes();
            let passed = passing.finish(error.is_empty());
            self.log(
                f.backend,
                operation,
                &f.path,
                size,
                result,
                passed.sha256,
                &error,
            );
        }
    }

    /// Collects one transfer row, written by [`Self::write_rows`] once the
    /// packet at hand is dealt with.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn log(
        &mut self,
        backend: usize,
        operation: &str,
        path: &str,
        size: u64,
        result: &str,
        sha256: Option<String>,
        error: &str,
    ) {
        let b = &self.backends[backend];
        let event = b.session.rows().transfer(Transfer {
            operation: operation.to_string(),
            path: path.to_string(),
            size,
            result: result.to_string(),
            sha256,
            error: error.to_string(),
        });
        let at = self.shared.services.clock.now();
        self.rows.push((event, at));
    }

    /// Hands the rows of what was just relayed to the audit writer. A full
    /// queue (a database that does not keep up) makes the relay wait here,
    /// and so stop reading the person's requests: pushed back, never an
    /// unbounded pile of rows.
    pub(super) async fn write_rows(&mut self) {
        let audit = &self.shared.services.audit;
        for (event, at) in self.rows.drain(..) {
            audit.write(event, at).await;
        }
    }
}
