//! Citrex, the order book on Sei: EIP-712 signing, the REST client. The local fake of the venue is in flashmm-testkit.

pub mod client;
pub mod eip712;
pub mod reconcile;
pub mod tracker;
pub mod wire;
