//! Exponential backoff with jitter, for everything that reconnects or retries over the network.
//! (Edge code only: the core never waits.)

use std::time::Duration;

pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    attempt: u32,
    state: u64,
}

impl Backoff {
    /// `seed` only decorrelates processes; any value works.
    pub fn new(base_ms: u64, max_ms: u64, seed: u64) -> Backoff {
        Backoff {
            base_ms: base_ms.max(1),
            max_ms: max_ms.max(base_ms.max(1)),
            attempt: 0,
            state: seed | 1,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next wait: base x 2^attempt, capped, then a uniform draw from its upper half.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(20))
            .min(self.max_ms);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        Duration::from_millis(half + self.next_u64() % (step - half + 1))
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A seed that differs between processes and calls.
pub fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (std::process::id() as u64).rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let mut b = Backoff::new(100, 1000, 7);
        let d: Vec<u64> = (0..6).map(|_| b.next_delay().as_millis() as u64).collect();
        assert!((50..=100).contains(&d[0]), "{d:?}");
        assert!((100..=200).contains(&d[1]), "{d:?}");
        assert!(d[5] <= 1000 && d[5] >= 500, "{d:?}");
        b.reset();
        assert!(b.next_delay().as_millis() <= 100);
    }
}
