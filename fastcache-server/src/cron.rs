//! Periodic work: the active expiry cycle, ten times a second (Redis' `hz`).

use std::sync::Arc;
use std::time::Duration;

use crate::server::Shared;

/// Runs until the task is aborted at shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Expiring keys mid-recovery would journal deletions the replay has
        // not reached yet.
        if shared.loading.is_active() {
            continue;
        }
        // A replica's keys expire by its primary's DELs: a deletion of its
        // own would give its WAL a record the primary does not have.
        if shared.replication.is_replica() {
            continue;
        }
        let engine = shared.engine.clone();
        let persistence = shared.persistence().cloned();
        // A quarter of a tick at most, as Redis' slow cycle (25% of CPU).
        // Expired keys are logged as DEL like any write (invariant 2).
        let report = tokio::task::spawn_blocking(move || {
            let mut journal = crate::persist::WalJournal::new(persistence.as_deref());
            engine.active_expire_cycle(&mut journal, Duration::from_millis(25))
        })
        .await;
        if let Ok(report) = report {
            shared.broker.publish_events(&report.events);
        }
    }
}
