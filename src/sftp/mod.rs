//! The SFTP protocol pieces the bastion needs to relay SFTP with policy in
//! the middle: the version 3 wire format ([`wire`]) and the virtual tree of
//! `sftp bastion` ([`tree`]). The relay itself, which needs the SSH side, is
//! `ssh::sftp`; the byte accounting of transfers is [`crate::transfer`].

pub mod tree;
pub mod wire;
