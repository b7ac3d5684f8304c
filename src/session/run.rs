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
use crate::record::RecordError;

impl Session {
    /// Output towards the person: counted, shown to monitors, recorded.
    /// An error is the recording's (the session is recorded and its
    /// recording failed): the protocol ends the session unless
    /// `recording.on_failure = allow`.
    pub async fn output(&self, data: Bytes) -> Result<(), RecordError> {
        self.live.add_out(data.len() as u64);
        self.live.publish(data.clone());
        if !self.recorded {
            return Ok(());
        }
        self.recorder.output(data).await
    }

    /// Output towards the person that is no terminal stream (a remote
    /// desktop's updates): counted and recorded; monitors get no terminal
    /// frames from it.
    pub async fn output_frames(&self, data: Bytes) -> Result<(), RecordError> {
        self.live.add_out(data.len() as u64);
        if !self.recorded {
            return Ok(());
        }
        self.recorder.output(data).await
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
        if !self.recorded {
            return Ok(());
        }
        self.recorder.marker(text).await
    }

    /// Bytes (from the person, towards the person) so far, for the row.
    pub fn bytes(&self) -> (u64, u64) {
        self.live.bytes()
    }
}
