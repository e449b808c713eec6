//! Test servers and helpers, used only from `[dev-dependencies]`, tests, examples and benches:
//! the release binary contains none of this (`cargo tree -e normal -p flashmm` does not list
//! this crate; `.ci/run` checks).
//!
//! `citrex`, `sei` and `azure` speak the real protocols on 127.0.0.1; `http` is the small
//! HTTP/1.1 server they share; `harness` loads the shipped fixtures into fresh journals;
//! `scale` repeats the shipped recording into large ones for measuring.

pub mod azure;
pub mod citrex;
pub mod harness;
pub mod http;
pub mod scale;
pub mod sei;
