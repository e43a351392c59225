//! The main job over Redis: `sds simulate --backend redis://…` converges, run as a user
//! runs it, under a key prefix of its own (`?sds_prefix=`, unique to the run, deleted
//! afterwards) so reruns on the same server never see each other's state. The server is
//! `SDS_TEST_REDIS_URL` (default the local one); an unreachable server fails the test.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use sds_persist_redis::RedisPersistence;

fn server_url() -> String {
    std::env::var("SDS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_converges_on_redis() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("sds-simulate-{}-{nanos:x}:", std::process::id());
    let base = server_url();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}sds_prefix={prefix}");

    let output = Command::new(env!("CARGO_BIN_EXE_sds"))
        .args([
            "simulate",
            "--backend",
            &url,
            "--messages",
            "80",
            "--loss",
            "0.2",
            "--restarts",
            "2",
            "--seed",
            "3",
        ])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the sds binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    // What the run stored is inspectable, then the run's keys go.
    let stored = RedisPersistence::builder(&url)
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|err| panic!("the Redis server at {base} is not reachable: {err}"));
    let namespaces = stored.stored_namespaces().await.unwrap();
    for namespace in namespaces.keys() {
        stored
            .with_namespace(namespace)
            .delete_namespace()
            .await
            .unwrap();
    }
    assert!(stored.stored_namespaces().await.unwrap().is_empty());

    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("verdict: CONVERGED"), "{stdout}{stderr}");
    assert_eq!(
        namespaces.len(),
        5,
        "one namespace per participant: {namespaces:?}"
    );
}
