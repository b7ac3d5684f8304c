//! `Secret<T>`: a value that must never be printed. Passwords typed at login,
//! decrypted account secrets and TOTP seeds travel in this wrapper so that a
//! stray `{:?}` in a log line, an error message or a panic shows
//! `[redacted]` instead of the value, and so that the memory is wiped when the
//! value is dropped.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// A secret value: redacted in `Debug` and `Display`, zeroised on drop.
///
/// The only way to read it is [`Secret::expose`], which makes every place
/// that touches the plaintext easy to find with grep.
#[derive(Clone)]
pub struct Secret<T: Zeroize>(Zeroizing<T>);

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The plaintext. Do not copy it into anything that outlives the call
    /// that needs it (a `String` made from it is not wiped on drop).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<Vec<u8>> for Secret<Vec<u8>> {
    fn from(value: Vec<u8>) -> Self {
        Secret::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::from("hunter2-correct-horse".to_string());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), "hunter2-correct-horse");
        let copy = secret.clone();
        assert_eq!(copy.expose(), secret.expose());
    }

    #[test]
    fn bytes_are_redacted_too() {
        let secret = Secret::from(vec![0xde_u8, 0xad, 0xbe, 0xef]);
        let shown = format!("{secret:?} {secret}");
        assert_eq!(shown, "[redacted] [redacted]");
    }
}
