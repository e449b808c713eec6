//! Axis ticks: "nice" steps (1, 2, 5 x 10^k) for numbers, clock-friendly steps for time.

use chrono::{TimeZone, Utc};

/// The range a set of values spans, widened so that it is never empty.
pub fn span(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi > lo {
        return (lo, hi);
    }
    let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 1e-3 };
    (lo - pad, hi + pad)
}

/// A step of 1, 2 or 5 x 10^k near `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Ticks inside [lo, hi], about `n` of them (at least two where a nice step allows), with the
/// step they use.
pub fn ticks(lo: f64, hi: f64, n: usize) -> (Vec<f64>, f64) {
    let mut n = n.max(1);
    loop {
        let step = nice_step((hi - lo) / n as f64);
        let out = ticks_with(lo, hi, step);
        if out.len() >= 2 || n >= 64 {
            return (out, step);
        }
        n *= 2;
    }
}

/// Decimal places that show a step exactly (0.25 -> 2, 5 -> 0), at most 8.
pub fn decimals(step: f64) -> usize {
    let mut d = 0;
    let mut s = step.abs();
    while d < 8 && (s - s.round()).abs() > 1e-9 * s.max(1.0) {
        s *= 10.0;
        d += 1;
    }
    d
}

/// A number with `d` decimals and no negative zero.
pub fn fmt(v: f64, d: usize) -> String {
    let s = format!("{v:.d$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

const TIME_STEPS_S: [f64; 21] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Time ticks for x in seconds since `origin_ns`, on round clock times (a 60 s step ticks on
/// the minute), with the step they use.
pub fn time_ticks(origin_ns: i64, lo: f64, hi: f64, n: usize) -> (Vec<f64>, f64) {
    let raw = (hi - lo) / n.max(1) as f64;
    let step = TIME_STEPS_S
        .iter()
        .copied()
        .find(|s| *s >= raw)
        .unwrap_or_else(|| (raw / 3600.0).ceil() * 3600.0);
    // Seconds since midnight of the origin's day: small enough for f64 to keep microseconds.
    let day = origin_ns.rem_euclid(86_400_000_000_000) as f64 / 1e9;
    let ticks = ticks_with(day + lo, day + hi, step)
        .into_iter()
        .map(|t| t - day)
        .collect();
    (ticks, step)
}

fn ticks_with(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// The UTC clock time of `x` seconds after `origin_ns`: `23:55:10`, with milliseconds when the
/// step is under a second, with the date when it is an hour or more.
pub fn clock(origin_ns: i64, x: f64, step: f64) -> String {
    let ns = origin_ns.saturating_add((x * 1e9).round() as i64);
    let t = Utc.timestamp_nanos(ns);
    if step < 1.0 {
        t.format("%H:%M:%S%.3f").to_string()
    } else if step < 3600.0 {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%m-%d %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks() {
        let (t, s) = ticks(0.3, 9.7, 5);
        assert_eq!(s, 2.0);
        assert_eq!(t, [2.0, 4.0, 6.0, 8.0]);
        assert_eq!(decimals(0.25), 2);
        assert_eq!(decimals(5.0), 0);
        assert_eq!(fmt(-0.0001, 2), "0.00");
        let (t, s) = time_ticks(0, 0.0, 360.0, 8);
        assert_eq!(s, 60.0);
        assert_eq!(t.len(), 7);
        // An origin at 00:00:30 ticks on the minute: 30 s after it.
        let (t, _) = time_ticks(30_000_000_000, 0.0, 100.0, 2);
        assert_eq!(t[0], 30.0);
        assert_eq!(clock(0, 61.5, 1.0), "00:01:01");
        assert_eq!(clock(0, 61.5, 0.5), "00:01:01.500");
    }
}
