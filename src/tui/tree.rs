//! The node tree pane's model: the node paths of the assets a person can
//! see (and their ancestors), in depth-first order, with collapse state.
//! Built from the asset list alone, so a person never learns of a node that
//! holds nothing they may reach.

use std::collections::HashMap;

/// One node of the tree.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) path: String,
    pub(crate) depth: u16,
    /// Index one past this node's subtree (depth-first order).
    pub(crate) end: u32,
    /// Distinct assets filed in this node or below it.
    pub(crate) count: u32,
}

impl Node {
    /// The last path segment, what the tree shows.
    pub(crate) fn label(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// The tree's rows: row 0 is "all assets", then the expanded nodes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node>,
    expanded: Vec<bool>,
    /// Visible rows as node indexes; `None` is the "all assets" row.
    rows: Vec<Option<u32>>,
}

impl Tree {
    /// `asset_nodes` yields each asset's node paths.
    pub(crate) fn build<'a>(asset_nodes: impl Iterator<Item = &'a [String]>) -> Tree {
        let mut index: HashMap<&'a str, u32> = HashMap::new();
        let mut paths: Vec<&'a str> = Vec::new();
        let mut per_asset: Vec<Vec<u32>> = Vec::new();
        for nodes in asset_nodes {
            let mut mine: Vec<u32> = Vec::new();
            for path in nodes {
                // The node itself and every ancestor ("/a/b/c" → "/a/b", "/a").
                let mut p: &str = path.trim_end_matches('/');
                while !p.is_empty() {
                    let next = paths.len() as u32;
                    let id = *index.entry(p).or_insert_with(|| {
                        paths.push(p);
                        next
                    });
                    mine.push(id);
                    p = match p.rfind('/') {
                        Some(i) => p.get(..i).unwrap_or(""),
                        None => "",
                    };
                }
            }
            mine.sort_unstable();
            mine.dedup();
            per_asset.push(mine);
        }
        // Below, every index comes from `paths`/`index` built above, so
        // indexing `paths`, `counts` and `nodes` stays in bounds.
        let mut counts = vec![0u32; paths.len()];
        for mine in &per_asset {
            for &id in mine {
                if let Some(c) = counts.get_mut(id as usize) {
                    *c += 1;
                }
            }
        }
        // Order by segments, so children follow their parent directly
        // ("/a/b" before "/a-b", which plain string order gets wrong).
        let mut order: Vec<u32> = (0..paths.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (paths[a as usize], paths[b as usize]);
            a.split('/').cmp(b.split('/'))
        });
        let mut nodes: Vec<Node> = order
            .iter()
            .map(|&i| {
                let path = paths[i as usize];
                Node {
                    path: path.to_string(),
                    depth: path.matches('/').count().saturating_sub(1) as u16,
                    end: 0,
                    count: counts[i as usize],
                }
            })
            .collect();
        // A subtree ends at the first later node that is not deeper: close
        // the open nodes as a shallower one arrives.
        let mut open: Vec<usize> = Vec::new();
        for i in 0..nodes.len() {
            let depth = nodes[i].depth;
            while let Some(&top) = open.last() {
                if nodes[top].depth < depth {
                    break;
                }
                nodes[top].end = i as u32;
                open.pop();
            }
            open.push(i);
        }
        for top in open {
            nodes[top].end = nodes.len() as u32;
        }
        let expanded = nodes.iter().map(|n| n.depth == 0).collect();
        let mut tree = Tree {
            nodes,
            expanded,
            rows: Vec::new(),
        };
        tree.rebuild_rows();
        tree
    }

    fn rebuild_rows(&mut self) {
        self.rows.clear();
        self.rows.push(None);
        let mut i = 0;
        while let Some(node) = self.nodes.get(i) {
            self.rows.push(Some(i as u32));
            i = if self.expanded.get(i).copied().unwrap_or(false) {
                i + 1
            } else {
                node.end as usize
            };
        }
    }

    pub(crate) fn rows(&self) -> &[Option<u32>] {
        &self.rows
    }

    pub(crate) fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.get(id as usize)
    }

    pub(crate) fn has_children(&self, id: u32) -> bool {
        self.node(id).is_some_and(|n| n.end > id + 1)
    }

    pub(crate) fn is_expanded(&self, id: u32) -> bool {
        self.expanded.get(id as usize).copied().unwrap_or(false)
    }

    /// Expands or collapses node `id`; returns whether anything changed.
    pub(crate) fn set_expanded(&mut self, id: u32, open: bool) -> bool {
        if !self.has_children(id) || self.is_expanded(id) == open {
            return false;
        }
        if let Some(e) = self.expanded.get_mut(id as usize) {
            *e = open;
        }
        self.rebuild_rows();
        true
    }

    /// The nearest ancestor of `id`.
    pub(crate) fn parent(&self, id: u32) -> Option<u32> {
        let depth = self.node(id)?.depth;
        (0..id)
            .rev()
            .find(|&j| self.node(j).is_some_and(|n| n.depth < depth))
    }

    /// The row showing node `id` (`None`: the "all" row), if visible.
    pub(crate) fn row_of(&self, id: Option<u32>) -> Option<usize> {
        self.rows.iter().position(|r| *r == id)
    }
}

/// Whether `path` is `node` or lies below it.
pub(crate) fn under(path: &str, node: &str) -> bool {
    path.strip_prefix(node)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_in_depth_first_order_with_counts() {
        let a = vec!["/DEFAULT/prod/web".to_string()];
        let b = vec!["/DEFAULT/prod".to_string(), "/DEFAULT/prod/web".to_string()];
        let c = vec!["/DEFAULT/prod-eu".to_string()];
        let tree = Tree::build([a.as_slice(), b.as_slice(), c.as_slice()].into_iter());
        let paths: Vec<(&str, u32)> = tree
            .nodes
            .iter()
            .map(|n| (n.path.as_str(), n.count))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("/DEFAULT", 3),
                ("/DEFAULT/prod", 2),
                ("/DEFAULT/prod/web", 2),
                ("/DEFAULT/prod-eu", 1)
            ]
        );
        assert_eq!(tree.nodes[1].end, 3);
        // Only the root level is expanded at first.
        assert_eq!(tree.rows(), &[None, Some(0), Some(1), Some(3)]);
        assert!(under("/DEFAULT/prod/web", "/DEFAULT/prod"));
        assert!(!under("/DEFAULT/prod-eu", "/DEFAULT/prod"));
    }
}
