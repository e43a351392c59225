//! The whole persistence conformance suite against the shared Redis server
//! (`SDS_TEST_REDIS_URL`, default the local one), one test per case, each in fresh
//! namespaces that the harness deletes afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use sds_persist_redis::conformance::RedisHarness;

async fn harness() -> RedisHarness {
    let url = support::redis_url();
    support::require_shared_server(&url).await;
    RedisHarness::connect(&url)
        .await
        .expect("connect the conformance harness")
}

sds_persist_conformance::conformance_tests!(harness().await);
