//! The person's side: each request checked, mapped onto a target or answered
//! by the bastion (the virtual tree's top levels), and passed on.

use super::*;

impl Relay<'_> {
    pub(super) async fn client_packets(
        &mut self,
        frames: &mut Frames,
    ) -> Result<(), wire::WireError> {
        while let Some(packet) = frames.next_packet()? {
            let id = request_id(&packet);
            match wire::parse_client(packet) {
                Ok(ClientPacket::Init { .. }) => self.init(),
                Ok(ClientPacket::Request(req)) => self.request(req).await,
                // A packet whose id we can read gets a status; otherwise the
                // stream is not SFTP.
                Err(e) => match id {
                    Some(id) => wire::encode_status(
                        &mut self.to_client,
                        id,
                        status::BAD_MESSAGE,
                        &e.to_string(),
                    ),
                    None => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// Answers INIT: version 3 and the extensions the relay passes on.
    pub(super) fn init(&mut self) {
        let offered: Vec<(&[u8], &[u8])> = if self.direct {
            // What the target offers, of what the relay understands.
            self.backends[0]
                .extensions
                .iter()
                .filter(|(name, _)| Extension::from_name(name).is_some())
                .map(|(n, v)| (&n[..], &v[..]))
                .collect()
        } else {
            Extension::ALL
                .iter()
                .filter(|e| **e != Extension::ExpandPath)
                .map(|e| {
                    let version: &[u8] = match e {
                        Extension::Statvfs | Extension::Fstatvfs => b"2",
                        _ => b"1",
                    };
                    (e.name().as_bytes(), version)
                })
                .collect()
        };
        wire::encode_version(&mut self.to_client, 3, &offered);
    }

    pub(super) fn reply_status(&mut self, id: u32, refusal: Refusal) {
        wire::encode_status(&mut self.to_client, id, refusal.code, &refusal.message);
    }

    pub(super) async fn request(&mut self, req: Request) {
        let id = req.id;
        if self.pending.contains_key(&id) {
            return self.reply_status(
                id,
                Refusal::new(status::BAD_MESSAGE, "request id already in use"),
            );
        }
        let result = match req.op.fields() {
            Fields::Handle => self.handle_request(req).await,
            Fields::Path | Fields::TwoPaths => self.path_request(req).await,
            Fields::None => self.plain_request(req),
        };
        if let Err(refusal) = result {
            self.reply_status(id, refusal);
        }
    }

    pub(super) fn plain_request(&mut self, req: Request) -> Result<(), Refusal> {
        match req.op {
            Op::Extended(Extension::Limits) if !self.direct => {
                wire::encode_limits(
                    &mut self.to_client,
                    req.id,
                    wire::MAX_PACKET as u64,
                    READ_LIMIT,
                    READ_LIMIT,
                    MAX_HANDLES as u64,
                );
                Ok(())
            }
            Op::Extended(Extension::Limits) => self.forward(0, req, Await::Plain),
            _ => Err(Refusal::new(
                status::OP_UNSUPPORTED,
                "this request is not supported through the bastion",
            )),
        }
    }

    pub(super) async fn handle_request(&mut self, mut req: Request) -> Result<(), Refusal> {
        let handle = our_handle(&req.fields[0]).ok_or_else(invalid_handle)?;
        let open = self.handles.get_mut(&handle).ok_or_else(invalid_handle)?;
        let (backend, remote) = match open {
            Open::Listing { entries, next } => {
                return match req.op {
                    Op::Readdir if *next < entries.len() => {
                        // In pieces, so that no NAME packet outgrows what a
                        // client accepts (100k assets would).
                        let mut size = 0;
                        let piece: Vec<(&str, String, Attrs)> = entries[*next..]
                            .iter()
                            .take_while(|name| {
                                // At least one entry per packet.
                                let fits = size == 0 || size + 2 * name.len() + 96 < LISTING_PIECE;
                                size += 2 * name.len() + 96;
                                fits
                            })
                            .map(|name| {
                                let long = format!(
                                    "dr-xr-xr-x   1 rampart  rampart         0 Jan  1  1970 {name}"
                                );
                                (name.as_str(), long, Attrs::directory())
                            })
                            .collect();
                        *next += piece.len();
                        let rows: Vec<(&str, &str, Attrs)> =
                            piece.iter().map(|(n, l, a)| (*n, l.as_str(), *a)).collect();
                        wire::encode_name(&mut self.to_client, req.id, &rows);
                        Ok(())
                    }
                    Op::Readdir => Err(Refusal::new(status::EOF, "")),
                    Op::Close => {
                        self.handles.remove(&handle);
                        Err(Refusal::new(status::OK, ""))
                    }
                    Op::Fstat => {
                        wire::encode_attrs(&mut self.to_client, req.id, Attrs::directory());
                        Ok(())
                    }
                    _ => Err(read_only()),
                };
            }
            Open::Dir { backend, remote } => (*backend, remote.clone()),
            Open::File(f) => (f.backend, f.remote.clone()),
        };
        req.fields[0] = remote;
        let what = match req.op {
            Op::Read => {
                let (offset, _) = req.read_args().map_err(|_| invalid_handle())?;
                Await::Read { handle, offset }
            }
            Op::Write => {
                let (offset, data) = req.write_args().map_err(|_| invalid_handle())?;
                let Some(Open::File(f)) = self.handles.get_mut(&handle) else {
                    return Err(invalid_handle());
                };
                let Some(w) = f.write.as_mut() else {
                    return Err(Refusal::new(
                        status::PERMISSION_DENIED,
                        "the file is not open for writing",
                    ));
                };
                w.add(offset, data);
                Await::Write { handle }
            }
            Op::Fsetstat => {
                self.permit(backend, Action::Upload, "setstat", "")?;
                Await::Plain
            }
            Op::Close => match self.handles.remove(&handle) {
                Some(Open::File(f)) => Await::Close(f),
                _ => Await::Plain,
            },
            _ => Await::Plain,
        };
        self.forward(backend, req, what)
    }

    pub(super) async fn path_request(&mut self, mut req: Request) -> Result<(), Refusal> {
        // Where the request goes, with its path fields in the target's terms.
        let backend = if self.direct {
            0
        } else {
            match self.place_request(&mut req).await? {
                Some(b) => b,
                None => return Ok(()),
            }
        };
        let path = tree::shown(req.fields.last().map(|f| &f[..]).unwrap_or(b""));
        let first = tree::shown(req.fields.first().map(|f| &f[..]).unwrap_or(b""));
        let what = match req.op {
            Op::Open => {
                let flags = req.open_flags().map_err(|_| invalid_handle())?;
                let write = flags
                    & (open_flags::WRITE
                        | open_flags::APPEND
                        | open_flags::CREAT
                        | open_flags::TRUNC)
                    != 0;
                let read = flags & open_flags::READ != 0 || !write;
                if read {
                    self.permit(backend, Action::Download, "download", &path)?;
                }
                if write {
                    self.permit(backend, Action::Upload, "upload", &path)?;
                }
                if self.handles.len() >= MAX_HANDLES {
                    return Err(Refusal::new(
                        status::FAILURE,
                        format!("too many open files through the bastion ({MAX_HANDLES})"),
                    ));
                }
                Await::Open { path, read, write }
            }
            Op::Opendir => {
                if self.handles.len() >= MAX_HANDLES {
                    return Err(Refusal::new(
                        status::FAILURE,
                        format!("too many open files through the bastion ({MAX_HANDLES})"),
                    ));
                }
                Await::Opendir
            }
            Op::Remove => self.change(backend, Action::Delete, "delete", path)?,
            Op::Rmdir => self.change(backend, Action::Delete, "rmdir", path)?,
            Op::Mkdir => self.change(backend, Action::Upload, "mkdir", path)?,
            Op::Setstat | Op::Extended(Extension::Lsetstat) => {
                self.change(backend, Action::Upload, "setstat", path)?
            }
            Op::Symlink => self.change(backend, Action::Upload, "symlink", path)?,
            Op::Extended(Extension::Hardlink) => {
                self.change(backend, Action::Upload, "hardlink", path)?
            }
            Op::Rename => self.change(
                backend,
                Action::Upload,
                "rename",
                format!("{first} -> {path}"),
            )?,
            Op::Extended(Extension::PosixRename) => {
                let shown = format!("{first} -> {path}");
                self.permit(backend, Action::Delete, "rename", &shown)?;
                self.change(backend, Action::Upload, "rename", shown)?
            }
            Op::Realpath | Op::Extended(Extension::ExpandPath) if !self.direct => Await::Realpath,
            _ => Await::Plain,
        };
        self.forward(backend, req, what)
    }

    pub(super) fn change(
        &mut self,
        backend: usize,
        action: Action,
        operation: &'static str,
        path: String,
    ) -> Result<Await, Refusal> {
        self.permit(backend, action, operation, &path)?;
        Ok(Await::Change { operation, path })
    }

    /// Maps the path fields of a virtual-tree request onto one target.
    /// `Ok(None)`: the bastion answered it itself.
    pub(super) async fn place_request(
        &mut self,
        req: &mut Request,
    ) -> Result<Option<usize>, Refusal> {
        // A symlink's first field is its content: relative content stays as
        // written; absolute content must name the same target.
        let symlink = req.op == Op::Symlink;
        let mut mount: Option<(String, String)> = None;
        for (i, field) in req.fields.iter_mut().enumerate() {
            if symlink && i == 0 && !field.starts_with(b"/") {
                continue;
            }
            let place = tree::locate(field).map_err(|_| Refusal::no_such_file())?;
            match place {
                Place::Mount {
                    asset,
                    account,
                    path,
                } => {
                    let here = (asset, account);
                    if mount.as_ref().is_some_and(|m| *m != here) {
                        return Err(Refusal::new(
                            status::PERMISSION_DENIED,
                            "both paths must be on the same asset and account",
                        ));
                    }
                    mount = Some(here);
                    *field = path;
                }
                place if req.fields.len() == 1 => {
                    self.virtual_request(req.id, req.op, &place)?;
                    return Ok(None);
                }
                _ => return Err(read_only()),
            }
        }
        let Some((asset, account)) = mount else {
            return Err(read_only());
        };
        match self.mounts.get(&(asset.clone(), account.clone())) {
            Some(&b) if self.backends[b].gone.is_none() => Ok(Some(b)),
            _ => self
                .mount(&asset, &account)
                .await
                .map(Some)
                .map_err(|msg| Refusal::new(status::NO_SUCH_FILE, msg)),
        }
    }

    /// A request on `/` or `/ASSET`, answered by the bastion.
    pub(super) fn virtual_request(
        &mut self,
        id: u32,
        op: Op,
        place: &Place,
    ) -> Result<(), Refusal> {
        let (path, entries) = match place {
            Place::Root => ("/".to_string(), self.reachable_assets()),
            Place::Asset(asset) => {
                let accounts = self.reachable_accounts(asset);
                if accounts.is_empty() {
                    return Err(Refusal::no_such_file());
                }
                (format!("/{asset}"), accounts)
            }
            Place::Mount { .. } => return Err(read_only()),
        };
        match op {
            Op::Realpath => {
                wire::encode_name(
                    &mut self.to_client,
                    id,
                    &[(&path, &path, Attrs::directory())],
                );
            }
            Op::Stat | Op::Lstat => wire::encode_attrs(&mut self.to_client, id, Attrs::directory()),
            Op::Opendir => {
                if self.handles.len() >= MAX_HANDLES {
                    return Err(Refusal::new(status::FAILURE, "too many open directories"));
                }
                let handle = self.new_handle(Open::Listing { entries, next: 0 });
                wire::encode_handle(&mut self.to_client, id, &handle.to_be_bytes());
            }
            Op::Extended(Extension::Statvfs) => {
                return Err(Refusal::new(status::OP_UNSUPPORTED, "not a file system"));
            }
            _ => return Err(read_only()),
        }
        Ok(())
    }

    /// Assets the person may reach over SFTP, for `/`.
    pub(super) fn reachable_assets(&self) -> Vec<String> {
        let now = self.shared.services.clock.now();
        self.shared
            .policy()
            .visible_assets(&self.conn.identity, now)
            .into_iter()
            .filter(|a| {
                a.protocols().any(|p| p.name == "sftp" || p.name == "ssh")
                    && a.accounts().next().is_some()
                    && [Action::Upload, Action::Download, Action::Delete]
                        .into_iter()
                        .any(|x| a.actions().contains(x))
            })
            .map(|a| a.name().to_string())
            .collect()
    }

    /// Accounts of `asset` the person may use over SFTP, for `/ASSET`.
    pub(super) fn reachable_accounts(&self, asset: &str) -> Vec<String> {
        let now = self.shared.services.clock.now();
        let policy = self.shared.policy();
        let Some(visible) = policy.visible_asset(&self.conn.identity, asset, now) else {
            return Vec::new();
        };
        visible
            .accounts()
            .map(|a| a.username().to_string())
            .filter(|account| sftp_grant(self.shared, self.conn, asset, account).is_some())
            .collect()
    }

    /// Is `action` still granted on `backend`'s target? A refusal is logged
    /// as a `denied` transfer row.
    pub(super) fn permit(
        &mut self,
        backend: usize,
        action: Action,
        operation: &str,
        path: &str,
    ) -> Result<(), Refusal> {
        let now = self.shared.services.clock.now();
        let b = &self.backends[backend];
        if self
            .shared
            .policy()
            .recheck(&b.grant, action, now)
            .is_some()
        {
            return Ok(());
        }
        let message = format!(
            "rampart: {action} is not permitted on {} as {}",
            b.asset, b.account
        );
        self.log(backend, operation, path, 0, "denied", None, &message);
        Err(Refusal::new(status::PERMISSION_DENIED, message))
    }

    pub(super) fn forward(
        &mut self,
        backend: usize,
        req: Request,
        what: Await,
    ) -> Result<(), Refusal> {
        let b = &mut self.backends[backend];
        if let Some(reason) = &b.gone {
            return Err(Refusal::new(status::CONNECTION_LOST, reason.clone()));
        }
        req.encode(&mut b.out);
        self.pending.insert(req.id, Pending { backend, what });
        Ok(())
    }

    /// Byte accounting for a file opened on `backend`, with a kept copy
    /// under `recordings/files/SESSION/` when `recording.keep_files` is on.
    pub(super) fn passing(&self, backend: usize, handle: u32, way: &str) -> Passing {
        let config = &self.shared.services.config;
        if !config.recording.keep_files {
            return Passing::new();
        }
        let dir = config
            .recording_dir()
            .join("files")
            .join(self.backends[backend].session.id());
        Passing::keeping(
            &dir,
            &format!("{handle}{way}"),
            config.recording.keep_files_max_size,
        )
    }

    pub(super) fn new_handle(&mut self, open: Open) -> u32 {
        let handle = self.next_handle;
        self.next_handle = self.next_handle.wrapping_add(1).max(1);
        self.handles.insert(handle, open);
        handle
    }
}
