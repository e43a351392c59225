//! [`Entries`]: a snapshot buffer that clones in a few reference counts.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::{Index, IndexMut};
use std::sync::Arc;

/// Most entries [`Entries::push`] adds to one chunk before starting the next. Decoding
/// builds snapshots this way, so a loaded snapshot shares as well as a built one.
const PUSH_CHUNK: usize = 64;

/// The entries of one snapshot buffer (outgoing or incoming messages), oldest first, held
/// in shared chunks.
///
/// A channel saves its whole snapshot after every operation, and a backend may keep what it
/// is given: were a buffer a plain `Vec`, every save would copy every buffered entry. A
/// clone of `Entries` copies one pointer per chunk instead, and a channel that builds its
/// next snapshot reuses the chunks whose entries did not change ([`Entries::from_chunks`]).
///
/// Build one from a `Vec` ([`From`]), by collecting an iterator, or chunk by chunk. Two
/// `Entries` are equal when their entries are, however they are chunked.
pub struct Entries<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Entries<T> {
    /// No entries.
    pub const fn new() -> Self {
        Entries {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// The entries of these chunks, in order; empty chunks are left out.
    pub fn from_chunks(chunks: impl IntoIterator<Item = Arc<Vec<T>>>) -> Self {
        let chunks: Vec<Arc<Vec<T>>> = chunks
            .into_iter()
            .filter(|chunk| !chunk.is_empty())
            .collect();
        let len = chunks.iter().map(|chunk| chunk.len()).sum();
        Entries { chunks, len }
    }

    /// The shared chunks, in order; none is empty.
    pub fn chunks(&self) -> &[Arc<Vec<T>>] {
        &self.chunks
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            chunks: self.chunks.iter(),
            current: [].iter(),
            remaining: self.len,
        }
    }

    /// The entry at `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&T> {
        let mut index = index;
        for chunk in &self.chunks {
            if index < chunk.len() {
                return chunk.get(index);
            }
            index -= chunk.len();
        }
        None
    }

    /// The entry at `index` for changing, if there is one. Its chunk is copied first when
    /// it is shared (copy on write), so other holders of the snapshot never see the change.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T>
    where
        T: Clone,
    {
        let mut index = index;
        for chunk in &mut self.chunks {
            if index < chunk.len() {
                return Arc::make_mut(chunk).get_mut(index);
            }
            index -= chunk.len();
        }
        None
    }

    /// Appends an entry: to the last chunk when it is not shared and not full, else in a
    /// new chunk (a shared chunk is never copied).
    pub fn push(&mut self, entry: T) {
        let appended = match self.chunks.last_mut().and_then(Arc::get_mut) {
            Some(last) if last.len() < PUSH_CHUNK => {
                last.push(entry);
                None
            }
            _ => Some(entry),
        };
        if let Some(entry) = appended {
            let mut chunk = Vec::with_capacity(PUSH_CHUNK);
            chunk.push(entry);
            self.chunks.push(Arc::new(chunk));
        }
        self.len += 1;
    }

    /// The entries copied into one `Vec`.
    pub fn to_vec(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.iter().cloned().collect()
    }
}

impl<T> Index<usize> for Entries<T> {
    type Output = T;

    /// The entry at `index`; panics when out of bounds, as slices do.
    fn index(&self, index: usize) -> &T {
        match self.get(index) {
            Some(entry) => entry,
            None => panic!("index {index} out of bounds of {} entries", self.len),
        }
    }
}

impl<T: Clone> IndexMut<usize> for Entries<T> {
    /// The entry at `index` for changing (see [`Entries::get_mut`]); panics when out of
    /// bounds, as slices do.
    fn index_mut(&mut self, index: usize) -> &mut T {
        let len = self.len;
        match self.get_mut(index) {
            Some(entry) => entry,
            None => panic!("index {index} out of bounds of {len} entries"),
        }
    }
}

impl<T> Clone for Entries<T> {
    fn clone(&self) -> Self {
        Entries {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for Entries<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq> PartialEq for Entries<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for Entries<T> {}

impl<T> From<Vec<T>> for Entries<T> {
    fn from(entries: Vec<T>) -> Self {
        Entries::from_chunks([Arc::new(entries)])
    }
}

impl<T> FromIterator<T> for Entries<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Entries::from(iter.into_iter().collect::<Vec<T>>())
    }
}

impl<T> Extend<T> for Entries<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for entry in iter {
            self.push(entry);
        }
    }
}

impl<'a, T> IntoIterator for &'a Entries<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// The entries of an [`Entries`], in order.
#[derive(Debug, Clone)]
pub struct Iter<'a, T> {
    chunks: std::slice::Iter<'a, Arc<Vec<T>>>,
    current: std::slice::Iter<'a, T>,
    remaining: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(entry) = self.current.next() {
                self.remaining -= 1;
                return Some(entry);
            }
            self.current = self.chunks.next()?.iter();
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> FusedIterator for Iter<'_, T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_fills_unshared_chunks_and_never_copies_shared_ones() {
        let mut entries: Entries<u32> = Entries::new();
        for n in 0..130 {
            entries.push(n);
        }
        assert_eq!(entries.len(), 130);
        assert_eq!(
            entries.chunks().iter().map(|c| c.len()).collect::<Vec<_>>(),
            [64, 64, 2]
        );
        let snapshot = entries.clone();
        entries.push(130);
        // The shared last chunk stays as the snapshot saw it.
        assert_eq!(snapshot.len(), 130);
        assert_eq!(snapshot.chunks()[2].len(), 2);
        assert_eq!(entries.chunks().len(), 4);
        assert!(entries.iter().copied().eq(0..131));
        assert_eq!(entries.get(129), Some(&129));
        assert_eq!(entries.get(131), None);
        assert_eq!(entries[64], 64);
    }

    #[test]
    fn changing_an_entry_never_changes_a_clone() {
        let mut entries = Entries::from(vec![1, 2, 3]);
        let snapshot = entries.clone();
        entries[1] = 20;
        assert_eq!(entries, Entries::from(vec![1, 20, 3]));
        assert_eq!(snapshot, Entries::from(vec![1, 2, 3]));
        assert_eq!(entries.get_mut(3), None);
    }

    #[test]
    fn equality_ignores_chunking() {
        let chunked = Entries::from_chunks([
            Arc::new(vec![1, 2]),
            Arc::new(Vec::new()),
            Arc::new(vec![3]),
        ]);
        assert_eq!(chunked.chunks().len(), 2);
        assert_eq!(chunked, Entries::from(vec![1, 2, 3]));
        assert_ne!(chunked, Entries::from(vec![1, 2]));
        assert_eq!(chunked.iter().len(), 3);
        assert_eq!(format!("{chunked:?}"), "[1, 2, 3]");
        assert!(Entries::<u8>::from(Vec::new()).chunks().is_empty());
    }
}
