//! Citrex, the order book on Sei: EIP-712 signing, the REST client, and a local fake of the venue.

pub mod client;
pub mod eip712;
pub mod fake;
pub mod wire;
