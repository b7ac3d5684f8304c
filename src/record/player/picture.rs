//! The playhead's model of a desktop recording: the picture the RDP updates
//! drew so far. A desktop cast has no text; each `raw:` marker names the
//! next bytes of the sidecar (one batch of updates), which are decoded into
//! the picture. A checkpoint is the picture deflated, taken right at a
//! `key:` marker, where the sidecar starts a new gzip member: restoring it
//! reopens the sidecar at that member and decodes on.

use std::path::PathBuf;

use crate::record::RecordError;
use crate::record::desktop::{Desktop, Frame, Saved};
use crate::record::export::{Sidecar, parse_key_marker, parse_raw_marker};

/// A picture to decode on from, and where in the sidecar.
pub(super) struct Point {
    saved: Saved,
    /// The file offset of the gzip member that follows.
    sidecar_at: u64,
    /// Decoded sidecar bytes before it (spacing checkpoints).
    pub(super) raw: u64,
}

impl std::fmt::Debug for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Point")
            .field("sidecar_at", &self.sidecar_at)
            .field("raw", &self.raw)
            .field("cost", &self.cost())
            .finish()
    }
}

impl Point {
    pub(super) fn cost(&self) -> usize {
        self.saved.cost() + size_of::<Point>()
    }
}

/// The desktop at the playhead, and the sidecar being read.
pub(super) struct Picture {
    desktop: Desktop,
    path: PathBuf,
    sidecar: Option<Sidecar>,
    /// Where the sidecar is to be opened from when it is next needed.
    open_at: u64,
    /// The offset a `key:` marker just named, until the bytes after it are
    /// read: only here can a checkpoint be taken.
    key: Option<u64>,
    /// Sidecar bytes decoded since the start.
    pub(super) raw: u64,
    /// Sidecar bytes this picture has decoded, jumps or not: the work.
    pub(super) decoded: u64,
    /// Started black at a stored keyframe and not yet seen whole: no
    /// checkpoint is taken of it, and a seek that ends here checks it.
    pub(super) partial: bool,
    chunk: Vec<u8>,
    buf: Vec<u8>,
}

impl Picture {
    pub(super) fn new(sidecar: PathBuf) -> Picture {
        Picture {
            desktop: Desktop::new(),
            path: sidecar,
            sidecar: None,
            open_at: 0,
            key: None,
            raw: 0,
            partial: false,
            decoded: 0,
            chunk: Vec::new(),
            buf: vec![0; 64 * 1024],
        }
    }

    pub(super) fn frame(&self) -> Option<Frame<'_>> {
        self.desktop.frame()
    }

    pub(super) fn damaged(&self) -> u64 {
        self.desktop.damaged
    }

    /// Applies a marker's text: a `raw:` marker's bytes are read from the
    /// sidecar and decoded, a `key:` marker is remembered.
    pub(super) fn marker(&mut self, text: &str) -> Result<(), RecordError> {
        if let Some(offset) = parse_key_marker(text) {
            self.key = Some(offset);
            return Ok(());
        }
        let Some((n, _)) = parse_raw_marker(text) else {
            return Ok(());
        };
        self.key = None;
        let sidecar = match self.sidecar.as_mut() {
            Some(s) => s,
            None => self
                .sidecar
                .insert(Sidecar::open_at(self.path.clone(), self.open_at)?),
        };
        self.chunk.clear();
        let got = sidecar.copy(Some(n), &mut self.chunk, &mut self.buf)?;
        self.raw += got;
        self.decoded += got;
        self.desktop.feed(&self.chunk);
        Ok(())
    }

    /// A checkpoint of this moment, if it is a seek point (and the
    /// picture is whole).
    pub(super) fn point(&mut self) -> Option<Point> {
        let sidecar_at = self.key?;
        if !self.whole() {
            return None;
        }
        Some(Point {
            saved: self.desktop.save()?,
            sidecar_at,
            raw: self.raw,
        })
    }

    /// Back to `point`, or to the start.
    pub(super) fn restore(&mut self, point: Option<&Point>) {
        self.desktop = point.map_or_else(Desktop::new, |p| Desktop::restore(&p.saved));
        self.open_at = point.map_or(0, |p| p.sidecar_at);
        self.raw = point.map_or(0, |p| p.raw);
        self.sidecar = None;
        self.key = None;
        self.partial = false;
    }

    /// Starts over at a stored keyframe: a black desktop as `demand_active`
    /// describes it, decoding on from the sidecar member at `sidecar_at`,
    /// `raw` update bytes into the recording. The target's repaint that
    /// follows fills it in; [`Picture::whole`] says when it has.
    pub(super) fn jump(&mut self, demand_active: &[u8], sidecar_at: u64, raw: u64) {
        self.desktop = Desktop::new();
        self.desktop.feed(demand_active);
        self.open_at = sidecar_at;
        self.raw = raw;
        self.sidecar = None;
        self.key = None;
        self.partial = true;
    }

    /// Whether every pixel has been drawn since the last jump (always, when
    /// the picture did not start at one).
    pub(super) fn whole(&mut self) -> bool {
        if self.partial && !self.desktop.has_undrawn() {
            self.partial = false;
        }
        !self.partial
    }
}
