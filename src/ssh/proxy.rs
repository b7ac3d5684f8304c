//! The PROXY protocol (HAProxy's, versions 1 and 2) in front of the SSH
//! listener.
//!
//! Behind a TCP load balancer every connection comes from the balancer.
//! The person's own address decides login ACLs, lockouts and the
//! per-source cap, and it is what session and audit rows record, so a
//! balancer that knows it sends it first, in a PROXY header.
//!
//! Only connections from `ssh.proxy_protocol_from` are read for a header,
//! and every one of them must start with one: a balancer misconfigured to
//! send none is refused, not taken for the person. A header from any other
//! address is never read: it reaches the SSH version exchange, which
//! refuses it, so nobody can claim an address they do not have.
//!
//! The reader takes exactly the header's bytes, one at a time for a
//! version 1 line (at most 107 bytes, from a trusted balancer), so the
//! SSH stream after it is untouched. `LOCAL` (version 2) and `UNKNOWN`
//! (version 1), which a balancer sends for its own health checks, keep
//! the balancer's address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12 bytes a version 2 header starts with.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 line, CRLF included (the specification's limit).
const V1_MAX: usize = 107;
/// Address and TLV bytes of a version 2 header, at most: the addresses
/// take 216 (UNIX), and a balancer's TLVs (SSL details, unique IDs) stay
/// far below this.
const V2_MAX: usize = 4096;

/// A header that is not valid: one line for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadHeader(String);

fn bad(what: impl Into<String>) -> BadHeader {
    BadHeader(what.into())
}

/// Reads a PROXY header off the start of `stream`: the person's address,
/// or `None` when the balancer speaks for itself (`LOCAL`, `UNKNOWN`).
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, BadHeader> {
    let io = |e: std::io::Error| bad(format!("the connection ended inside the header ({e})"));
    let mut start = [0u8; 5];
    stream.read_exact(&mut start).await.map_err(io)?;
    if &start == b"PROXY" {
        let mut line = start.to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err(bad(format!("a PROXY line longer than {V1_MAX} bytes")));
            }
            line.push(stream.read_u8().await.map_err(io)?);
        }
        return parse_v1(&line);
    }
    if start != V2_SIGNATURE[..5] {
        return Err(bad(
            "the connection does not start with a PROXY header (version 1 or 2)",
        ));
    }
    let mut fixed = [0u8; 16];
    fixed[..5].copy_from_slice(&start);
    stream.read_exact(&mut fixed[5..]).await.map_err(io)?;
    let len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if len > V2_MAX {
        return Err(bad(format!(
            "a PROXY version 2 header of {len} bytes (at most {V2_MAX})"
        )));
    }
    let mut rest = vec![0u8; len];
    stream.read_exact(&mut rest).await.map_err(io)?;
    parse_v2(&fixed, &rest)
}

/// `PROXY TCP4 SRC DST SPORT DPORT\r\n` (or `TCP6`, or `UNKNOWN ...`).
fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, BadHeader> {
    let text = std::str::from_utf8(line)
        .ok()
        .and_then(|t| t.strip_suffix("\r\n"))
        .ok_or_else(|| bad("a PROXY line that is not ASCII"))?;
    let fields: Vec<&str> = text.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        [
            "PROXY",
            family @ ("TCP4" | "TCP6"),
            source,
            _destination,
            port,
            _dport,
        ] => {
            let ip = match *family {
                "TCP4" => source.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
                _ => source.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            }
            .ok_or_else(|| bad(format!("a PROXY {family} line with source {source:?}")))?;
            // Ports are decimal without a sign or leading zeros.
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| p.to_string() == *port)
                .ok_or_else(|| bad(format!("a PROXY line with source port {port:?}")))?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(bad(format!(
            "a PROXY line that is not `PROXY TCP4|TCP6 SRC DST SPORT DPORT`: {:?}",
            text.chars().take(V1_MAX).collect::<String>()
        ))),
    }
}

/// The 16 fixed bytes of a version 2 header and what follows them.
fn parse_v2(fixed: &[u8; 16], rest: &[u8]) -> Result<Option<SocketAddr>, BadHeader> {
    if fixed[..12] != V2_SIGNATURE {
        return Err(bad("a PROXY version 2 signature that is cut short"));
    }
    let (version, command) = (fixed[12] >> 4, fixed[12] & 0x0f);
    if version != 2 {
        return Err(bad(format!("a PROXY header of version {version}")));
    }
    match command {
        0 => return Ok(None),
        1 => {}
        other => return Err(bad(format!("a PROXY version 2 command {other}"))),
    }
    let (family, transport) = (fixed[13] >> 4, fixed[13] & 0x0f);
    if transport != 1 {
        // Not a stream: nothing a TCP balancer forwards to SSH.
        return Ok(None);
    }
    let short = || bad("a PROXY version 2 header shorter than its addresses");
    match family {
        1 => {
            let a: [u8; 12] = rest
                .get(..12)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(short)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Ok(Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[8], a[9]]),
            )))
        }
        2 => {
            let a: [u8; 36] = rest
                .get(..36)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(short)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            Ok(Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[32], a[33]]),
            )))
        }
        // Unspecified or UNIX: the balancer's own address.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(bytes: &[u8]) -> (Result<Option<SocketAddr>, BadHeader>, Vec<u8>) {
        let mut cursor = std::io::Cursor::new(bytes.to_vec());
        let got = read_header(&mut cursor).await;
        let mut left = Vec::new();
        let _ = cursor.read_to_end(&mut left).await;
        (got, left)
    }

    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&u16::try_from(addresses.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(addresses);
        out
    }

    #[tokio::test]
    async fn version_1_lines_give_the_source_and_leave_the_ssh_stream() {
        let (got, left) = read(b"PROXY TCP4 203.0.113.7 10.0.0.1 40001 22\r\nSSH-2.0-x\r\n").await;
        assert_eq!(
            got,
            Ok(Some(
                "203.0.113.7:40001"
                    .parse()
                    .unwrap_or_else(|_| unreachable!())
            ))
        );
        assert_eq!(left, b"SSH-2.0-x\r\n");
        let (got, _) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 40001 22\r\n").await;
        assert_eq!(
            got,
            Ok(Some(
                "[2001:db8::7]:40001"
                    .parse()
                    .unwrap_or_else(|_| unreachable!())
            ))
        );
        let (got, left) = read(b"PROXY UNKNOWN\r\nSSH").await;
        assert_eq!((got, left), (Ok(None), b"SSH".to_vec()));
    }

    #[tokio::test]
    async fn version_2_headers_give_the_source_and_skip_their_tlvs() {
        let mut inet = vec![203, 0, 113, 7, 10, 0, 0, 1, 0x9c, 0x41, 0, 22];
        inet.extend_from_slice(&[0x04, 0, 3, 1, 2, 3]); // a TLV
        let mut bytes = v2(1, 0x11, &inet);
        bytes.extend_from_slice(b"SSH-2.0-x");
        let (got, left) = read(&bytes).await;
        assert_eq!(
            got,
            Ok(Some(
                "203.0.113.7:40001"
                    .parse()
                    .unwrap_or_else(|_| unreachable!())
            ))
        );
        assert_eq!(left, b"SSH-2.0-x");
        let mut inet6 = vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        inet6.extend_from_slice(&[0; 16]);
        inet6.extend_from_slice(&[0x9c, 0x41, 0, 22]);
        let (got, _) = read(&v2(1, 0x21, &inet6)).await;
        assert_eq!(
            got,
            Ok(Some(
                "[2001:db8::7]:40001"
                    .parse()
                    .unwrap_or_else(|_| unreachable!())
            ))
        );
        // LOCAL: a health check of the balancer's.
        let (got, left) = read(&v2(0, 0x00, &[])).await;
        assert_eq!((got, left), (Ok(None), Vec::new()));
    }

    #[tokio::test]
    async fn what_is_not_a_header_is_refused_with_a_reason() {
        for (bytes, says) in [
            (
                b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
                "does not start with a PROXY header",
            ),
            (
                b"PROXY TCP4 203.0.113.7 10.0.0.1 40001\r\n".to_vec(),
                "is not `PROXY",
            ),
            (
                b"PROXY TCP4 2001:db8::7 10.0.0.1 40001 22\r\n".to_vec(),
                "with source",
            ),
            (
                b"PROXY TCP4 203.0.113.7 10.0.0.1 040001 22\r\n".to_vec(),
                "source port",
            ),
            (
                b"PROXY TCP4 203.0.113.7 10.0.0.1 65536 22\r\n".to_vec(),
                "source port",
            ),
            (
                [b"PROXY ".as_slice(), &[b'x'; 200]].concat(),
                "longer than 107",
            ),
            (
                b"PROXY TCP4 203.0.113.7".to_vec(),
                "ended inside the header",
            ),
            (v2(1, 0x11, &[203, 0, 113]), "shorter than its addresses"),
            (v2(5, 0x11, &[0; 12]), "command 5"),
            (
                {
                    let mut b = v2(1, 0x11, &[0; 12]);
                    b[12] = 0x11;
                    b
                },
                "version 1",
            ),
        ] {
            let (got, _) = read(&bytes).await;
            let err = got.expect_err("refused");
            assert!(err.to_string().contains(says), "{err} (wanted {says:?})");
        }
        let mut huge = v2(1, 0x11, &[]);
        huge[14..16].copy_from_slice(&5000u16.to_be_bytes());
        let (got, _) = read(&huge).await;
        assert!(got.is_err_and(|e| e.to_string().contains("5000 bytes")));
    }
}
