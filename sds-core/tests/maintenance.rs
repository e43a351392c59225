//! The periodic work on tokio timers: it runs the sweeps, and it stops with its handle or
//! with the manager. Tokio's clock is paused and advanced by the test, never slept on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use sds_core::{Event, ReliabilityConfig};
use support::{Peer, test_config};

fn config() -> ReliabilityConfig {
    ReliabilityConfig {
        resend_interval_ms: 1_000,
        buffer_sweep_interval_ms: 500,
        repair_sweep_interval_ms: 500,
        sync_interval_ms: 10_000,
        ..test_config()
    }
}

async fn next_resend(peer: &mut Peer) -> Event {
    loop {
        match peer.events.recv().await {
            Some(event @ Event::Resend { .. }) => return event,
            Some(_) => continue,
            None => panic!("event stream ended"),
        }
    }
}

// Started timers run the outgoing sweep: an unacknowledged message is resent without any
// direct sweep call.
#[tokio::test(start_paused = true)]
async fn timers_run_the_sweeps() {
    let mut alice = Peer::with_config("alice", config());
    let _timers = alice.manager.start_maintenance();
    alice.send("room", "m1").await;
    alice.clock.advance(1_000);
    tokio::time::advance(Duration::from_millis(1_001)).await;
    assert!(
        matches!(next_resend(&mut alice).await, Event::Resend { message_id, .. } if message_id == "m1")
    );
}

// Dropping the handle stops the timers: time passes, nothing more is swept.
#[tokio::test(start_paused = true)]
async fn dropping_the_handle_stops_the_timers() {
    let mut alice = Peer::with_config("alice", config());
    let timers = alice.manager.start_maintenance();
    alice.send("room", "m1").await;
    timers.shutdown();
    alice.clock.advance(10_000);
    for _ in 0..10 {
        tokio::time::advance(Duration::from_millis(1_000)).await;
        tokio::task::yield_now().await;
    }
    assert!(alice.take_events().is_empty());
}

// Dropping the manager ends the timers too: they hold no strong reference, so the event
// stream closes once the manager is gone.
#[tokio::test(start_paused = true)]
async fn dropping_the_manager_ends_the_timers() {
    let alice = Peer::with_config("alice", config());
    let _timers = alice.manager.start_maintenance();
    let support::Peer {
        manager,
        mut events,
        ..
    } = alice;
    drop(manager);
    tokio::time::advance(Duration::from_millis(2_000)).await;
    assert_eq!(events.recv().await, None);
}
