//! The simulated broadcast network: loss, duplication, reordering and delay, in virtual
//! time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::rng::SimRng;

/// How the network misbehaves.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NetworkConditions {
    /// Probability that one copy to one recipient is lost.
    pub loss: f64,
    /// Probability that a delivered copy arrives twice.
    pub duplication: f64,
    /// Probability that a copy is held back by up to `reorder_window_ms` extra.
    pub reorder: f64,
    /// The extra hold-back of a reordered copy, at most.
    pub reorder_window_ms: u64,
    /// Base one-way delay, at least.
    pub min_delay_ms: u64,
    /// Base one-way delay, at most.
    pub max_delay_ms: u64,
}

impl Default for NetworkConditions {
    fn default() -> Self {
        NetworkConditions {
            loss: 0.2,
            duplication: 0.05,
            reorder: 0.1,
            reorder_window_ms: 2_000,
            min_delay_ms: 10,
            max_delay_ms: 200,
        }
    }
}

/// Why a packet is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketKind {
    Original,
    Resend,
    Repair,
    Sync,
}

#[derive(Debug, Clone)]
pub(crate) struct Packet {
    pub(crate) to: usize,
    pub(crate) kind: PacketKind,
    pub(crate) bytes: Vec<u8>,
}

/// Packets in flight, ordered by arrival time (ties by send order, for determinism).
#[derive(Debug)]
pub(crate) struct Network {
    conditions: NetworkConditions,
    rng: SimRng,
    in_flight: BinaryHeap<Reverse<(i64, u64)>>,
    packets: std::collections::HashMap<u64, Packet>,
    next_seq: u64,
    pub(crate) lost: u64,
}

impl Network {
    /// A network with its own random stream, so the network's choices do not shift when
    /// the simulation's other choices change.
    pub(crate) fn new(conditions: NetworkConditions, seed: u64) -> Self {
        Network {
            conditions,
            rng: SimRng::new(seed),
            in_flight: BinaryHeap::new(),
            packets: std::collections::HashMap::new(),
            next_seq: 0,
            lost: 0,
        }
    }

    pub(crate) fn broadcast(
        &mut self,
        now: i64,
        from: usize,
        participants: usize,
        kind: PacketKind,
        bytes: &[u8],
    ) {
        let (rng, conditions) = (&mut self.rng, &self.conditions);
        for to in (0..participants).filter(|to| *to != from) {
            if rng.chance(conditions.loss) {
                self.lost += 1;
                continue;
            }
            let copies = if rng.chance(conditions.duplication) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let spread = conditions
                    .max_delay_ms
                    .saturating_sub(conditions.min_delay_ms);
                let mut delay = conditions.min_delay_ms + rng.below(spread + 1);
                if rng.chance(conditions.reorder) {
                    delay += rng.below(conditions.reorder_window_ms + 1);
                }
                let at = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
                let seq = self.next_seq;
                self.next_seq += 1;
                self.in_flight.push(Reverse((at, seq)));
                self.packets.insert(
                    seq,
                    Packet {
                        to,
                        kind,
                        bytes: bytes.to_vec(),
                    },
                );
            }
        }
    }

    /// When the next packet arrives.
    pub(crate) fn next_arrival(&self) -> Option<i64> {
        self.in_flight.peek().map(|Reverse((at, _))| *at)
    }

    /// The next packet if it has arrived by `now`.
    pub(crate) fn pop_arrived(&mut self, now: i64) -> Option<Packet> {
        match self.in_flight.peek() {
            Some(Reverse((at, _))) if *at <= now => {
                let Reverse((_, seq)) = self.in_flight.pop()?;
                self.packets.remove(&seq)
            }
            _ => None,
        }
    }
}
