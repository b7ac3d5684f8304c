//! A person's standing while they stay connected (issue 13, item 6).
//!
//! A target session ends through the relay's policy recheck when its
//! person is disabled. The person's other channels (the menu, the staff
//! desk, an admin command over SSH) register here as a
//! [`live::Presence`], and [`watch`] ends them within about two seconds of
//! a disable, removal, expiry or change of role, whoever made it: the
//! console, `ssh bastion rampart ...`, or the local CLI (another process,
//! which bumps the change counter). The channel shows the reason and ends.
//!
//! Must never: decide what a verb may do (that is `ops`, which reads the
//! caller's standing for each verb), or end anything but the channels of
//! the person whose standing changed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Conn, Shared};
use crate::live;
use crate::ops::{self, Standing};
use crate::store;

/// How often the open channels' people are checked. With the change
/// counter read at the same pace, a change made anywhere ends the channels
/// within about two of these.
pub const CHECK: Duration = Duration::from_secs(1);

/// The line a channel shows when its person's access ends.
pub fn ended_line(reason: &str) -> String {
    format!("rampart: access ended: {reason}")
}

impl Shared {
    /// Registers a channel of the person on `conn` (the menu, the desk, an
    /// admin command): [`live::Presence::withdrawn`] resolves with the
    /// reason when their access ends. Hold it while the channel runs.
    pub fn attend(&self, conn: &Conn) -> live::Presence {
        let identity = &conn.identity;
        self.live
            .attend(&identity.name, &identity.user_id, identity.role)
    }
}

/// Ends the registered channels of every person who may no longer act, or
/// whose role changed. Runs for the server's lifetime.
pub(super) async fn watch(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut counter = None;
    // Standings read since the change counter last moved; `None` inside:
    // no such user.
    let mut known: HashMap<String, Option<Standing>> = HashMap::new();
    loop {
        tick.tick().await;
        let attendees = shared.live.attendees();
        if attendees.is_empty() {
            continue;
        }
        let now_counter = match shared.services.store.conn().await {
            Ok(mut conn) => store::change_counter(&mut conn).await.ok(),
            Err(_) => None,
        };
        if now_counter.is_none() || now_counter != counter {
            known.clear();
            counter = now_counter;
        }
        let now = shared.services.clock.now();
        for attendee in attendees {
            let standing = match known.get(&attendee.user) {
                Some(s) => s.clone(),
                None => match shared.services.ops.standing(&attendee.user).await {
                    Ok(s) => {
                        known.insert(attendee.user.clone(), s.clone());
                        s
                    }
                    Err(e) => {
                        // Verbs still check for themselves; this watch
                        // tries again at the next tick.
                        tracing::warn!(user = %attendee.user, "cannot read the user's standing: {e}");
                        continue;
                    }
                },
            };
            if let Some(why) = verdict(standing.as_ref(), &attendee, now) {
                tracing::info!(user = %attendee.user, "ending an open channel: {why}");
                shared.live.dismiss(attendee.key, &why);
            }
        }
    }
}

/// Why a registered channel must end, or `None` while it may stay.
fn verdict(
    standing: Option<&Standing>,
    attendee: &live::Attendee,
    now: jiff::Timestamp,
) -> Option<String> {
    ops::withdrawn(standing, &attendee.user, Some(&attendee.user_id), now)
        .or_else(|| standing.and_then(|s| ops::role_changed(s, &attendee.user, attendee.role)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;

    fn eve(role: Role) -> live::Attendee {
        live::Attendee {
            key: 1,
            user: "eve".into(),
            user_id: "u-eve".into(),
            role,
        }
    }

    fn standing(role: Role, active: bool, expires_at: Option<jiff::Timestamp>) -> Standing {
        Standing {
            id: "u-eve".into(),
            role,
            active,
            expires_at,
        }
    }

    #[test]
    fn a_channel_ends_on_disable_removal_expiry_and_role_change() {
        let now: jiff::Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        let admin = eve(Role::Admin);
        assert_eq!(
            verdict(Some(&standing(Role::Admin, true, None)), &admin, now),
            None
        );
        assert_eq!(
            verdict(Some(&standing(Role::Admin, false, None)), &admin, now).as_deref(),
            Some("eve is disabled")
        );
        assert_eq!(
            verdict(None, &admin, now).as_deref(),
            Some("eve no longer exists")
        );
        let mut other = standing(Role::Admin, true, None);
        other.id = "u-another-eve".into();
        assert_eq!(
            verdict(Some(&other), &admin, now).as_deref(),
            Some("eve no longer exists"),
            "removed and added again is someone else"
        );
        assert_eq!(
            verdict(Some(&standing(Role::Admin, true, Some(now))), &admin, now).as_deref(),
            Some("eve expired at 2026-12-05T10:00:00Z")
        );
        assert_eq!(
            verdict(Some(&standing(Role::Auditor, true, None)), &admin, now).as_deref(),
            Some("eve is now auditor")
        );
        let later: jiff::Timestamp = "2026-12-06T00:00:00Z".parse().unwrap();
        assert_eq!(
            verdict(
                Some(&standing(Role::User, true, Some(later))),
                &eve(Role::User),
                now
            ),
            None
        );
    }
}
