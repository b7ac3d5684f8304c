//! The virtual tree of `sftp bastion`: `/` lists assets, `/ASSET/` lists
//! accounts, `/ASSET/ACCOUNT/REST` is `/REST` on that target.
//!
//! Paths are resolved lexically, on the bastion, before anything reaches a
//! target: `.` and `..` are applied here (`..` at `/` stays at `/`), so a
//! path sent to a target is always absolute and free of `..`, and no
//! spelling can name another asset's or account's files through this one.
//! A target's own symlinks resolve on that target only.

use bytes::{BufMut, Bytes, BytesMut};

/// Where a client path points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `/`: the asset list.
    Root,
    /// `/ASSET`: the account list.
    Asset(String),
    /// `/ASSET/ACCOUNT/...`: `path` on the target, always absolute.
    Mount {
        asset: String,
        account: String,
        path: Bytes,
    },
}

/// Why a path cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// An asset or account component that no name can have (not UTF-8,
    /// control characters): it exists nowhere.
    #[error("no such file")]
    NoSuchName,
}

/// Resolves `path` (absolute, or relative to `/`) into a place.
pub fn locate(path: &[u8]) -> Result<Place, PathError> {
    let parts = normalize(path);
    let name = |b: &[u8]| -> Result<String, PathError> {
        match std::str::from_utf8(b) {
            Ok(s) if !s.chars().any(char::is_control) => Ok(s.to_string()),
            _ => Err(PathError::NoSuchName),
        }
    };
    match parts.as_slice() {
        [] => Ok(Place::Root),
        [asset] => Ok(Place::Asset(name(asset)?)),
        [asset, account, rest @ ..] => {
            let mut path = BytesMut::with_capacity(path.len() + 1);
            if rest.is_empty() {
                path.put_u8(b'/');
            }
            for part in rest {
                path.put_u8(b'/');
                path.extend_from_slice(part);
            }
            Ok(Place::Mount {
                asset: name(asset)?,
                account: name(account)?,
                path: path.freeze(),
            })
        }
    }
}

/// The components of `path` after applying `.` and `..` lexically.
fn normalize(path: &[u8]) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts
}

/// The client-side spelling of `path` on a target: `/ASSET/ACCOUNT/path`.
/// A relative `path` (which targets do not return for REALPATH) is taken
/// from the target's root.
pub fn virtual_path(asset: &str, account: &str, path: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(asset.len() + account.len() + path.len() + 3);
    out.put_u8(b'/');
    out.extend_from_slice(asset.as_bytes());
    out.put_u8(b'/');
    out.extend_from_slice(account.as_bytes());
    let parts = normalize(path);
    for part in parts {
        out.put_u8(b'/');
        out.extend_from_slice(part);
    }
    out.freeze()
}

/// The text form of a path for messages and the transfer log.
pub fn shown(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(asset: &str, account: &str, path: &str) -> Place {
        Place::Mount {
            asset: asset.into(),
            account: account.into(),
            path: Bytes::copy_from_slice(path.as_bytes()),
        }
    }

    #[test]
    fn paths_resolve_to_places() {
        let cases: &[(&str, Place)] = &[
            ("/", Place::Root),
            ("", Place::Root),
            (".", Place::Root),
            ("/..", Place::Root),
            ("/web1", Place::Asset("web1".into())),
            ("web1/", Place::Asset("web1".into())),
            ("/web1/root", mount("web1", "root", "/")),
            ("/web1/root/", mount("web1", "root", "/")),
            ("/web1/root/etc/hosts", mount("web1", "root", "/etc/hosts")),
            (
                "//web1///root//etc/./hosts",
                mount("web1", "root", "/etc/hosts"),
            ),
            ("/web1/root/tmp/../etc", mount("web1", "root", "/etc")),
        ];
        for (path, place) in cases {
            assert_eq!(&locate(path.as_bytes()).unwrap(), place, "{path}");
        }
    }

    #[test]
    fn dot_dot_never_leaves_a_mount_for_another() {
        // `..` is applied on the bastion: what reaches a target never climbs,
        // and climbing out of a mount lands in the virtual tree, where the
        // other asset is looked up (and checked) like any other.
        assert_eq!(
            locate(b"/web1/root/../../db1").unwrap(),
            Place::Asset("db1".into())
        );
        assert_eq!(
            locate(b"/web1/root/../../db1/root/etc").unwrap(),
            mount("db1", "root", "/etc")
        );
        assert_eq!(
            locate(b"/web1/root/../../../../../etc/passwd").unwrap(),
            mount("etc", "passwd", "/")
        );
        for path in ["/web1/root/a/../../root/x", "/web1/root/../root/x"] {
            assert_eq!(
                locate(path.as_bytes()).unwrap(),
                mount("web1", "root", "/x")
            );
        }
        let Place::Mount { path, .. } =
            locate(b"/web1/root/a/b/../../../../..").unwrap_or(Place::Root)
        else {
            return;
        };
        assert!(!path.windows(2).any(|w| w == b".."));
    }

    #[test]
    fn names_that_cannot_exist_are_refused() {
        assert_eq!(locate(b"/we\x01b1"), Err(PathError::NoSuchName));
        assert_eq!(locate(b"/web1/\xff/x"), Err(PathError::NoSuchName));
        // Beyond the account, bytes are the target's business.
        assert!(locate(b"/web1/root/\xff").is_ok());
    }

    #[test]
    fn target_paths_map_back() {
        assert_eq!(&virtual_path("web1", "root", b"/")[..], b"/web1/root");
        assert_eq!(
            &virtual_path("web1", "root", b"/home/x")[..],
            b"/web1/root/home/x"
        );
        assert_eq!(
            &virtual_path("web1", "root", b"home")[..],
            b"/web1/root/home"
        );
    }
}
