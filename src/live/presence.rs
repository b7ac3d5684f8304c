//! A person's channels other than target sessions (the menu, the staff
//! desk, an admin command), registered so that withdrawing their access
//! ends those too.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::watch;

use super::{Inner, Registry, one_line};
use crate::model::Role;

/// A person's open channel that is not a target session, as registered:
/// who, as which account (the user id they logged in with) and with which
/// role it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    /// This registration's number, for [`Registry::dismiss`].
    pub key: u64,
    pub user: String,
    pub user_id: String,
    pub role: Role,
}

#[derive(Debug)]
pub(super) struct PresenceEntry {
    pub(super) attendee: Attendee,
    /// The reason the channel must end, once there is one.
    pub(super) end: watch::Sender<Option<String>>,
}

impl Registry {
    /// Registers a person's channel other than a target session (the menu,
    /// the staff desk, an admin command). Hold the returned handle for as
    /// long as the channel runs, and end the channel when
    /// [`Presence::withdrawn`] resolves.
    pub fn attend(&self, user: &str, user_id: &str, role: Role) -> Presence {
        let key = self.inner.next_presence.fetch_add(1, Ordering::Relaxed);
        let (end, receiver) = watch::channel(None);
        let entry = Arc::new(PresenceEntry {
            attendee: Attendee {
                key,
                user: user.to_string(),
                user_id: user_id.to_string(),
                role,
            },
            end,
        });
        self.inner.presences().insert(key, Arc::clone(&entry));
        Presence {
            entry,
            registry: Arc::downgrade(&self.inner),
            end: receiver,
        }
    }

    /// Every registered channel of a person, oldest first.
    pub fn attendees(&self) -> Vec<Attendee> {
        let mut all: Vec<Attendee> = self
            .inner
            .presences()
            .values()
            .map(|e| e.attendee.clone())
            .collect();
        all.sort_by_key(|a| a.key);
        all
    }

    /// Orders one registered channel to end, showing `reason` to its
    /// person; false when it is gone. The first reason given is the one
    /// shown.
    pub fn dismiss(&self, key: u64, reason: &str) -> bool {
        let Some(entry) = self.inner.presences().get(&key).cloned() else {
            return false;
        };
        let reason = one_line(reason);
        entry.end.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
        true
    }
}

/// A person's registered channel (see [`Registry::attend`]). Dropping it
/// unregisters the channel.
#[derive(Debug)]
pub struct Presence {
    pub(super) entry: Arc<PresenceEntry>,
    pub(super) registry: Weak<Inner>,
    pub(super) end: watch::Receiver<Option<String>>,
}

impl Presence {
    pub fn attendee(&self) -> &Attendee {
        &self.entry.attendee
    }

    /// Resolves with the reason once the channel is to end (the person was
    /// disabled, removed, expired or demoted); pending until then.
    /// Cancel-safe, so it can sit in a channel loop's `select!`.
    pub async fn withdrawn(&mut self) -> String {
        let reason = match self.end.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            // The entry owns the sender, and this handle the entry: cannot
            // happen; never end a channel for it.
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        if let Some(inner) = self.registry.upgrade() {
            inner.presences().remove(&self.entry.attendee.key);
        }
    }
}
