//! The simulated broadcast network, in virtual time: loss (steady and in bursts),
//! duplication, reordering, short and long delays, and a partition that heals.
//!
//! Every choice comes from the network's own random stream (and, for loss bursts, one
//! stream per receiver), so a seed reproduces the network exactly and the simulation's
//! other choices do not shift it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;

use serde::Serialize;

use super::rng::SimRng;

/// How the network misbehaves. Each copy of a broadcast, one per receiver, meets these
/// conditions independently (apart from bursts and the partition, which are per receiver
/// and per pair of sides).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkConditions {
    /// Probability that one copy to one receiver is lost (outside a loss burst).
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
    /// Share of copies delayed by seconds, so they overtake later ones: each such copy
    /// waits an extra time drawn uniformly in `[long_delay_min_ms, long_delay_max_ms]`.
    pub long_delay: f64,
    /// The extra wait of a long-delayed copy, at least.
    pub long_delay_min_ms: u64,
    /// The extra wait of a long-delayed copy, at most.
    pub long_delay_max_ms: u64,
    /// Loss bursts per receiver (`None`: loss is steady).
    pub bursts: Option<LossBursts>,
    /// A partition that splits the participants for a while, then heals (`None`: never).
    pub partition: Option<Partition>,
}

/// Loss that comes in bursts: a two-state model per receiver in the spirit of
/// Gilbert-Elliott, in virtual time. Each receiver alternates between a good state, where
/// a copy is lost with probability [`NetworkConditions::loss`], and a burst, where it is
/// lost with probability `burst_loss`. The length of each good period and each burst is
/// drawn uniformly between half and one and a half times its mean; receivers start at
/// random points of a good period, so their bursts do not line up. On average a receiver
/// spends `mean_burst_ms / (mean_gap_ms + mean_burst_ms)` of the time in bursts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossBursts {
    /// Mean length of a good period between two bursts.
    pub mean_gap_ms: u64,
    /// Mean length of a burst.
    pub mean_burst_ms: u64,
    /// Probability that a copy is lost during a burst.
    pub burst_loss: f64,
}

impl Default for LossBursts {
    /// The `bursty` preset's: bursts of 80% loss lasting about 4 s, about every 20 s.
    fn default() -> Self {
        LossBursts {
            mean_gap_ms: 20_000,
            mean_burst_ms: 4_000,
            burst_loss: 0.8,
        }
    }
}

impl LossBursts {
    /// The long-run share of copies lost with these bursts over a steady `loss`.
    pub fn average_loss(&self, loss: f64) -> f64 {
        let total = self.mean_gap_ms.saturating_add(self.mean_burst_ms);
        if total == 0 {
            return loss;
        }
        let in_burst = self.mean_burst_ms as f64 / total as f64;
        loss * (1.0 - in_burst) + self.burst_loss * in_burst
    }
}

/// A partition: from `start_ms` after the start of the run, for `duration_ms`, the
/// participants are split into two sides that cannot hear each other: the first half
/// (indices below `participants / 2`, rounded down) and the rest. A copy that crosses
/// the cut while it stands is lost, whether it was sent or would arrive in the window.
/// Then it heals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// When the network splits, counted from the start of the run.
    pub start_ms: u64,
    /// How long it stays split.
    pub duration_ms: u64,
}

impl Default for Partition {
    /// The `partition-and-heal` preset's: from 30 s to 60 s into the run.
    fn default() -> Self {
        Partition {
            start_ms: 30_000,
            duration_ms: 30_000,
        }
    }
}

impl NetworkConditions {
    /// Checks that every figure can work.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let mut probabilities = vec![
            ("loss", self.loss),
            ("duplication", self.duplication),
            ("reorder", self.reorder),
            ("long_delay", self.long_delay),
        ];
        if let Some(bursts) = &self.bursts {
            probabilities.push(("burst_loss", bursts.burst_loss));
            if bursts.mean_gap_ms == 0 || bursts.mean_burst_ms == 0 {
                return Err("loss bursts need a mean gap and a mean burst of at least 1 ms".into());
            }
        }
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!(
                    "{name} must be a probability between 0 and 1, got {p}"
                ));
            }
        }
        if self.min_delay_ms > self.max_delay_ms {
            return Err("min_delay_ms cannot exceed max_delay_ms".into());
        }
        if self.long_delay_min_ms > self.long_delay_max_ms {
            return Err("long_delay_min_ms cannot exceed long_delay_max_ms".into());
        }
        Ok(())
    }

    /// The long-run share of copies lost to loss and bursts (not to the partition).
    pub fn average_loss(&self) -> f64 {
        self.bursts
            .as_ref()
            .map_or(self.loss, |bursts| bursts.average_loss(self.loss))
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl fmt::Display for NetworkConditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss {:.0}%, delay {}-{} ms, {:.0}% of copies delayed {:.1}-{:.1} s more, \
             reorder {:.0}% within {:.1} s, duplication {:.0}%",
            self.loss * 100.0,
            self.min_delay_ms,
            self.max_delay_ms,
            self.long_delay * 100.0,
            seconds(self.long_delay_min_ms),
            seconds(self.long_delay_max_ms),
            self.reorder * 100.0,
            seconds(self.reorder_window_ms),
            self.duplication * 100.0,
        )?;
        if let Some(bursts) = &self.bursts {
            write!(
                f,
                ", bursts of {:.0}% loss lasting {:.1} s every {:.1} s (average loss {:.0}%)",
                bursts.burst_loss * 100.0,
                seconds(bursts.mean_burst_ms),
                seconds(bursts.mean_gap_ms),
                self.average_loss() * 100.0
            )?;
        }
        if let Some(partition) = &self.partition {
            write!(
                f,
                ", partition from {:.1} s to {:.1} s",
                seconds(partition.start_ms),
                seconds(partition.start_ms.saturating_add(partition.duration_ms))
            )?;
        }
        Ok(())
    }
}

/// What the network did to the copies it carried, over a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkStats {
    /// Copies addressed: one per receiver per broadcast.
    pub copies: u64,
    /// Copies addressed to a receiver that was in a loss burst.
    pub copies_in_burst: u64,
    /// Copies lost outside bursts.
    pub lost: u64,
    /// Copies lost in a burst.
    pub lost_in_burst: u64,
    /// Copies lost because they crossed the partition.
    pub cut_by_partition: u64,
    /// Copies that arrived at a crashed participant (lost too).
    pub to_crashed: u64,
    /// Extra copies the network duplicated.
    pub duplicated: u64,
    /// Copies put on the wire (duplicates included).
    pub in_flight: u64,
    /// Copies on the wire that got a long delay.
    pub delayed_long: u64,
    /// Copies that arrived at least one second after they were sent.
    pub late_by_a_second: u64,
}

impl NetworkStats {
    /// Every copy that never reached a running participant.
    pub fn total_lost(&self) -> u64 {
        self.lost + self.lost_in_burst + self.cut_by_partition + self.to_crashed
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
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) sent_at: i64,
    pub(crate) kind: PacketKind,
    pub(crate) bytes: Vec<u8>,
}

/// One receiver's burst process: which state it is in until when.
#[derive(Debug)]
struct BurstState {
    rng: SimRng,
    in_burst: bool,
    until: i64,
}

impl BurstState {
    fn new(seed: u64, start_ms: i64, bursts: &LossBursts) -> Self {
        let mut rng = SimRng::new(seed);
        // A random point of a first good period, so receivers do not burst together.
        let first = rng.below(bursts.mean_gap_ms.saturating_mul(3) / 2 + 1);
        BurstState {
            rng,
            in_burst: false,
            until: start_ms.saturating_add(i64::try_from(first).unwrap_or(i64::MAX)),
        }
    }

    /// Whether the receiver is in a burst at `now` (`now` never goes back).
    fn at(&mut self, now: i64, bursts: &LossBursts) -> bool {
        while self.until <= now {
            self.in_burst = !self.in_burst;
            let mean = if self.in_burst {
                bursts.mean_burst_ms
            } else {
                bursts.mean_gap_ms
            };
            let length = (mean / 2 + self.rng.below(mean + 1)).max(1);
            self.until = self
                .until
                .saturating_add(i64::try_from(length).unwrap_or(i64::MAX));
        }
        self.in_burst
    }
}

/// Packets in flight, ordered by arrival time (ties by send order, for determinism).
#[derive(Debug)]
pub(crate) struct Network {
    conditions: NetworkConditions,
    start_ms: i64,
    participants: usize,
    rng: SimRng,
    bursts: Vec<BurstState>,
    in_flight: BinaryHeap<Reverse<(i64, u64)>>,
    packets: HashMap<u64, Packet>,
    next_seq: u64,
    pub(crate) stats: NetworkStats,
}

impl Network {
    /// A network of `participants` from `start_ms` on, with its own random stream.
    pub(crate) fn new(
        conditions: NetworkConditions,
        seed: u64,
        participants: usize,
        start_ms: i64,
    ) -> Self {
        let bursts = conditions.bursts.as_ref().map_or_else(Vec::new, |bursts| {
            (0..participants)
                .map(|to| {
                    let stream = seed ^ (0x6275_7273_7400_0000 + to as u64);
                    BurstState::new(stream, start_ms, bursts)
                })
                .collect()
        });
        Network {
            conditions,
            start_ms,
            participants,
            rng: SimRng::new(seed),
            bursts,
            in_flight: BinaryHeap::new(),
            packets: HashMap::new(),
            next_seq: 0,
            stats: NetworkStats::default(),
        }
    }

    /// Whether a copy between `a` and `b` crosses a standing partition at `at`.
    fn cut(&self, a: usize, b: usize, at: i64) -> bool {
        let Some(partition) = &self.conditions.partition else {
            return false;
        };
        let offset = at.saturating_sub(self.start_ms);
        let start = i64::try_from(partition.start_ms).unwrap_or(i64::MAX);
        let end = start.saturating_add(i64::try_from(partition.duration_ms).unwrap_or(i64::MAX));
        let half = self.participants / 2;
        (start..end).contains(&offset) && ((a < half) != (b < half))
    }

    /// Puts one copy of `bytes` per other participant on the wire, or loses it.
    pub(crate) fn broadcast(&mut self, now: i64, from: usize, kind: PacketKind, bytes: &[u8]) {
        for to in (0..self.participants).filter(|to| *to != from) {
            self.stats.copies += 1;
            if self.cut(from, to, now) {
                self.stats.cut_by_partition += 1;
                continue;
            }
            let in_burst = match (self.conditions.bursts.as_ref(), self.bursts.get_mut(to)) {
                (Some(bursts), Some(state)) => state.at(now, bursts),
                _ => false,
            };
            let conditions = &self.conditions;
            let loss = match (&conditions.bursts, in_burst) {
                (Some(bursts), true) => bursts.burst_loss,
                _ => conditions.loss,
            };
            if in_burst {
                self.stats.copies_in_burst += 1;
            }
            if self.rng.chance(loss) {
                if in_burst {
                    self.stats.lost_in_burst += 1;
                } else {
                    self.stats.lost += 1;
                }
                continue;
            }
            let copies = if self.rng.chance(conditions.duplication) {
                self.stats.duplicated += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                let delay = self.draw_delay();
                self.stats.in_flight += 1;
                let at = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
                let seq = self.next_seq;
                self.next_seq += 1;
                self.in_flight.push(Reverse((at, seq)));
                self.packets.insert(
                    seq,
                    Packet {
                        from,
                        to,
                        sent_at: now,
                        kind,
                        bytes: bytes.to_vec(),
                    },
                );
            }
        }
    }

    /// One copy's one-way delay: base, maybe a reorder hold-back, maybe a long delay.
    fn draw_delay(&mut self) -> u64 {
        let conditions = &self.conditions;
        let spread = conditions
            .max_delay_ms
            .saturating_sub(conditions.min_delay_ms);
        let mut delay = conditions.min_delay_ms + self.rng.below(spread.saturating_add(1));
        if self.rng.chance(conditions.reorder) {
            delay += self
                .rng
                .below(conditions.reorder_window_ms.saturating_add(1));
        }
        if self.rng.chance(conditions.long_delay) {
            self.stats.delayed_long += 1;
            let spread = conditions
                .long_delay_max_ms
                .saturating_sub(conditions.long_delay_min_ms);
            delay += conditions.long_delay_min_ms + self.rng.below(spread.saturating_add(1));
        }
        delay
    }

    /// When the next packet arrives.
    pub(crate) fn next_arrival(&self) -> Option<i64> {
        self.in_flight.peek().map(|Reverse((at, _))| *at)
    }

    /// The next packet that has arrived by `now`; copies that would arrive across a
    /// standing partition are lost on the way.
    pub(crate) fn pop_arrived(&mut self, now: i64) -> Option<Packet> {
        loop {
            match self.in_flight.peek() {
                Some(Reverse((at, _))) if *at <= now => {
                    let Reverse((at, seq)) = self.in_flight.pop()?;
                    let packet = self.packets.remove(&seq)?;
                    if self.cut(packet.from, packet.to, at) {
                        self.stats.cut_by_partition += 1;
                        continue;
                    }
                    if at.saturating_sub(packet.sent_at) >= 1_000 {
                        self.stats.late_by_a_second += 1;
                    }
                    return Some(packet);
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulation::Scenario;

    const START: i64 = 1_000_000;

    /// Broadcasts `rounds` times from participant 0 of 5, one every 100 ms, and collects
    /// every arrival with its arrival time.
    fn run(conditions: NetworkConditions, rounds: i64) -> (Network, Vec<(i64, Packet)>) {
        let mut network = Network::new(conditions, 99, 5, START);
        let mut arrivals = Vec::new();
        let mut deliver_until = |network: &mut Network, until: i64| {
            while let Some(at) = network.next_arrival().filter(|at| *at <= until) {
                while let Some(packet) = network.pop_arrived(at) {
                    arrivals.push((at, packet));
                }
            }
        };
        for round in 0..rounds {
            let now = START + round * 100;
            deliver_until(&mut network, now);
            network.broadcast(now, 0, PacketKind::Original, &round.to_be_bytes());
        }
        deliver_until(&mut network, i64::MAX);
        (network, arrivals)
    }

    fn share(part: u64, whole: u64) -> f64 {
        part as f64 / whole as f64
    }

    // The lossy preset is as harsh as real networks: about 20% of copies lost, about 10%
    // of copies on the wire delayed by 1-8 s, and late copies overtake earlier ones.
    #[test]
    fn lossy_network_loses_a_fifth_and_delays_a_tenth_by_seconds() {
        let (network, arrivals) = run(Scenario::Lossy.network(), 20_000);
        let stats = &network.stats;
        assert_eq!(stats.copies, 80_000);
        let loss = share(stats.lost, stats.copies);
        assert!((0.19..0.21).contains(&loss), "loss {loss}");
        let long = share(stats.delayed_long, stats.in_flight);
        assert!((0.09..0.11).contains(&long), "long delays {long}");
        let late: Vec<i64> = arrivals
            .iter()
            .map(|(at, packet)| at - packet.sent_at)
            .filter(|delay| *delay >= 1_000)
            .collect();
        assert_eq!(late.len() as u64, stats.late_by_a_second);
        let late_share = share(late.len() as u64, arrivals.len() as u64);
        // The long delays, plus reordered copies held back by more than a second.
        assert!((0.095..0.17).contains(&late_share), "late {late_share}");
        assert!(late.iter().all(|delay| *delay <= 8_000 + 200 + 2_000));
        assert!(
            late.iter().any(|delay| *delay >= 7_000),
            "some wait many seconds"
        );
        // Per receiver, some copy arrives after copies sent seconds later than itself.
        let mut newest_sent = [i64::MIN; 5];
        let mut overtaken = 0;
        for (_, packet) in &arrivals {
            if packet.sent_at + 1_000 < newest_sent[packet.to] {
                overtaken += 1;
            }
            newest_sent[packet.to] = newest_sent[packet.to].max(packet.sent_at);
        }
        let overtaken = overtaken > 0;
        assert!(overtaken, "long delays must reorder copies");
    }

    // With bursts, losses cluster: a receiver in a burst loses far more, the long-run loss
    // matches the model, and a copy after a lost one is lost more often than on average.
    #[test]
    fn bursts_cluster_losses() {
        let conditions = Scenario::Bursty.network();
        let bursts = conditions.bursts.clone().unwrap();
        let expected = conditions.average_loss();
        let (network, arrivals) = run(conditions, 40_000);
        let stats = &network.stats;
        let burst_loss = share(stats.lost_in_burst, stats.copies_in_burst);
        assert!(
            (burst_loss - bursts.burst_loss).abs() < 0.03,
            "{burst_loss}"
        );
        let loss = share(stats.lost + stats.lost_in_burst, stats.copies);
        assert!(
            (loss - expected).abs() < 0.03,
            "loss {loss}, expected {expected}"
        );
        // Receiver 1's copies in send order: lost or not.
        let mut received = vec![false; 40_000];
        for (_, packet) in arrivals.iter().filter(|(_, p)| p.to == 1) {
            let round = i64::from_be_bytes(packet.bytes[..8].try_into().unwrap());
            received[usize::try_from(round).unwrap()] = true;
        }
        let after_loss: Vec<bool> = received
            .windows(2)
            .filter(|pair| !pair[0])
            .map(|pair| pair[1])
            .collect();
        let lost_after_loss = share(
            after_loss.iter().filter(|got| !**got).count() as u64,
            after_loss.len() as u64,
        );
        assert!(
            lost_after_loss > 2.0 * loss,
            "after a loss {lost_after_loss}, on average {loss}"
        );
    }

    // During the partition no copy crosses between the sides (sent or arriving); within a
    // side and after it heals, copies flow again.
    #[test]
    fn partition_cuts_the_sides_then_heals() {
        let conditions = NetworkConditions {
            loss: 0.0,
            partition: Some(Partition {
                start_ms: 10_000,
                duration_ms: 20_000,
            }),
            ..Scenario::Lossy.network()
        };
        let (network, arrivals) = run(conditions, 600);
        assert!(network.stats.cut_by_partition > 0);
        let window = START + 10_000..START + 30_000;
        for (at, packet) in &arrivals {
            let across = packet.to >= 2;
            if across {
                assert!(!window.contains(at), "arrived across the cut at {at}");
                assert!(!window.contains(&packet.sent_at), "sent across the cut");
            }
        }
        assert!(
            arrivals
                .iter()
                .any(|(at, p)| p.to == 1 && window.contains(at))
        );
        assert!(
            arrivals
                .iter()
                .any(|(at, p)| p.to == 4 && *at >= window.end)
        );
    }

    // The same seed gives the same network; bursts do not depend on the traffic's shape.
    #[test]
    fn same_seed_same_network() {
        let (first, a) = run(Scenario::Bursty.network(), 2_000);
        let (second, b) = run(Scenario::Bursty.network(), 2_000);
        assert_eq!(first.stats, second.stats);
        let times = |arrivals: &[(i64, Packet)]| -> Vec<(i64, usize)> {
            arrivals.iter().map(|(at, p)| (*at, p.to)).collect()
        };
        assert_eq!(times(&a), times(&b));
    }
}
