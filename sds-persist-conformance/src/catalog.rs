//! The one list of cases. [`CASES`], the suite runner and [`crate::conformance_tests!`] are
//! all expanded from the table in `__for_each_case!`, so they cannot drift apart.

use futures::future::BoxFuture;

use crate::case::{CaseResult, Ctx};
use crate::harness::Harness;

/// A case, type-erased: runs it against the harness behind `cx`.
pub type CaseFn<H> = for<'a> fn(&'a Ctx<'a, H>) -> BoxFuture<'a, CaseResult>;

/// A case's identity and what it proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseInfo {
    /// The group (the module under [`crate::cases`]) it belongs to.
    pub group: &'static str,
    /// Its name, which is also the name of its function and of its generated test.
    pub name: &'static str,
    /// What it proves, in one line (the first line of the function's doc comment).
    pub doc: &'static str,
}

/// The table of cases: group, then `name: "one-line doc"`. It invokes `$callback` with
/// `{ $args }` followed by the table. The doc strings must equal the first doc line of each
/// case function; a test in this crate checks it.
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_case {
    ($callback:path { $($args:tt)* }) => {
        $callback! {
            { $($args)* }
            roundtrip {
                meta_round_trips_every_buffer_kind:
                    "A snapshot with every buffer kind and all repair times loads back equal.",
                large_snapshot_round_trips:
                    "A snapshot of about 2 MB (a hundred full-size bloom filters) loads back equal.",
                unknown_channel_loads_as_empty_data:
                    "A channel never saved loads as empty data at the current schema version, not as an error.",
                save_replaces_never_merges:
                    "A later snapshot replaces the earlier one whole; nothing of the earlier one is merged in.",
                snapshot_and_history_are_written_independently:
                    "Saving a snapshot leaves the history alone and updating the history leaves the snapshot alone.",
            }
            history {
                history_loads_in_lamport_then_id_order:
                    "Appends that arrive out of order, with Lamport ties, load oldest first by (lamport, id).",
                history_order_holds_across_the_full_lamport_range:
                    "Lamport timestamps from 0 to u64::MAX keep their exact value and their order.",
                evict_removes_exactly_the_named_ids:
                    "Evicting ids removes exactly those entries and leaves the rest unchanged and in order.",
                reappending_an_id_is_idempotent:
                    "Re-appending stored ids, alone, in a batch or twice in one batch, keeps one entry per id.",
                reappending_an_id_at_a_new_lamport_moves_it:
                    "A message re-appended under a new Lamport timestamp is stored once, at its new place.",
                evicting_an_unknown_id_is_a_no_op:
                    "Evicting an id that is not stored succeeds and changes nothing, in a known or an unknown channel.",
                update_with_both_lists_applies_both:
                    "One update that appends and evicts applies both lists.",
                awkward_message_ids_stay_distinct:
                    "Ids that are prefixes of each other or hold separators, NUL, quotes or non-ASCII stay distinct and sort by bytes.",
            }
            isolation {
                channels_never_see_each_others_data:
                    "Channels whose names are prefixes of each other or hold separators never see each other's data.",
                namespaces_never_see_each_others_data:
                    "Backends in different namespaces of one storage never see each other's channels, history or hints.",
                dropping_a_channel_leaves_the_others_intact:
                    "Dropping a channel leaves the other channels of its namespace and the same channel of other namespaces intact.",
                drop_is_idempotent:
                    "Dropping a channel twice, or one never saved, succeeds and leaves it empty.",
                dropped_channel_recreated_starts_empty:
                    "A dropped channel written again starts empty: no snapshot, history or hint comes back.",
            }
            hints {
                hint_comes_back_with_its_entry:
                    "A retrieval hint, set later or carried by the append, comes back byte-exact on its history entry.",
                hint_of_an_evicted_message_is_gone:
                    "Evicting a message removes its hint; the same id appended again has none.",
                hint_for_an_unknown_message_is_ignored:
                    "A hint for a message not in the history creates nothing, in a known or an unknown channel.",
            }
            atomicity {
                commit_applies_both_parts:
                    "A commit stores its snapshot and its history batch; meta-only and history-only commits store their part.",
                failed_commit_leaves_previous_state_whole:
                    "A commit that fails between its snapshot and its history leaves the previous state whole.",
                concurrent_commits_to_one_channel_never_tear:
                    "Concurrent commits to one channel never expose a torn state: every load equals a state some order of whole commits produces.",
                commits_to_different_channels_do_not_block_each_other:
                    "Concurrent commits to different channels all succeed, none lost or blocked forever, and each channel ends with its own last state.",
            }
            r2 {
                outage_appends_reach_the_backend_in_one_commit_after_recovery:
                    "Appends during an outage succeed for the caller and reach the backend after recovery, in one commit.",
                op_without_history_change_drains_the_queue:
                    "After an outage, an operation that changes no history of its own still writes the queued changes.",
                missed_snapshot_is_repaired_by_the_next_commit:
                    "A snapshot save missed during an outage is repaired by the next successful commit.",
            }
            merge {
                evict_then_re_add_during_an_outage_ends_stored:
                    "A message evicted and then added again during an outage is stored, at its new place, after recovery.",
                add_then_evict_during_an_outage_ends_absent:
                    "Messages added and then evicted during an outage are absent from the backend after recovery.",
                stored_history_equals_the_log_after_random_outages:
                    "Through a seeded random run of receives and outages, the stored history equals the manager's log after each recovery.",
            }
            load_failures {
                unreachable_backend_fails_bootstrap_as_unavailable:
                    "A backend that cannot reach its server fails load and channel bootstrap as Unavailable, never as an empty channel.",
                corrupt_snapshot_fails_bootstrap_as_corrupt:
                    "Corrupt snapshot bytes fail load and channel bootstrap as Corrupt, and other channels stay usable.",
                unknown_schema_version_fails_bootstrap:
                    "A snapshot with an unknown schema version fails load and channel bootstrap as UnsupportedSchema, and other channels stay usable.",
                corrupt_history_row_fails_bootstrap_as_corrupt:
                    "A corrupt history row fails load and channel bootstrap as Corrupt (never a shorter history), and other channels stay usable.",
            }
            envelope {
                cut_or_flipped_snapshot_fails_bootstrap_as_corrupt:
                    "A stored snapshot cut short (even at a field boundary) or with one bit flipped fails load and bootstrap as Corrupt, never loads as less or other than was written.",
                cut_or_flipped_history_row_fails_bootstrap_as_corrupt:
                    "A stored history row cut short (even before its retrieval hint) or with one bit flipped fails load and bootstrap as Corrupt, never loads as less or other than was written.",
                version_one_values_still_load:
                    "A snapshot and history rows stored by an earlier build (schema version 1, no envelope) still load as written, and the channel takes new writes.",
            }
            restart {
                committed_state_survives_reopen:
                    "Everything committed is there, unchanged, in a new backend instance on the same storage and namespace.",
                outgoing_buffer_survives_restart:
                    "Unacknowledged messages are resent after a restart with the bytes first sent.",
                lamport_stays_monotonic_across_restarts:
                    "After a restart the Lamport clock continues above every timestamp before it, including one seen only in a sync message.",
                incoming_buffer_survives_restart:
                    "A buffered message and its missing dependencies survive a restart and are delivered once the dependency arrives.",
                repair_buffers_survive_restart_with_absolute_times:
                    "SDS-R repair entries survive a restart with their absolute times to the millisecond.",
                fifo_eviction_survives_restart:
                    "FIFO eviction reaches the backend, and a restarted log holds exactly the newest entries.",
                cascade_result_survives_restart:
                    "A delivery cascade is durable: after a restart the whole chain is logged and nothing is buffered.",
                retrieval_hints_survive_restart:
                    "Retrieval hints are stored with their messages and reused after a restart without asking the provider again.",
                removed_channel_stays_removed_after_restart:
                    "A removed channel is empty after a restart, and the other channels are intact.",
            }
            fence {
                stale_writer_commit_fails_as_fenced_and_writes_nothing:
                    "A stale writer's commit fails as Fenced and writes nothing; the newer writer's state stays whole.",
                every_write_of_a_stale_writer_is_fenced:
                    "Every write of a stale writer (snapshot, history, hint, drop, any channel) fails as Fenced and changes nothing; its reads still work.",
                no_stale_write_lands_after_a_concurrent_claim:
                    "Stale writers committing without pause while a newer writer claims: every stale commit either landed before the claim returned or failed as Fenced, so each channel ends with the newer writer's snapshot.",
                new_claim_after_restart_supersedes:
                    "Each claim, by a restarted instance or again by an old one, takes a higher epoch and supersedes every claim before it.",
                claims_are_per_namespace:
                    "A claim fences only writers of its own namespace, never those of another namespace of the same storage.",
                unclaimed_instance_is_not_fenced:
                    "An instance that never claimed is not fenced, and its writes supersede no writer's claim.",
                fenced_manager_stops_writing_and_says_so:
                    "A manager whose namespace a manager started later claimed emits WriterFenced once, stops writing, and the stored state stays the newer manager's.",
            }
            contract {
                message_ids_order_by_bytes_never_by_collation:
                    "Message ids at one Lamport timestamp load in UTF-8 byte order (case, punctuation, NUL, accents), never in a collation's order.",
                id_in_both_lists_of_one_update_ends_appended:
                    "An id named in both lists of one update ends stored as appended: evictions apply first, and forget the old hint.",
                reappend_keeps_the_stored_hint_unless_it_carries_one:
                    "A re-append keeps the stored hint when it carries none, also when it moves the entry, and replaces it when it carries one.",
                replaying_a_commit_changes_nothing:
                    "Replaying a commit, a history batch, a snapshot, a hint or a drop (a retry after an unknown outcome) leaves the state of doing it once.",
                replaying_a_split_batch_is_idempotent:
                    "A history batch split at MAX_HISTORY_BATCH, cut off after two parts and then replayed whole (twice), ends exactly as one whole batch.",
            }
            lifecycle {
                list_channels_lists_exactly_the_stored_channels:
                    "list_channels lists exactly the channels holding a snapshot or history in its namespace, sorted by bytes, never another namespace's.",
                dropped_channel_is_no_longer_listed:
                    "A dropped channel is no longer listed, the others stay listed, and writing it again lists it again.",
                close_then_reopen_keeps_everything:
                    "After close, a new instance on the same storage and namespace loads every snapshot, history entry and hint, and lists every channel.",
                manager_completes_a_split_batch_after_a_failed_part:
                    "Through the manager, a 2,500-entry history batch cut off after its first part leaves the old snapshot, and the retry stores exactly the log.",
                shutdown_writes_everything_and_reopen_finds_every_channel:
                    "A manager shut down during an outage's backoff writes its queue and closes the backend; after a restart, reopening the stored channels finds every one with its outgoing buffer.",
            }
            scale {
                thousand_channels_of_thousand_entries_load_back_exactly:
                    "1,000 channels of 1,000 history entries each load back exactly.",
            }
        }
    };
}

macro_rules! define_catalog {
    ({} $( $group:ident { $( $name:ident : $doc:literal ),* $(,)? } )*) => {
        /// Every case of the suite, in the order the suite runs them.
        pub const CASES: &[CaseInfo] = &[
            $($( CaseInfo { group: stringify!($group), name: stringify!($name), doc: $doc }, )*)*
        ];

        /// The function of the case called `name`, for a harness type.
        pub(crate) fn case_fn<H: Harness>(name: &str) -> Option<CaseFn<H>> {
            match name {
                $($(
                    stringify!($name) => {
                        let run: CaseFn<H> =
                            |cx| ::std::boxed::Box::pin(crate::cases::$group::$name(cx));
                        Some(run)
                    }
                )*)*
                _ => None,
            }
        }
    };
}

crate::__for_each_case! { define_catalog {} }

/// The catalog row of the case called `name`.
pub fn case_info(name: &str) -> Option<&'static CaseInfo> {
    CASES.iter().find(|case| case.name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::memory::MemoryHarness;

    #[test]
    fn names_are_unique_and_every_case_has_a_function() {
        let mut seen = HashSet::new();
        for case in CASES {
            assert!(seen.insert(case.name), "duplicate case {}", case.name);
            assert!(
                case_fn::<MemoryHarness>(case.name).is_some(),
                "{}",
                case.name
            );
            assert!(
                !case.doc.contains('\n'),
                "{}: doc must be one line",
                case.name
            );
            assert!(
                case.doc.ends_with('.'),
                "{}: doc must be a sentence",
                case.name
            );
        }
        assert!(case_fn::<MemoryHarness>("no_such_case").is_none());
        assert_eq!(case_info(CASES[0].name), Some(&CASES[0]));
    }
}
