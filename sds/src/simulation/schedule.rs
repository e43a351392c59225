//! Who does what when: each participant's own maintenance timers, and the order in which
//! participants send.

use sds_core::ReliabilityConfig;

use super::rng::SimRng;

/// A participant's periodic work, as its maintenance timers run it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// The SDS-R sweep (every `repair_sweep_interval_ms`).
    Repairs,
    /// The outgoing and incoming sweeps and bloom cleaning (every
    /// `buffer_sweep_interval_ms`).
    Buffers,
    /// A sync message (every `sync_interval_ms`).
    Sync,
}

impl Work {
    const ALL: [Work; 3] = [Work::Repairs, Work::Buffers, Work::Sync];
}

fn ms(value: u64) -> i64 {
    i64::try_from(value.max(1)).unwrap_or(i64::MAX)
}

/// One participant's timers. Each timer has the protocol's period and a phase of its own,
/// drawn once per participant: a timer started at `t` first fires at `t + phase`
/// (0 < phase <= period), then every period, like a real node's timers started when it
/// came up. Participants therefore do not sweep and sync all at the same instant.
#[derive(Debug, Clone)]
pub(crate) struct Timers {
    periods: [i64; 3],
    phases: [i64; 3],
    next: [Option<i64>; 3],
}

impl Timers {
    pub(crate) fn new(protocol: &ReliabilityConfig, rng: &mut SimRng) -> Self {
        let periods = [
            ms(protocol.repair_sweep_interval_ms),
            ms(protocol.buffer_sweep_interval_ms),
            ms(protocol.sync_interval_ms),
        ];
        let phases =
            periods.map(|period| 1 + i64::try_from(rng.below(period.unsigned_abs())).unwrap_or(0));
        Timers {
            periods,
            phases,
            next: [None; 3],
        }
    }

    /// Starts the timers (the participant came up at `now`).
    pub(crate) fn start(&mut self, now: i64) {
        for (next, phase) in self.next.iter_mut().zip(self.phases) {
            *next = Some(now.saturating_add(phase));
        }
    }

    /// Stops the timers (the participant crashed).
    pub(crate) fn stop(&mut self) {
        self.next = [None; 3];
    }

    /// When the next timer fires, if any runs.
    pub(crate) fn next_due(&self) -> Option<i64> {
        self.next.iter().flatten().min().copied()
    }

    /// The work due at `now`, in a fixed order; each timer fired is set one period on.
    pub(crate) fn take_due(&mut self, now: i64) -> Vec<Work> {
        let mut due = Vec::new();
        for (index, work) in Work::ALL.into_iter().enumerate() {
            if let Some(next) = self.next[index].filter(|next| *next <= now) {
                due.push(work);
                let mut following = next.saturating_add(self.periods[index]);
                if following <= now {
                    following = now.saturating_add(self.periods[index]);
                }
                self.next[index] = Some(following);
            }
        }
        due
    }
}

/// The order of senders: each participant appears its share of times (`messages /
/// participants`, the remainder going to the first ones), shuffled. A send goes to the
/// next participant in the deck that is running, so crashes do not change the shares.
#[derive(Debug, Clone)]
pub(crate) struct SendDeck {
    order: Vec<usize>,
    cursor: usize,
}

impl SendDeck {
    pub(crate) fn new(messages: usize, participants: usize, rng: &mut SimRng) -> Self {
        let participants = participants.max(1);
        let mut order: Vec<usize> = (0..messages).map(|n| n % participants).collect();
        for i in (1..order.len()).rev() {
            let j = usize::try_from(rng.below(i as u64 + 1)).unwrap_or(0);
            order.swap(i, j);
        }
        SendDeck { order, cursor: 0 }
    }

    /// Whether every send has been dealt.
    pub(crate) fn is_empty(&self) -> bool {
        self.cursor >= self.order.len()
    }

    /// The next sender among those `running`, or `None` if no remaining sender runs.
    pub(crate) fn deal(&mut self, running: impl Fn(usize) -> bool) -> Option<usize> {
        let found = (self.cursor..self.order.len()).find(|at| running(self.order[*at]))?;
        self.order.swap(self.cursor, found);
        let sender = self.order[self.cursor];
        self.cursor += 1;
        Some(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Participants' timers fire at different instants within the first period, then keep
    // their period.
    #[test]
    fn participants_sweep_and_sync_on_their_own_phases() {
        let protocol = ReliabilityConfig::default();
        let mut rng = SimRng::new(5);
        let mut timers: Vec<Timers> = (0..5).map(|_| Timers::new(&protocol, &mut rng)).collect();
        for timer in &mut timers {
            timer.start(0);
        }
        let first_syncs: Vec<i64> = timers.iter().map(|t| t.next[2].unwrap()).collect();
        assert!(first_syncs.iter().all(|at| (1..=30_000).contains(at)));
        let mut distinct = first_syncs.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "{first_syncs:?}");

        let timer = &mut timers[0];
        let mut fired = Vec::new();
        while let Some(at) = timer.next_due().filter(|at| *at <= 120_000) {
            for work in timer.take_due(at) {
                fired.push((at, work));
            }
        }
        let syncs: Vec<i64> = fired
            .iter()
            .filter(|(_, work)| *work == Work::Sync)
            .map(|(at, _)| *at)
            .collect();
        assert_eq!(syncs.len(), 4, "{syncs:?}");
        assert!(syncs.windows(2).all(|pair| pair[1] - pair[0] == 30_000));
        let repairs = fired.iter().filter(|(_, w)| *w == Work::Repairs).count();
        assert_eq!(repairs, 24);
        timer.stop();
        assert_eq!(timer.next_due(), None);
    }

    // Each participant sends its share, whoever is down at the time.
    #[test]
    fn each_participant_sends_its_share() {
        let mut rng = SimRng::new(9);
        let mut deck = SendDeck::new(1_000, 5, &mut rng);
        let mut sent = [0usize; 5];
        let mut turn = 0;
        while !deck.is_empty() {
            // Participant 3 is down for a while.
            let down = (100..300).contains(&turn);
            let sender = deck.deal(|p| !(down && p == 3)).unwrap();
            assert!(!(down && sender == 3));
            sent[sender] += 1;
            turn += 1;
        }
        assert_eq!(sent, [200; 5]);
        assert_eq!(deck.deal(|_| true), None);
    }
}
