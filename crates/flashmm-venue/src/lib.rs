//! FlashMM's adapters at the edge, the only library code that talks to the network: Citrex
//! (EIP-712 signing, REST, the market and account streams), Sei's `newHeads`, the Azure OpenAI
//! client, and the recorded and stub predictors. Each turns the outside world into the core's
//! inputs; none decides anything.

pub mod azure;
pub mod backoff;
pub mod citrex;
pub mod feed;
pub mod recorded;
pub mod stub;
