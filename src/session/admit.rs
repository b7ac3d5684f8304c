//! Whether a person may open a session, whatever its protocol: the grant
//! for every action the session needs, and a place under the per-person
//! cap (`ssh.max_sessions_per_user`, which counts every protocol's
//! sessions alike).
//!
//! The answers are data; each protocol words them for its own client (an
//! SSH line on standard error, an RDP error, a database error packet).

use jiff::Timestamp;

use crate::model::{Action, Identity};
use crate::policy::{Grant, Snapshot};

/// Why a person may not open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No such asset, or not the person's: one answer for both, so nobody
    /// learns which assets exist by asking.
    NoAccess,
    /// The asset is the person's, but not this action on it (worth an
    /// audit row: they were refused something they can see).
    NotPermitted(Action),
}

/// The grant for `account` on `asset` over `protocol` that allows every
/// one of `actions` (the first decides which permission grants it), or why
/// there is none.
pub fn authorize(
    policy: &Snapshot,
    who: &Identity,
    asset: &str,
    account: &str,
    protocol: &str,
    actions: &[Action],
    now: Timestamp,
) -> Result<Grant, Denied> {
    let first = actions.first().copied().unwrap_or(Action::Connect);
    let Some(grant) = policy.authorize(who, asset, account, protocol, first, now) else {
        let visible = policy
            .authorize(who, asset, account, protocol, Action::Connect, now)
            .is_some()
            || policy.visible_asset(who, asset, now).is_some();
        return Err(if visible {
            Denied::NotPermitted(first)
        } else {
            Denied::NoAccess
        });
    };
    match actions.iter().find(|a| !grant.allows(**a)) {
        Some(missing) => Err(Denied::NotPermitted(*missing)),
        None => Ok(grant),
    }
}

/// Counts the sessions each person has open, so one person cannot make
/// the bastion record (and connect) without bound.
#[derive(Debug, Default)]
pub struct UserSessions(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// One open session in its person's count, given back on drop.
#[derive(Debug)]
pub struct UserSlot<'a> {
    of: &'a UserSessions,
    user_id: String,
}

impl UserSessions {
    /// A slot for one more session of `user_id`, unless they have `max`.
    pub fn take(&self, user_id: &str, max: u32) -> Option<UserSlot<'_>> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(user_id.to_string()).or_default();
        if *n >= max as usize {
            return None;
        }
        *n += 1;
        Some(UserSlot {
            of: self,
            user_id: user_id.to_string(),
        })
    }
}

impl Drop for UserSlot<'_> {
    fn drop(&mut self) {
        let mut counts = self.of.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_gets_at_most_max_slots_and_each_comes_back_on_drop() {
        let sessions = UserSessions::default();
        let first = sessions.take("u1", 2).expect("one");
        let second = sessions.take("u1", 2).expect("two");
        assert!(sessions.take("u1", 2).is_none(), "a third is refused");
        assert!(sessions.take("u2", 2).is_some(), "others are not counted");
        drop(first);
        let third = sessions.take("u1", 2).expect("a slot came back");
        drop((second, third));
        assert!(sessions.0.lock().unwrap().is_empty());
    }
}
