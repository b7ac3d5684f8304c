//! Id -> position maps of the snapshot being built, and resolving a list of
//! ids through them.

use super::hash::Map;
use crate::model::Id;

/// Id and name lookups shared by the steps of the snapshot build
/// (`index.rs`) and by the command-filter rules (`rule.rs`).
pub(super) struct Lookup {
    pub(super) users: Map<String, u32>,
    pub(super) groups: Map<String, u32>,
    pub(super) nodes: Map<String, u32>,
    pub(super) assets: Map<String, u32>,
}

impl Lookup {
    /// Resolves ids to sorted, deduplicated positions; unknown ids are dropped.
    pub(super) fn resolve(map: &Map<String, u32>, ids: &[Id]) -> Vec<u32> {
        let mut out: Vec<u32> = ids.iter().filter_map(|id| map.get(id).copied()).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}
