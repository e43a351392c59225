//! The main job over PostgreSQL: `sds simulate --backend postgres://…` converges, run as a
//! user runs it, in a schema of its own (unique to the run, dropped afterwards) so reruns
//! on the same database never see each other's state. The server is
//! `SDS_TEST_POSTGRES_URL` (default the local one); an unreachable server fails the test.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use sds_persist_postgres::PostgresPersistence;

fn server_url() -> String {
    std::env::var("SDS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_converges_on_postgres() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("sds_simulate_{}_{nanos}", std::process::id());
    let base = server_url();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}sds_schema={schema}");

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

    // What the run stored is inspectable, then the run's schema goes.
    let stored = PostgresPersistence::builder(&url).connect_lazy().unwrap();
    let namespaces = stored.stored_namespaces().await;
    stored.drop_schema().await.unwrap();

    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("verdict: CONVERGED"), "{stdout}{stderr}");
    assert!(
        stdout.contains("sds_schema="),
        "the run says where it wrote: {stdout}"
    );
    let namespaces = namespaces.unwrap();
    assert_eq!(
        namespaces.len(),
        5,
        "one namespace per participant: {namespaces:?}"
    );
}
