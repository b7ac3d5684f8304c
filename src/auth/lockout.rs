//! Lockout after repeated failures (DESIGN.md §2 "Lockout semantics"):
//! failures are counted per user and per source address within a window;
//! reaching either limit locks that user or that address for the lockout
//! time.
//!
//! Pure logic over plain, serialisable state: the store keeps one
//! [`FailureState`] per user and one per source address, and the caller
//! passes the time in. What counts as a failure is the caller's business and
//! is spelled out in DESIGN.md: only a failed proof (wrong password, wrong
//! TOTP code, a signature that does not verify) — never the `none` method or
//! a public-key offer without a signature. This module does no I/O and never
//! sees a secret.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Limits and durations. `max_failures_*` of 0 disables that limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutPolicy {
    /// Failed proofs for one user within `window` that lock the user.
    pub max_failures_per_user: u32,
    /// Failed proofs from one source address within `window` that lock the
    /// address. Higher than the per-user limit by default: many people can
    /// share one NAT address, and one mistyping person should not lock out
    /// the office.
    pub max_failures_per_address: u32,
    /// How long failures are remembered: the window starts at the first
    /// failure, and a failure after it ends starts a new window.
    pub window: SignedDuration,
    /// How long a lock lasts.
    pub lockout: SignedDuration,
}

impl Default for LockoutPolicy {
    /// `[auth] max_failures = 5`, `lockout = "15m"` (DESIGN.md §2), with a
    /// window as long as the lockout and 20 failures per address.
    fn default() -> Self {
        LockoutPolicy {
            max_failures_per_user: 5,
            max_failures_per_address: 20,
            window: SignedDuration::from_mins(15),
            lockout: SignedDuration::from_mins(15),
        }
    }
}

/// What a lock applies to; the login log says which one refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockScope {
    User,
    Address,
}

impl LockScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LockScope::User => "user",
            LockScope::Address => "address",
        }
    }
}

impl LockoutPolicy {
    /// The failure limit for a scope.
    pub fn limit(&self, scope: LockScope) -> u32 {
        match scope {
            LockScope::User => self.max_failures_per_user,
            LockScope::Address => self.max_failures_per_address,
        }
    }
}

/// Failure count and lock of one user or one source address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureState {
    /// Failures in the current window.
    pub failures: u32,
    /// When the current window started (the first failure in it).
    pub window_start: Option<Timestamp>,
    /// Locked until then; an instant in the past means not locked.
    pub locked_until: Option<Timestamp>,
}

impl FailureState {
    /// When the active lock ends; `None` when not locked (or the lock has
    /// expired).
    pub fn locked_until(&self, now: Timestamp) -> Option<Timestamp> {
        self.locked_until.filter(|until| *until > now)
    }

    pub fn is_locked(&self, now: Timestamp) -> bool {
        self.locked_until(now).is_some()
    }

    /// Counts one failed proof; returns true when this failure caused a lock.
    ///
    /// Failures while locked are not counted: the caller refuses a locked
    /// login before checking any proof, so none should arrive, and counting
    /// them would let an attacker extend a victim's lock indefinitely.
    pub fn record_failure(&mut self, now: Timestamp, limit: u32, policy: &LockoutPolicy) -> bool {
        if self.is_locked(now) {
            return false;
        }
        // An expired lock is history; forget it so the state reads cleanly.
        self.locked_until = None;
        let window_open = self
            .window_start
            .is_some_and(|start| start <= now && now.duration_since(start) < policy.window);
        if !window_open {
            self.window_start = Some(now);
            self.failures = 0;
        }
        self.failures = self.failures.saturating_add(1);
        if limit == 0 || self.failures < limit {
            return false;
        }
        // A lockout too long for the calendar saturates at the end of time
        // rather than wrapping to the past (which would unlock).
        self.locked_until = Some(now.checked_add(policy.lockout).unwrap_or(Timestamp::MAX));
        self.failures = 0;
        self.window_start = None;
        true
    }

    /// A successful login: the failure count starts again.
    ///
    /// It does not lift an active lock. A correct password must not unlock:
    /// otherwise a locked account would still let an attacker test guesses
    /// (a "success" that unlocks would confirm the password). The caller
    /// refuses locked logins before checking the proof, so a success while
    /// locked only happens when a lock was set concurrently, and then the lock
    /// should stand.
    pub fn record_success(&mut self) {
        self.failures = 0;
        self.window_start = None;
    }
}

/// The first active lock among the user's and the address's, for the login
/// log and the refusal message.
pub fn active_lock(
    user: &FailureState,
    address: &FailureState,
    now: Timestamp,
) -> Option<(LockScope, Timestamp)> {
    user.locked_until(now)
        .map(|until| (LockScope::User, until))
        .or_else(|| {
            address
                .locked_until(now)
                .map(|until| (LockScope::Address, until))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            max_failures_per_user: 3,
            max_failures_per_address: 10,
            window: SignedDuration::from_mins(10),
            lockout: SignedDuration::from_mins(15),
        }
    }

    fn clock() -> ManualClock {
        ManualClock::new("2026-03-02T09:00:00Z".parse().unwrap())
    }

    #[test]
    fn limit_minus_one_failures_do_not_lock_the_limit_does() {
        let (clock, policy) = (clock(), policy());
        let mut state = FailureState::default();
        for _ in 0..2 {
            assert!(!state.record_failure(clock.now(), 3, &policy));
            assert!(!state.is_locked(clock.now()));
            clock.advance(SignedDuration::from_secs(5));
        }
        assert!(state.record_failure(clock.now(), 3, &policy));
        let until = state.locked_until(clock.now()).unwrap();
        assert_eq!(until, clock.now().checked_add(policy.lockout).unwrap());
        assert_eq!(state.failures, 0, "count cleared when the lock is set");
    }

    #[test]
    fn lock_expires_after_the_lockout_time() {
        let (clock, policy) = (clock(), policy());
        let mut state = FailureState::default();
        for _ in 0..3 {
            state.record_failure(clock.now(), 3, &policy);
        }
        clock.advance(SignedDuration::from_mins(15) - SignedDuration::from_secs(1));
        assert!(state.is_locked(clock.now()));
        clock.advance(SignedDuration::from_secs(1));
        assert_eq!(state.locked_until(clock.now()), None);
        // After expiry it takes a full set of failures again.
        assert!(!state.record_failure(clock.now(), 3, &policy));
        assert_eq!(state.locked_until, None);
    }

    #[test]
    fn failures_while_locked_do_not_extend_the_lock() {
        let (clock, policy) = (clock(), policy());
        let mut state = FailureState::default();
        for _ in 0..3 {
            state.record_failure(clock.now(), 3, &policy);
        }
        let until = state.locked_until(clock.now()).unwrap();
        clock.advance(SignedDuration::from_mins(5));
        for _ in 0..10 {
            assert!(!state.record_failure(clock.now(), 3, &policy));
        }
        assert_eq!(state.locked_until(clock.now()), Some(until));
    }

    #[test]
    fn failures_spread_beyond_the_window_never_lock() {
        let (clock, policy) = (clock(), policy());
        let mut state = FailureState::default();
        for _ in 0..20 {
            assert!(!state.record_failure(clock.now(), 3, &policy));
            // Two failures per window at most.
            clock.advance(SignedDuration::from_mins(6));
        }
        assert!(!state.is_locked(clock.now()));
    }

    #[test]
    fn success_resets_the_count_but_not_a_lock() {
        let (clock, policy) = (clock(), policy());
        let mut state = FailureState::default();
        state.record_failure(clock.now(), 3, &policy);
        state.record_failure(clock.now(), 3, &policy);
        state.record_success();
        assert_eq!(state.failures, 0);
        assert!(!state.record_failure(clock.now(), 3, &policy));
        assert!(!state.record_failure(clock.now(), 3, &policy));
        assert!(state.record_failure(clock.now(), 3, &policy));
        state.record_success();
        assert!(state.is_locked(clock.now()), "a success must not unlock");
    }

    #[test]
    fn zero_limit_never_locks() {
        let (clock, policy) = (clock(), policy());
        let mut state = FailureState::default();
        for _ in 0..100 {
            assert!(!state.record_failure(clock.now(), 0, &policy));
        }
    }

    #[test]
    fn user_and_address_are_counted_separately() {
        let (clock, policy) = (clock(), policy());
        let mut address = FailureState::default();
        let address_limit = policy.limit(LockScope::Address);
        let user_limit = policy.limit(LockScope::User);
        // Password spraying from one address: one guess per user, so no user
        // reaches its limit, but the address does on the last guess.
        let mut users = vec![FailureState::default(); address_limit as usize];
        for (i, user) in users.iter_mut().enumerate() {
            assert!(!user.record_failure(clock.now(), user_limit, &policy));
            let locked = address.record_failure(clock.now(), address_limit, &policy);
            assert_eq!(locked, i + 1 == address_limit as usize, "guess {i}");
            clock.advance(SignedDuration::from_secs(10));
        }
        assert!(users.iter().all(|u| !u.is_locked(clock.now())));
        assert_eq!(
            active_lock(&users[0], &address, clock.now()).map(|(scope, _)| scope),
            Some(LockScope::Address)
        );
        // A locked user is reported as the user, even from a clean address.
        let mut alice = FailureState::default();
        for _ in 0..user_limit {
            alice.record_failure(clock.now(), user_limit, &policy);
        }
        let clean = FailureState::default();
        assert_eq!(
            active_lock(&alice, &clean, clock.now()).map(|(scope, _)| scope),
            Some(LockScope::User)
        );
        assert_eq!(active_lock(&clean, &clean, clock.now()), None);
    }

    #[test]
    fn state_serialises_for_the_store() {
        let (clock, policy) = (clock(), policy());
        let mut state = FailureState::default();
        state.record_failure(clock.now(), 3, &policy);
        let json = serde_json::to_string(&state).unwrap();
        let back: FailureState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, state);
    }
}
