//! Protobuf types and codecs for Scalable Data Sync (SDS).
//!
//! Two families of types live here:
//! - [`wire`]: the message peers exchange, in the layout of the Vac RFC "SDS", with a
//!   size limit enforced on encode and decode;
//! - [`storage`]: the per-channel snapshot ([`storage::ChannelMeta`]), the bootstrap payload
//!   ([`storage::ChannelData`]) and the history batch ([`storage::HistoryUpdate`]) that
//!   persistence backends store, schema-versioned so an unknown layout is refused loudly,
//!   and stored behind an envelope with a length and a CRC32C so a blob cut short or damaged
//!   is refused as such.
//!
//! The `.proto` files in this crate's `proto/` folder are the source of truth; they are
//! compiled at build time without a system `protoc`.

mod error;
pub mod storage;
pub mod wire;

pub use error::CodecError;
