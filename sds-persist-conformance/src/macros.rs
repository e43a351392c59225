//! The test-generating macro.

/// Expands to one `#[test]` per conformance case, named after the case, each running the
/// case against the harness the expression makes.
///
/// ```
/// # async fn connect_my_harness() -> sds_persist_conformance::MemoryHarness {
/// #     sds_persist_conformance::MemoryHarness::new()
/// # }
/// // In the backend crate's tests/conformance.rs:
/// sds_persist_conformance::conformance_tests!(connect_my_harness().await);
/// # fn main() {}
/// ```
///
/// The expression is evaluated afresh for every test, inside the test's runtime (a
/// multi-thread tokio runtime with two workers, as `#[tokio::test(flavor = "multi_thread",
/// worker_threads = 2)]` would build), so it may `.await`. The backend crate needs no
/// tokio dependency of its own for this.
///
/// Outcomes, as `cargo test` shows them:
/// - passed: the test passes;
/// - failed: the test panics with what was expected and what was found;
/// - not run (the case needs a capability the harness declares absent, and only then): the
///   test passes and prints `NOT RUN: <case> against <backend>: needs <capability>,
///   declared absent: <reason>` to stderr, past the output capture, so it is visible in
///   every run. Which cases run is decided by the harness's declaration alone; no
///   environment variable changes it.
///
/// Invoke it at most once per module (the test names are the case names); wrap it in a
/// module to prefix them, e.g. `mod conformance { … }`.
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr $(,)?) => {
        $crate::__for_each_case! { $crate::__conformance_tests { $harness } }
    };
}

/// Expands the case table into tests; see [`conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ({ $harness:expr } $( $group:ident { $( $name:ident : $doc:literal ),* $(,)? } )*) => {
        $($(
            #[doc = $doc]
            #[test]
            fn $name() {
                if let ::std::result::Result::Err(message) =
                    $crate::__private::run_test(::std::stringify!($name), async { $harness })
                {
                    ::std::panic!("{}", message);
                }
            }
        )*)*
    };
}
