//! The shared helpers live in `flashmm_testkit::harness`; this keeps the test modules' paths,
//! and adds the waits the asynchronous tests share.

pub use flashmm_testkit::harness::*;

use std::future::Future;
use std::time::Duration;

/// How long a test waits for something that must happen. Generous, because a loaded CI machine
/// can be many times slower than a quiet one; a wait ends as soon as its condition holds, so
/// this costs nothing when things work.
pub const PATIENCE: Duration = Duration::from_secs(30);

const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` until it holds or `deadline` passes; whether it held.
pub async fn poll_until<F, Fut>(deadline: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `cond` holds; panics naming `what` if it has not after `deadline`.
pub async fn wait_for(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_for_async(deadline, what, || std::future::ready(cond())).await
}

/// `wait_for` with a condition that has to ask something over the network.
pub async fn wait_for_async<F, Fut>(deadline: Duration, what: &str, cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        poll_until(deadline, cond).await,
        "timed out after {deadline:?} waiting for {what}"
    );
}

#[test]
fn the_testkit_names_the_recorded_fixture_the_binary_imports() {
    assert_eq!(RECORDED_FIXTURE, flashmm::mode::replay::RECORDED_FIXTURE);
}
