//! A bloom filter that forgets its oldest ids, as nim-sds keeps one.

use std::collections::VecDeque;
use std::fmt;

use super::{BloomError, BloomFilter};

/// A bloom filter of message ids with bounded memory, as nim-sds keeps one.
///
/// It remembers the inserted ids in insertion order. The list may grow to 120% of the
/// capacity; the insert that takes it past that keeps only the newest 80% and rebuilds the
/// filter from them (as [`RollingBloomFilter::clean`] does), so old ids eventually stop
/// matching and a flood between two timer cleanings cannot saturate the filter. The filter
/// keeps its configured size through a rebuild: its bytes are what peers decode. Ids are not
/// deduplicated: inserting the same id twice remembers it twice.
#[derive(Clone)]
pub struct RollingBloomFilter {
    filter: BloomFilter,
    ids: VecDeque<String>,
    min_capacity: usize,
    max_capacity: usize,
}

impl fmt::Debug for RollingBloomFilter {
    // The ids (up to 12,000 at the defaults) would drown any log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollingBloomFilter")
            .field("filter", &self.filter)
            .field("ids", &self.ids.len())
            .field("min_capacity", &self.min_capacity)
            .field("max_capacity", &self.max_capacity)
            .finish()
    }
}

impl RollingBloomFilter {
    /// An empty rolling filter whose bloom filter is sized for `capacity` ids at
    /// `error_rate`; cleaning keeps between 80% and 120% of `capacity` ids.
    ///
    /// Fails with [`BloomError::InvalidParameters`] as [`BloomFilter::new`] does.
    pub fn new(capacity: usize, error_rate: f64) -> Result<Self, BloomError> {
        let filter = BloomFilter::new(capacity, error_rate)?;
        Ok(Self {
            filter,
            ids: VecDeque::new(),
            min_capacity: percent_of(capacity, 80),
            max_capacity: percent_of(capacity, 120),
        })
    }

    /// How many of the newest ids a rolling filter of `capacity` always remembers (80%):
    /// a peer's filter tells nothing about ids older than that.
    pub(crate) fn remembered_at_least(capacity: usize) -> usize {
        percent_of(capacity, 80)
    }

    /// Adds `message_id` to the filter and remembers it as the newest id; past the maximum
    /// (120% of capacity) it cleans at once. Returns whether it rebuilt.
    pub fn insert(&mut self, message_id: &str) -> bool {
        self.filter.insert(message_id);
        self.ids.push_back(message_id.to_owned());
        self.clean()
    }

    /// Whether `message_id` may have been inserted (and not rolled out since); see
    /// [`BloomFilter::contains`].
    pub fn contains(&self, message_id: &str) -> bool {
        self.filter.contains(message_id)
    }

    /// If more than the maximum (120% of capacity) ids are remembered, forgets all but the
    /// newest minimum (80% of capacity) and rebuilds the filter from those. Returns whether
    /// it rebuilt.
    pub fn clean(&mut self) -> bool {
        if self.ids.len() <= self.max_capacity {
            return false;
        }
        let excess = self.ids.len().saturating_sub(self.min_capacity);
        self.ids.drain(..excess);
        self.filter.clear();
        for id in &self.ids {
            self.filter.insert(id);
        }
        true
    }

    /// The filter's bytes; see [`BloomFilter::to_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        self.filter.to_bytes()
    }

    /// The underlying bloom filter.
    pub fn filter(&self) -> &BloomFilter {
        &self.filter
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// How many ids [`RollingBloomFilter::clean`] keeps (80% of capacity).
    pub fn min_capacity(&self) -> usize {
        self.min_capacity
    }

    /// How many ids may be remembered before [`RollingBloomFilter::clean`] rebuilds (120% of
    /// capacity).
    pub fn max_capacity(&self) -> usize {
        self.max_capacity
    }
}

/// `floor(value * percent / 100)`, saturating at `usize::MAX`.
fn percent_of(value: usize, percent: u32) -> usize {
    let scaled = value as u128 * u128::from(percent) / 100;
    usize::try_from(scaled).unwrap_or(usize::MAX)
}
