//! The seed's circuit breaker: `breaker_failures` consecutive failures open it; after
//! `breaker_cooldown_s` it goes half-open and lets one probe through; a success closes it, a
//! failure opens it again. Time is the journal's, so replay sees the same transitions.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Clone, Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown_ns: i64,
    state: BreakerState,
    consecutive: u32,
    opened_at: i64,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown_s: u64) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cooldown_ns: cooldown_s as i64 * 1_000_000_000,
            state: BreakerState::Closed,
            consecutive: 0,
            opened_at: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    pub fn on_success(&mut self) {
        self.consecutive = 0;
        self.state = BreakerState::Closed;
    }

    pub fn on_failure(&mut self, now: i64) {
        self.consecutive = self.consecutive.saturating_add(1);
        if self.state == BreakerState::HalfOpen || self.consecutive >= self.threshold {
            self.state = BreakerState::Open;
            self.opened_at = now;
        }
    }

    /// Moves an open breaker to half-open once the cooldown has passed.
    pub fn poll(&mut self, now: i64) {
        if self.state == BreakerState::Open
            && now >= self.opened_at.saturating_add(self.cooldown_ns)
        {
            self.state = BreakerState::HalfOpen;
        }
    }

    /// May a request go out, with `in_flight` already out?
    pub fn allows(&self, in_flight: usize) -> bool {
        match self.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => in_flight == 0,
            BreakerState::Open => false,
        }
    }

    pub fn deadline(&self) -> Option<i64> {
        (self.state == BreakerState::Open).then(|| self.opened_at.saturating_add(self.cooldown_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_open_then_half_open_then_close() {
        let s = 1_000_000_000;
        let mut b = Breaker::new(5, 30);
        for i in 0..4 {
            b.on_failure(i);
            assert_eq!(b.state(), BreakerState::Closed);
        }
        b.on_failure(10 * s);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allows(0));
        b.poll(39 * s);
        assert_eq!(b.state(), BreakerState::Open);
        b.poll(40 * s);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allows(0) && !b.allows(1));
        // A failed probe reopens it at once.
        b.on_failure(41 * s);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.deadline(), Some(71 * s));
        b.poll(71 * s);
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 0);
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut b = Breaker::new(3, 30);
        b.on_failure(0);
        b.on_failure(0);
        b.on_success();
        b.on_failure(0);
        b.on_failure(0);
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
