//! Cutting a history batch to the contract's bound ([`MAX_HISTORY_BATCH`]).

use sds_codec::storage::HistoryUpdate;

use super::MAX_HISTORY_BATCH;

/// How many entries (appends plus evictions) `update` holds.
pub fn history_batch_len(update: &HistoryUpdate) -> usize {
    update.append.len() + update.evict.len()
}

/// Cuts a history batch into the parts the manager commits one after the other: at most
/// [`MAX_HISTORY_BATCH`] entries each, the appends first in their order, then the
/// evictions. A batch within the bound is one part, returned as is; an empty one is no
/// part.
///
/// The manager never names an id in both lists, so where the cuts fall changes no outcome;
/// backends and test suites use this to replay exactly what the manager sends.
pub fn split_history_batch(update: HistoryUpdate) -> Vec<HistoryUpdate> {
    if update.is_empty() {
        return Vec::new();
    }
    if history_batch_len(&update) <= MAX_HISTORY_BATCH {
        return vec![update];
    }
    let mut parts = Vec::new();
    let mut part = HistoryUpdate::default();
    for entry in update.append {
        if part.append.len() == MAX_HISTORY_BATCH {
            parts.push(std::mem::take(&mut part));
        }
        part.append.push(entry);
    }
    for id in update.evict {
        if history_batch_len(&part) == MAX_HISTORY_BATCH {
            parts.push(std::mem::take(&mut part));
        }
        part.evict.push(id);
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

#[cfg(test)]
mod tests {
    use sds_codec::storage::LoggedMessage;
    use sds_codec::wire::SdsMessage;

    use super::*;

    fn update(appends: usize, evicts: usize) -> HistoryUpdate {
        HistoryUpdate {
            append: (0..appends)
                .map(|n| LoggedMessage {
                    message: Some(SdsMessage {
                        message_id: format!("a{n}"),
                        ..Default::default()
                    }),
                    retrieval_hint: None,
                })
                .collect(),
            evict: (0..evicts).map(|n| format!("e{n}")).collect(),
        }
    }

    fn shape(parts: &[HistoryUpdate]) -> Vec<(usize, usize)> {
        parts
            .iter()
            .map(|part| (part.append.len(), part.evict.len()))
            .collect()
    }

    #[test]
    fn batches_within_the_bound_stay_whole() {
        assert!(split_history_batch(update(0, 0)).is_empty());
        assert_eq!(shape(&split_history_batch(update(3, 2))), [(3, 2)]);
        assert_eq!(
            shape(&split_history_batch(update(MAX_HISTORY_BATCH - 1, 1))),
            [(MAX_HISTORY_BATCH - 1, 1)]
        );
    }

    #[test]
    fn larger_batches_split_appends_first_in_order() {
        assert_eq!(MAX_HISTORY_BATCH, 1_000);
        let parts = split_history_batch(update(2_500, 700));
        assert_eq!(
            shape(&parts),
            [(1_000, 0), (1_000, 0), (500, 500), (0, 200)]
        );
        let ids: Vec<&str> = parts
            .iter()
            .flat_map(|part| part.append.iter().map(LoggedMessage::message_id))
            .collect();
        let expected: Vec<String> = (0..2_500).map(|n| format!("a{n}")).collect();
        assert_eq!(ids, expected);
        let evicts: Vec<&String> = parts.iter().flat_map(|part| &part.evict).collect();
        let expected: Vec<String> = (0..700).map(|n| format!("e{n}")).collect();
        assert_eq!(evicts, expected.iter().collect::<Vec<_>>());
        assert_eq!(
            shape(&split_history_batch(update(0, 1_001))),
            [(0, 1_000), (0, 1)]
        );
    }
}
