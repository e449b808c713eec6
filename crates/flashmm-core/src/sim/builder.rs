//! Building a simulated venue: the models `[venue]` names, any of which a caller may replace
//! (a test's own queue model, a fee schedule), in the style of hftbacktest's builder.

use super::latency_of;
use super::model::{BpsFees, ConservativeQueue, FeeModel, LatencyModel, QueueModel};
use super::queue::{ProbQueue, Shape};
use super::SimVenue;
use crate::config::{MarketConfig, QueueKind, VenueConfig};
use crate::contract::Contract;

pub struct Builder {
    queue: Box<dyn QueueModel>,
    latency: Box<dyn LatencyModel>,
    fees: Box<dyn FeeModel>,
    contract: Contract,
}

impl Builder {
    /// The models `cfg` asks for, for a venue trading `market`.
    pub fn from_config(cfg: &VenueConfig, market: &MarketConfig) -> Builder {
        let queue: Box<dyn QueueModel> = match cfg.queue {
            QueueKind::Conservative => Box::new(ConservativeQueue),
            QueueKind::Power => Box::new(ProbQueue {
                shape: Shape::Power(cfg.queue_power),
            }),
            QueueKind::Log => Box::new(ProbQueue { shape: Shape::Log }),
        };
        Builder {
            queue,
            latency: latency_of(cfg),
            fees: Box::new(BpsFees {
                maker_bps: cfg.maker_fee_bps,
                taker_bps: cfg.taker_fee_bps,
            }),
            contract: Contract::of(market),
        }
    }

    pub fn queue(mut self, q: Box<dyn QueueModel>) -> Builder {
        self.queue = q;
        self
    }

    pub fn latency(mut self, l: Box<dyn LatencyModel>) -> Builder {
        self.latency = l;
        self
    }

    pub fn fees(mut self, f: Box<dyn FeeModel>) -> Builder {
        self.fees = f;
        self
    }

    /// Fees are charged on notional in this contract's settlement currency.
    pub fn contract(mut self, c: Contract) -> Builder {
        self.contract = c;
        self
    }

    pub fn build(self) -> SimVenue {
        SimVenue::with_models(self.queue, self.latency, self.fees).for_contract(self.contract)
    }
}
