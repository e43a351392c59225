//! Interop harness between Rust SDS participants ([`sds_core::ReliabilityManager`]) and
//! participants of the TypeScript implementation, `@waku/sds` 0.0.8 from npm.
//!
//! - [`install`] installs the pinned npm package into `js/node_modules` on first use (once
//!   per process, serialized across processes by a file lock) and fails loudly when Node.js
//!   or npm is missing or the install fails.
//! - [`JsNetwork`] spawns `node js/driver.mjs`, which runs any number of `@waku/sds`
//!   `MessageChannel` participants, and talks to it in JSON lines. Its `Date.now()` is the
//!   virtual time the Rust side sets, so mixed runs are deterministic.
//! - [`RustPeer`] is a Rust participant on a shared [`sds_core::ManualClock`].
//! - [`network`] simulates a lossy broadcast network (loss, delays, periodic work of every
//!   participant, a virtual clock that jumps to the next due thing) over both kinds.

mod driver;
pub mod install;
pub mod network;
mod rust_peer;

use sha2::{Digest, Sha256};
use thiserror::Error;

pub use driver::{
    BroadcastKind, JsEvent, JsMissingEntry, JsNetwork, JsOptions, JsRepairOptions, JsReply,
};
pub use driver::{JsState, JsStateIncomingRepair, JsStateOutgoingRepair};
pub use rust_peer::{RustPeer, delivered_ids};

/// The `@waku/sds` version the harness pins (in `js/package.json` and its lock file).
pub const WAKU_SDS_VERSION: &str = "0.0.8";

/// What can go wrong while preparing or driving the JavaScript side.
#[derive(Debug, Error)]
pub enum InteropError {
    /// A program the harness needs is not installed or cannot run.
    #[error(
        "`{program}` could not be run ({detail}); the sds-interop tests need Node.js and npm \
         on PATH to install and run @waku/sds {WAKU_SDS_VERSION}"
    )]
    ToolMissing {
        /// The program (`node` or `npm`).
        program: String,
        /// Why it could not run.
        detail: String,
    },
    /// Installing the pinned npm package failed.
    #[error("installing @waku/sds {WAKU_SDS_VERSION} with `{command}` in {dir} failed: {detail}")]
    InstallFailed {
        /// The command that failed.
        command: String,
        /// Where it ran.
        dir: String,
        /// Its exit status and output.
        detail: String,
    },
    /// Preparing the JavaScript side failed (the first failure's message, remembered for
    /// the process).
    #[error("{0}")]
    Setup(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The driver answered a command with an error.
    #[error("the @waku/sds driver rejected `{command}`: {message}")]
    Driver {
        /// The command's name.
        command: String,
        /// The driver's error text (a JavaScript stack trace, usually).
        message: String,
    },
    /// The driver process broke the protocol or exited.
    #[error("the @waku/sds driver process failed: {0}")]
    Protocol(String),
    /// The Rust side of a participant failed.
    #[error(transparent)]
    Sds(#[from] sds_core::SdsError),
    /// Bytes on the wire did not decode.
    #[error(transparent)]
    Codec(#[from] sds_codec::CodecError),
}

impl InteropError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        InteropError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The message id `@waku/sds` applications use: the lowercase hex SHA-256 of the payload.
pub fn message_id(payload: &[u8]) -> String {
    to_hex(&Sha256::digest(payload))
}

/// Lowercase hex of `bytes` (how the driver protocol carries bytes).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Bytes from hex (either case); `None` for odd lengths or non-hex characters.
pub fn from_hex(hex: &str) -> Option<Vec<u8>> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            b'A'..=b'F' => Some(digit - b'A' + 10),
            _ => None,
        }
    }
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
        assert_eq!(from_hex("0A"), Some(vec![10]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn message_id_is_hex_sha256() {
        assert_eq!(
            message_id(b"hello"),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
