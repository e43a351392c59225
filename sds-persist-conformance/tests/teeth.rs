//! Proof that the suite has teeth: the reference backend with one defect built in must
//! fail the cases meant to catch that defect.
//!
//! The `scale` group is left out of these runs (it catches nothing the others miss and is
//! the slowest); every other case runs, and the report of each run is printed.

mod support;

use sds_persist_conformance::{SuiteReport, run_selected};
use support::{BytesHarness, Defect};

async fn run_with(defect: Defect) -> SuiteReport {
    let report = run_selected(&BytesHarness::with_defect(defect), |case| {
        case.group != "scale"
    })
    .await;
    println!("{report}");
    report
}

async fn assert_caught(defect: Defect, expected: &[&str]) {
    let report = run_with(defect).await;
    let failed = report.failed_names();
    for case in expected {
        assert!(
            failed.contains(case),
            "{defect:?} should fail {case}; failed cases: {failed:?}\n{report}"
        );
    }
    assert!(
        report.not_run_names().is_empty(),
        "every case runs against the reference harness\n{report}"
    );
}

macro_rules! teeth {
    ($( $test:ident: $defect:ident => [$($case:literal),+ $(,)?]; )*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            assert_caught(Defect::$defect, &[$($case),+]).await;
        }
    )*};
}

teeth! {
    history_loaded_out_of_order: InsertionOrderHistory => [
        "history_loads_in_lamport_then_id_order",
    ];
    drop_leaving_history_behind: DropLeavesHistory => [
        "dropped_channel_recreated_starts_empty",
        "removed_channel_stays_removed_after_restart",
    ];
    commit_applying_meta_but_not_history: CommitSkipsHistory => [
        "commit_applies_both_parts",
        "outage_appends_reach_the_backend_in_one_commit_after_recovery",
    ];
    commit_not_atomic: NonAtomicCommit => [
        "failed_commit_leaves_previous_state_whole",
    ];
    save_merging_snapshots: SaveMerges => [
        "save_replaces_never_merges",
    ];
    unknown_channel_as_error: UnknownChannelIsError => [
        "unknown_channel_loads_as_empty_data",
    ];
    namespaces_shared: SharedNamespaces => [
        "namespaces_never_see_each_others_data",
    ];
    evictions_ignored: EvictIgnored => [
        "evict_removes_exactly_the_named_ids",
        "fifo_eviction_survives_restart",
    ];
    appends_not_idempotent: AppendNotIdempotent => [
        "reappending_an_id_is_idempotent",
    ];
    stale_row_after_move: StaleRowOnMove => [
        "reappending_an_id_at_a_new_lamport_moves_it",
        "evict_then_re_add_during_an_outage_ends_stored",
    ];
    hints_lost: HintsLost => [
        "hint_comes_back_with_its_entry",
        "retrieval_hints_survive_restart",
    ];
    hints_outliving_eviction: HintsOutliveEviction => [
        "hint_of_an_evicted_message_is_gone",
    ];
    lamport_ordered_as_signed: SignedLamport => [
        "history_order_holds_across_the_full_lamport_range",
    ];
    channel_names_matched_by_prefix: PrefixChannels => [
        "channels_never_see_each_others_data",
    ];
    drop_by_prefix: PrefixDrop => [
        "dropping_a_channel_leaves_the_others_intact",
    ];
    corrupt_rows_skipped: CorruptRowsSkipped => [
        "corrupt_history_row_fails_bootstrap_as_corrupt",
        "cut_or_flipped_history_row_fails_bootstrap_as_corrupt",
    ];
    commit_split_in_two: SplitCommit => [
        "concurrent_commits_to_one_channel_never_tear",
    ];
    unknown_schema_loaded_as_empty: UnknownSchemaLoadsEmpty => [
        "unknown_schema_version_fails_bootstrap",
    ];
    unreachable_server_loaded_as_empty: UnreachableLoadsEmpty => [
        "unreachable_backend_fails_bootstrap_as_unavailable",
    ];
    ids_sorted_by_locale_collation: CollatedIds => [
        "message_ids_order_by_bytes_never_by_collation",
        "awkward_message_ids_stay_distinct",
    ];
    lamports_rounded_as_f64_scores: FloatLamport => [
        "history_order_holds_across_the_full_lamport_range",
    ];
    fence_ignored: IgnoresFence => [
        "stale_writer_commit_fails_as_fenced_and_writes_nothing",
        "no_stale_write_lands_after_a_concurrent_claim",
        "every_write_of_a_stale_writer_is_fenced",
        "new_claim_after_restart_supersedes",
        "claims_are_per_namespace",
        "unclaimed_instance_is_not_fenced",
        "fenced_manager_stops_writing_and_says_so",
    ];
    epoch_kept_in_the_process: EpochNotShared => [
        "stale_writer_commit_fails_as_fenced_and_writes_nothing",
        "new_claim_after_restart_supersedes",
        "fenced_manager_stops_writing_and_says_so",
    ];
}
