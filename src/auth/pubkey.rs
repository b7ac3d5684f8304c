//! OpenSSH public keys as people register them: one `authorized_keys` /
//! `.pub` line, `ALGO BASE64 [comment]`, parsed, checked and fingerprinted
//! exactly as `ssh-keygen -lf` prints it, so the fingerprint an admin sees in
//! `rampart user show` is the one the person sees on their laptop.
//!
//! Owns the list of accepted key types and the minimum RSA size. Refuses DSA
//! (OpenSSH itself disabled it), certificates (not supported yet) and
//! `authorized_keys` options (rampart has its own restrictions; an option
//! that silently did nothing would mislead). Errors are one line naming what
//! is wrong; they never echo the line (a pasted private key or password must
//! not end up in a log).

use russh::keys::{HashAlg, PublicKey};

/// Key types accepted, as they appear at the start of a line.
pub const ACCEPTED_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// Smallest RSA modulus accepted (NIST and OpenSSH guidance).
pub const MIN_RSA_BITS: u32 = 2048;
/// Largest RSA modulus accepted; OpenSSH refuses bigger ones too.
pub const MAX_RSA_BITS: u32 = 16384;

/// Longest line accepted: a 16384-bit RSA key is about 2.8 KB of base64.
const MAX_LINE_LEN: usize = 16 * 1024;

const EXPECTED_FORM: &str = "expected 'ssh-ed25519 AAAA... comment'";

/// A registered public key, ready for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedKey {
    /// The key type, e.g. `ssh-ed25519`.
    pub algorithm: String,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// The comment after the key (may be empty).
    pub comment: String,
    /// `ALGO BASE64`, re-encoded from the parsed key, without the comment.
    pub openssh: String,
    /// The key itself, for comparing with what a client offers.
    pub key: PublicKey,
}

/// Why a line is not an acceptable public key. None of these repeat the
/// line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("empty public key: {EXPECTED_FORM}")]
    Empty,
    #[error(
        "this is a private key: give the public key instead (the .pub file, or `ssh-keygen -y -f KEYFILE`)"
    )]
    PrivateKey,
    #[error("authorized_keys options are not supported: remove the options before the key type")]
    Options,
    #[error(
        "DSA (ssh-dss) keys are not accepted: create an ed25519 key with `ssh-keygen -t ed25519`"
    )]
    Dsa,
    #[error("SSH certificates are not supported: give the plain public key")]
    Certificate,
    #[error("unsupported key type{}: use one of {}", .algorithm.as_deref().map(|a| format!(" '{a}'")).unwrap_or_default(), ACCEPTED_ALGORITHMS.join(", "))]
    UnsupportedAlgorithm { algorithm: Option<String> },
    #[error("not an OpenSSH public key line: {EXPECTED_FORM}")]
    NotAKeyLine,
    #[error(
        "the {algorithm} key data is damaged or truncated (check that the whole line was copied)"
    )]
    BadKeyData { algorithm: String },
    #[error("the key data is a {actual} key but the line says {declared}")]
    AlgorithmMismatch { declared: String, actual: String },
    #[error(
        "RSA key of {bits} bits is too short: use at least {MIN_RSA_BITS} bits, or better an ed25519 key"
    )]
    RsaTooShort { bits: u32 },
    #[error("RSA key of {bits} bits is larger than the {MAX_RSA_BITS}-bit maximum")]
    RsaTooLong { bits: u32 },
    #[error("public key line too long (over {MAX_LINE_LEN} bytes)")]
    TooLong,
}

/// Parses one `authorized_keys` / `.pub` line: `ALGO BASE64 [comment]`.
pub fn parse_public_key_line(line: &str) -> Result<ParsedKey, KeyError> {
    if line.len() > MAX_LINE_LEN {
        return Err(KeyError::TooLong);
    }
    let line = line.trim();
    if line.is_empty() {
        return Err(KeyError::Empty);
    }
    if (line.starts_with("-----BEGIN") && line.contains("PRIVATE KEY"))
        || line.starts_with("PuTTY-User-Key-File")
    {
        return Err(KeyError::PrivateKey);
    }
    let (first, rest) = split_token(line);
    if !ACCEPTED_ALGORITHMS.contains(&first) {
        return Err(classify_unknown_start(first, rest));
    }
    let (blob, comment) = split_token(rest);
    if blob.is_empty() {
        return Err(KeyError::NotAKeyLine);
    }
    let key = PublicKey::from_openssh(&format!("{first} {blob}")).map_err(|_| {
        // ssh-key reports a type mismatch as an unknown algorithm; find out
        // which it was so the person gets the useful message.
        match decoded_algorithm(blob) {
            Some(actual) if actual != first => KeyError::AlgorithmMismatch {
                declared: first.to_string(),
                actual,
            },
            _ => KeyError::BadKeyData {
                algorithm: first.to_string(),
            },
        }
    })?;
    let algorithm = key.algorithm().as_str().to_string();
    if algorithm != first {
        return Err(KeyError::AlgorithmMismatch {
            declared: first.to_string(),
            actual: algorithm,
        });
    }
    if let Some(rsa) = key.key_data().rsa() {
        let bits = rsa
            .n()
            .as_positive_bytes()
            .map(significant_bits)
            .unwrap_or(0);
        if bits < MIN_RSA_BITS {
            return Err(KeyError::RsaTooShort { bits });
        }
        if bits > MAX_RSA_BITS {
            return Err(KeyError::RsaTooLong { bits });
        }
    }
    let mut bare = key.clone();
    bare.set_comment("");
    let openssh = bare.to_openssh().map_err(|_| KeyError::BadKeyData {
        algorithm: algorithm.clone(),
    })?;
    // The comment is shown later in tables and in other people's terminals:
    // control characters (escape sequences) must not survive into it.
    let comment: String = comment.chars().filter(|c| !c.is_control()).collect();
    let mut key = key;
    key.set_comment(comment.as_str());
    Ok(ParsedKey {
        fingerprint: fingerprint_of(&key),
        algorithm,
        comment,
        openssh,
        key,
    })
}

/// The SHA-256 fingerprint, `SHA256:` and unpadded base64, as `ssh-keygen
/// -lf` and OpenSSH's log lines print it.
pub fn fingerprint_of(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Splits off the first whitespace-separated token; the rest is trimmed.
fn split_token(text: &str) -> (&str, &str) {
    match text.split_once(char::is_whitespace) {
        Some((token, rest)) => (token, rest.trim()),
        None => (text, ""),
    }
}

/// Explains a line whose first token is not an accepted key type.
fn classify_unknown_start(first: &str, rest: &str) -> KeyError {
    if first == "ssh-dss" {
        return KeyError::Dsa;
    }
    if first.contains("-cert-v01@openssh.com") {
        return KeyError::Certificate;
    }
    // `no-pty,from="10.0.0.0/8" ssh-ed25519 AAAA...`: a known key type
    // further on means the start is options.
    if rest
        .split_whitespace()
        .any(|token| ACCEPTED_ALGORITHMS.contains(&token) || token == "ssh-dss")
    {
        return KeyError::Options;
    }
    if looks_like_algorithm_name(first) {
        return KeyError::UnsupportedAlgorithm {
            algorithm: Some(first.to_string()),
        };
    }
    KeyError::NotAKeyLine
}

/// Whether a token is shaped like an SSH algorithm name (`ssh-foo`,
/// `foo@example.com`), and so is safe and useful to repeat in an error.
fn looks_like_algorithm_name(token: &str) -> bool {
    token.len() <= 64
        && token.contains('-')
        && token.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'@' | b'.')
        })
        && (token.starts_with("ssh-")
            || token.starts_with("ecdsa-")
            || token.starts_with("sk-")
            || token.starts_with("rsa-")
            || token.contains('@'))
}

/// The key type written inside the base64 blob (its first SSH string), if
/// the blob decodes that far.
fn decoded_algorithm(blob: &str) -> Option<String> {
    let bytes = decode_base64(blob)?;
    let len_bytes: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    let name = bytes.get(4..4usize.checked_add(len)?)?;
    let name = std::str::from_utf8(name).ok()?;
    looks_like_algorithm_name(name).then(|| name.to_string())
}

/// Minimal standard base64 decoder (with or without padding), used only to
/// name the key type in an error message.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for b in text.bytes().take_while(|b| *b != b'=') {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Truncation to the low byte is the point: `acc` holds at most
            // 14 significant bits here.
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Bit length of a big-endian positive integer.
fn significant_bits(bytes: &[u8]) -> u32 {
    let Some(start) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    let bytes = bytes.get(start..).unwrap_or_default();
    let Some(first) = bytes.first() else {
        return 0;
    };
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX / 8);
    len.saturating_mul(8).saturating_sub(first.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{Algorithm, EcdsaCurve, PrivateKey};
    use std::path::Path;
    use std::process::Command;

    /// ssh-key 0.7 wants a rand_core 0.10 RNG; rampart uses rand 0.9. This
    /// adapter feeds it from the OS through rand 0.9 (tests only).
    struct TestRng;

    impl russh::keys::ssh_key::rand_core::TryRng for TestRng {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(rand::random())
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(rand::random())
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            rand::fill(dst);
            Ok(())
        }
    }

    impl russh::keys::ssh_key::rand_core::TryCryptoRng for TestRng {}

    fn in_process_key(algorithm: Algorithm) -> PublicKey {
        PrivateKey::random(&mut TestRng, algorithm)
            .unwrap()
            .public_key()
            .clone()
    }

    const ED25519_LINE: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti foo@bar.com";

    #[test]
    fn parses_a_known_line() {
        let parsed = parse_public_key_line(&format!("  {ED25519_LINE}  \n")).unwrap();
        assert_eq!(parsed.algorithm, "ssh-ed25519");
        assert_eq!(parsed.comment, "foo@bar.com");
        assert_eq!(
            parsed.openssh,
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti"
        );
        assert!(parsed.fingerprint.starts_with("SHA256:"));
        assert_eq!(parsed.fingerprint.len(), 7 + 43);
        // Comments keep their inner spaces; no comment is fine.
        let spaced = parse_public_key_line(&format!("{} my laptop key", parsed.openssh)).unwrap();
        assert_eq!(spaced.comment, "my laptop key");
        assert_eq!(parse_public_key_line(&parsed.openssh).unwrap().comment, "");
        let escaped = format!("{} evil\x1b]0;owned\x07 key", parsed.openssh);
        assert_eq!(
            parse_public_key_line(&escaped).unwrap().comment,
            "evil]0;owned key"
        );
    }

    #[test]
    fn in_process_keys_of_every_algorithm_round_trip() {
        let algorithms = [
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
            Algorithm::Rsa { hash: None },
        ];
        for algorithm in algorithms {
            let key = in_process_key(algorithm.clone());
            let line = format!("{} test@rampart", key.to_openssh().unwrap());
            let parsed = parse_public_key_line(&line).unwrap();
            assert_eq!(parsed.algorithm, algorithm.as_str());
            assert_eq!(parsed.fingerprint, fingerprint_of(&key));
            assert_eq!(parsed.key.key_data(), key.key_data());
            assert_eq!(parsed.comment, "test@rampart");
            assert!(line.starts_with(&parsed.openssh));
        }
    }

    /// Generates keys with the real `ssh-keygen` and compares fingerprints
    /// with what it prints. Skips (with a note) where OpenSSH is missing,
    /// unless RAMPART_REQUIRE_INTEROP=1.
    #[test]
    fn fingerprints_match_ssh_keygen() {
        if Command::new("ssh-keygen").arg("-?").output().is_err() {
            assert!(
                std::env::var("RAMPART_REQUIRE_INTEROP").as_deref() != Ok("1"),
                "ssh-keygen is required (RAMPART_REQUIRE_INTEROP=1)"
            );
            eprintln!("skipped: ssh-keygen not found in PATH");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for (kind, bits) in [
            ("ed25519", None),
            ("ecdsa", Some("256")),
            ("ecdsa", Some("384")),
            ("ecdsa", Some("521")),
            ("rsa", Some("2048")),
        ] {
            let path = dir.path().join(format!("{kind}{}", bits.unwrap_or("")));
            let mut cmd = Command::new("ssh-keygen");
            cmd.args(["-q", "-t", kind, "-N", "", "-C", "alice@laptop", "-f"])
                .arg(&path);
            if let Some(bits) = bits {
                cmd.args(["-b", bits]);
            }
            assert!(cmd.status().unwrap().success(), "ssh-keygen -t {kind}");
            let pub_path = path.with_extension("pub");
            let line = std::fs::read_to_string(&pub_path).unwrap();
            let parsed = parse_public_key_line(&line).unwrap();
            assert_eq!(parsed.fingerprint, keygen_fingerprint(&pub_path), "{kind}");
            assert_eq!(parsed.comment, "alice@laptop");
            // The private key file is refused with a pointer to the .pub.
            let private = std::fs::read_to_string(&path).unwrap();
            assert_eq!(parse_public_key_line(&private), Err(KeyError::PrivateKey));
        }
    }

    fn keygen_fingerprint(path: &Path) -> String {
        let out = Command::new("ssh-keygen")
            .args(["-E", "sha256", "-lf"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success());
        // "256 SHA256:xxxx comment (ED25519)"
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    }

    #[test]
    fn short_rsa_keys_are_refused() {
        if Command::new("ssh-keygen").arg("-?").output().is_err() {
            eprintln!("skipped: ssh-keygen not found in PATH");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rsa1024");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", "1024", "-N", "", "-f"])
            .arg(&path)
            .status()
            .unwrap();
        if !status.success() {
            // Newer OpenSSH refuses to make such keys at all.
            eprintln!("skipped: this ssh-keygen will not create 1024-bit RSA keys");
            return;
        }
        let line = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        assert_eq!(
            parse_public_key_line(&line),
            Err(KeyError::RsaTooShort { bits: 1024 })
        );
    }

    #[test]
    fn refusals_name_the_problem_without_echoing() {
        let blob = ED25519_LINE.split_whitespace().nth(1).unwrap();
        let cases: Vec<(String, KeyError)> = vec![
            ("".into(), KeyError::Empty),
            ("   ".into(), KeyError::Empty),
            ("hunter2".into(), KeyError::NotAKeyLine),
            ("this is not a key".into(), KeyError::NotAKeyLine),
            (
                format!("no-pty,from=\"10.0.0.0/8\" {ED25519_LINE}"),
                KeyError::Options,
            ),
            (format!("restrict {ED25519_LINE}"), KeyError::Options),
            (format!("ssh-dss {blob}"), KeyError::Dsa),
            (
                format!("ssh-ed25519-cert-v01@openssh.com {blob}"),
                KeyError::Certificate,
            ),
            (
                format!("ssh-foo {blob}"),
                KeyError::UnsupportedAlgorithm {
                    algorithm: Some("ssh-foo".into()),
                },
            ),
            (
                format!("ssh-rsa {blob}"),
                KeyError::AlgorithmMismatch {
                    declared: "ssh-rsa".into(),
                    actual: "ssh-ed25519".into(),
                },
            ),
            ("ssh-ed25519".into(), KeyError::NotAKeyLine),
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98".into(),
                KeyError::BadKeyData {
                    algorithm: "ssh-ed25519".into(),
                },
            ),
            (
                "ssh-ed25519 !!!!".into(),
                KeyError::BadKeyData {
                    algorithm: "ssh-ed25519".into(),
                },
            ),
            ("x".repeat(MAX_LINE_LEN + 1), KeyError::TooLong),
        ];
        for (line, expected) in cases {
            let err = parse_public_key_line(&line).unwrap_err();
            assert_eq!(err, expected, "{line:?}");
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(
                !text.contains("hunter2") && !text.contains(&blob[..20]),
                "{text}"
            );
        }
        let options = KeyError::Options.to_string();
        assert!(options.contains("remove the options before the key type"));
        assert!(
            KeyError::NotAKeyLine
                .to_string()
                .contains("ssh-ed25519 AAAA... comment")
        );
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(significant_bits(&[]), 0);
        assert_eq!(significant_bits(&[0, 0]), 0);
        assert_eq!(significant_bits(&[1]), 1);
        assert_eq!(significant_bits(&[0, 0x80, 0]), 16);
        assert_eq!(significant_bits(&[0x7f, 0xff]), 15);
    }
}
