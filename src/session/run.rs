//! The running session's handle, for a protocol that has no stricter
//! ordering of its own: each call does what the bastion keeps of the event
//! (the byte counts the live list and the row show, the frame monitors
//! see, the recording) in one place.
//!
//! The SSH relay feeds the parts itself ([`Session::recorder`],
//! [`Session::live`]): it must publish a chunk under the same lock that
//! feeds its screen model, so a monitor's snapshot never shows a chunk
//! twice or misses one.

use bytes::Bytes;

use super::Session;
use crate::live::{LiveSession, Publisher};
use crate::record::{RecordError, RecorderHandle};

/// A session's output half (see [`Session::split`]).
pub struct Output<'a> {
    recorder: &'a RecorderHandle,
    recorded: bool,
    publisher: Publisher,
}

impl<'a> Output<'a> {
    fn new(recorder: &'a RecorderHandle, recorded: bool, live: &LiveSession) -> Output<'a> {
        Output {
            recorder,
            recorded,
            publisher: live.publisher(),
        }
    }

    /// Output towards the person, as [`Session::output`] takes it:
    /// counted, handed to monitors (a desktop's are frames they decode),
    /// recorded.
    pub async fn output(&self, data: Bytes) -> Result<(), RecordError> {
        self.publisher.add_out(data.len() as u64);
        self.publisher.publish(data.clone());
        if !self.recorded {
            return Ok(());
        }
        self.recorder.output(data).await
    }

    /// A marker in the recording (see [`Session::marker`]).
    pub async fn marker(&self, text: impl Into<String>) -> Result<(), RecordError> {
        if !self.recorded {
            return Ok(());
        }
        self.recorder.marker(text).await
    }

    /// Whether output is recorded: a protocol skips work done only for
    /// the recording (a desktop's keyframes) when it is not.
    pub fn recorded(&self) -> bool {
        self.recorded
    }

    /// A desktop's keyframe in the recording (see
    /// [`RecorderHandle::redraw`]).
    pub async fn redraw(&self, demand_active: Bytes) -> Result<(), RecordError> {
        if !self.recorded {
            return Ok(());
        }
        self.recorder.redraw(demand_active).await
    }
}

impl Session {
    /// Output towards the person: counted, shown to monitors, recorded.
    /// An error is the recording's (the session is recorded and its
    /// recording failed): the protocol ends the session unless
    /// `recording.on_failure = allow`.
    pub async fn output(&self, data: Bytes) -> Result<(), RecordError> {
        self.output_half().output(data).await
    }

    fn output_half(&self) -> Output<'_> {
        Output::new(&self.recorder, self.recorded, &self.live)
    }

    /// The output half, for a protocol that answers its live entry's
    /// orders ([`LiveSession::control`]: kills, monitors' snapshot
    /// requests) while another task relays.
    pub fn split(&mut self) -> (Output<'_>, &mut LiveSession) {
        let output = Output::new(&self.recorder, self.recorded, &self.live);
        (output, &mut self.live)
    }

    /// Input from the person: counted, and recorded with
    /// `recording.input` (the recorder drops it otherwise).
    pub async fn input(&self, data: Bytes) -> Result<(), RecordError> {
        self.live.add_in(data.len() as u64);
        if !self.recorded {
            return Ok(());
        }
        self.recorder.input(data).await
    }

    /// A marker in the recording where something happened (a command, a
    /// statement, a file), shown in the replay's list.
    pub async fn marker(&self, text: impl Into<String>) -> Result<(), RecordError> {
        self.output_half().marker(text).await
    }

    /// Bytes (from the person, towards the person) so far, for the row.
    pub fn bytes(&self) -> (u64, u64) {
        self.live.bytes()
    }
}
