//! The whole persistence conformance suite against the PostgreSQL server at
//! `SDS_TEST_POSTGRES_URL` (default the local one), one test per case, each in fresh
//! namespaces. An unreachable server fails every test: nothing is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

sds_persist_conformance::conformance_tests!(support::harness().await);
