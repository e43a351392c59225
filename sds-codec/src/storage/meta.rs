//! [`ChannelMeta`], written by hand against `sds.storage.ChannelMeta` in `storage.proto`.
//!
//! prost would generate its buffers as `Vec`s; here they are [`Entries`], so a snapshot
//! clones in a few reference counts however many messages it holds. The encoding is the
//! one prost generates for the message (fields in number order, proto3 defaults omitted),
//! which the golden-bytes tests pin.

use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType, message, skip_field, uint32, uint64};
use prost::{DecodeError, Message};

use super::{
    Entries, IncomingEntry, IncomingRepairEntry, OutgoingEntry, OutgoingRepairEntry, SCHEMA_VERSION,
};

/// The complete fast-changing state of a channel: everything but the history and the
/// bloom filter (which is rebuilt from the history on load).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChannelMeta {
    /// Layout version of this snapshot, the same as its envelope's; decoders refuse
    /// versions they do not know, and a decoded version-1 snapshot says the current one.
    pub schema_version: u32,
    /// The channel's Lamport clock.
    pub lamport: u64,
    /// Sent messages not yet acknowledged, oldest first.
    pub outgoing: Entries<OutgoingEntry>,
    /// Received messages waiting for causal dependencies, in arrival order.
    pub incoming: Entries<IncomingEntry>,
    /// SDS-R: entries we are missing and will ask the group for once due.
    pub outgoing_repairs: Vec<OutgoingRepairEntry>,
    /// SDS-R: entries others asked for that we may rebroadcast once due.
    pub incoming_repairs: Vec<IncomingRepairEntry>,
}

impl ChannelMeta {
    /// The snapshot of a channel that has no state yet, at the current schema version.
    pub fn empty() -> Self {
        ChannelMeta {
            schema_version: SCHEMA_VERSION,
            ..Default::default()
        }
    }
}

fn entries_len<M: Message>(tag: u32, entries: &Entries<M>) -> usize {
    entries
        .iter()
        .map(|entry| message::encoded_len(tag, entry))
        .sum()
}

impl Message for ChannelMeta {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if self.schema_version != 0 {
            uint32::encode(1, &self.schema_version, buf);
        }
        if self.lamport != 0 {
            uint64::encode(2, &self.lamport, buf);
        }
        for entry in &self.outgoing {
            message::encode(3, entry, buf);
        }
        for entry in &self.incoming {
            message::encode(4, entry, buf);
        }
        for entry in &self.outgoing_repairs {
            message::encode(5, entry, buf);
        }
        for entry in &self.incoming_repairs {
            message::encode(6, entry, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => uint32::merge(wire_type, &mut self.schema_version, buf, ctx),
            2 => uint64::merge(wire_type, &mut self.lamport, buf, ctx),
            3 => {
                let mut entry = OutgoingEntry::default();
                message::merge(wire_type, &mut entry, buf, ctx)?;
                self.outgoing.push(entry);
                Ok(())
            }
            4 => {
                let mut entry = IncomingEntry::default();
                message::merge(wire_type, &mut entry, buf, ctx)?;
                self.incoming.push(entry);
                Ok(())
            }
            5 => message::merge_repeated(wire_type, &mut self.outgoing_repairs, buf, ctx),
            6 => message::merge_repeated(wire_type, &mut self.incoming_repairs, buf, ctx),
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let mut len = 0;
        if self.schema_version != 0 {
            len += uint32::encoded_len(1, &self.schema_version);
        }
        if self.lamport != 0 {
            len += uint64::encoded_len(2, &self.lamport);
        }
        len + entries_len(3, &self.outgoing)
            + entries_len(4, &self.incoming)
            + message::encoded_len_repeated(5, &self.outgoing_repairs)
            + message::encoded_len_repeated(6, &self.incoming_repairs)
    }

    fn clear(&mut self) {
        *self = ChannelMeta::default();
    }
}
