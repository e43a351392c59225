//! The periodic work on tokio timers.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval};

use super::sweeps::Sweep;
use super::{Inner, ReliabilityManager};

/// The running maintenance timers. Dropping the handle, calling [`Self::shutdown`], or
/// dropping every clone of the manager stops them.
#[derive(Debug)]
pub struct MaintenanceHandle {
    tasks: Vec<JoinHandle<()>>,
}

impl MaintenanceHandle {
    /// Stops the timers.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for MaintenanceHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Job {
    Sweep(Sweep),
    CleanBloom,
    SyncDue,
    UnloadIdle,
}

fn spawn_job(inner: Weak<Inner>, period_ms: u64, job: Job) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = interval(Duration::from_millis(period_ms.max(1)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick fires at once; the work is due one period later.
        ticker.tick().await;
        loop {
            ticker.tick().await;
            // Holding only a weak reference lets the timers end with the manager.
            let Some(inner) = inner.upgrade() else { break };
            let manager = ReliabilityManager { inner };
            match job {
                Job::Sweep(sweep) => manager.sweep(sweep).await,
                Job::CleanBloom => manager.clean_bloom_filters().await,
                Job::SyncDue => manager.announce_sync_due(),
                Job::UnloadIdle => {
                    manager.unload_idle_channels().await;
                }
            }
        }
    })
}

impl ReliabilityManager {
    /// Starts the periodic work on the current tokio runtime: outgoing and incoming
    /// sweeps and bloom cleaning every `buffer_sweep_interval_ms`, the repair sweep every
    /// `repair_sweep_interval_ms`, [`crate::Event::SyncDue`] every `sync_interval_ms`, and,
    /// with `channel_idle_unload_ms` set, the unloading of idle channels every
    /// `buffer_sweep_interval_ms`.
    ///
    /// Each pass is also callable directly (`sweep_outgoing`, …) for tests and for
    /// applications with their own scheduler.
    pub fn start_maintenance(&self) -> MaintenanceHandle {
        let config = &self.inner.settings.config;
        let weak = Arc::downgrade(&self.inner);
        let mut jobs = vec![
            (config.buffer_sweep_interval_ms, Job::Sweep(Sweep::Outgoing)),
            (config.buffer_sweep_interval_ms, Job::Sweep(Sweep::Incoming)),
            (config.buffer_sweep_interval_ms, Job::CleanBloom),
            (config.repair_sweep_interval_ms, Job::Sweep(Sweep::Repairs)),
            (config.sync_interval_ms, Job::SyncDue),
        ];
        if config.channel_idle_unload_ms.is_some() {
            jobs.push((config.buffer_sweep_interval_ms, Job::UnloadIdle));
        }
        MaintenanceHandle {
            tasks: jobs
                .into_iter()
                .map(|(period, job)| spawn_job(weak.clone(), period, job))
                .collect(),
        }
    }
}
