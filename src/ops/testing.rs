//! Helpers for the verbs' unit tests: an `Ops` over an in-memory store with
//! a fresh vault and a fixed clock, and callers of each role.

use std::sync::Arc;

use super::{Caller, Ops, OpsSettings};
use crate::audit::Via;
use crate::clock::ManualClock;
use crate::model::Role;
use crate::store::Store;
use crate::store::audit_log::{OperationRow, Query};
use crate::vault::{MasterKey, Vault};

pub(super) async fn ops() -> Ops {
    let store = Store::in_memory().await.expect("in-memory store");
    let clock = Arc::new(ManualClock::new(
        "2026-11-23T09:00:00Z".parse().expect("a timestamp"),
    ));
    Ops::new(
        store,
        Some(Vault::new(MasterKey::generate())),
        clock,
        OpsSettings::default(),
    )
}

pub(super) fn admin() -> Caller {
    Caller {
        name: "root".into(),
        role: Role::Admin,
        via: Via::Cli,
    }
}

pub(super) fn auditor() -> Caller {
    Caller {
        name: "audrey".into(),
        role: Role::Auditor,
        via: Via::Console,
    }
}

/// The operation-log rows with this verb, newest first.
pub(super) async fn operations(ops: &Ops, verb: &str) -> Vec<OperationRow> {
    ops.audit_operations(&admin(), &Query::default())
        .await
        .expect("operation log")
        .into_iter()
        .filter(|r| r.verb == verb)
        .collect()
}

pub(super) async fn change_counter(ops: &Ops) -> i64 {
    let mut conn = ops.store.conn().await.expect("conn");
    crate::store::change_counter(&mut conn)
        .await
        .expect("change counter")
}
