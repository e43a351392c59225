//! The main job over the networked backends: `sds simulate --backend postgres://…` and
//! `--backend redis://…` converge, run as a user runs them, each in a place of its own
//! (a schema, a key prefix; unique to the run, removed afterwards) so reruns on the same
//! server never see each other's state. The servers are `SDS_TEST_POSTGRES_URL` and
//! `SDS_TEST_REDIS_URL` (default the local ones); an unreachable server fails the test.

#![cfg(any(feature = "postgres", feature = "redis"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// A name no other run of this test uses.
fn unique(prefix: &str, separator: char) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}{separator}{}{separator}{nanos:x}",
        std::process::id()
    )
}

/// `base` with one more query parameter.
fn with_param(base: &str, param: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{param}")
}

/// Runs the main job against `url` (80 messages, 20% loss, 2 restarts) and returns its
/// success, stdout and stderr.
fn simulate(url: &str) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sds"))
        .args([
            "simulate",
            "--backend",
            url,
            "--messages",
            "80",
            "--loss",
            "0.2",
        ])
        .args(["--restarts", "2", "--seed", "3"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the sds binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The run converged and stored one namespace per participant.
fn assert_converged(run: &(bool, String, String), namespaces: usize) {
    let (success, stdout, stderr) = run;
    assert!(success, "{stdout}{stderr}");
    assert!(stdout.contains("verdict: CONVERGED"), "{stdout}{stderr}");
    assert_eq!(namespaces, 5, "one namespace per participant");
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_converges_on_postgres() {
    use sds_persist_postgres::PostgresPersistence;
    let base = std::env::var("SDS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = unique("sds_simulate", '_');
    let url = with_param(&base, &format!("sds_schema={schema}"));
    let run = simulate(&url);

    // What the run stored is inspectable, then the run's schema goes.
    let stored = PostgresPersistence::builder(&url).connect_lazy().unwrap();
    let namespaces = stored.stored_namespaces().await;
    stored.drop_schema().await.unwrap();

    assert!(
        run.1.contains("sds_schema="),
        "the run says where it wrote: {}",
        run.1
    );
    assert_converged(&run, namespaces.unwrap().len());
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_converges_on_redis() {
    use sds_persist_redis::RedisPersistence;
    let base =
        std::env::var("SDS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("{}:", unique("sds-simulate", '-'));
    let url = with_param(&base, &format!("sds_prefix={prefix}"));
    let run = simulate(&url);

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

    assert_converged(&run, namespaces.len());
}
