//! The shared helpers live in `flashmm_testkit::harness`; this keeps the test modules' paths.

pub use flashmm_testkit::harness::*;

#[test]
fn the_testkit_names_the_recorded_fixture_the_binary_imports() {
    assert_eq!(RECORDED_FIXTURE, flashmm::mode::replay::RECORDED_FIXTURE);
}
