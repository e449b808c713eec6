//! Histograms: nice bin edges over the values, bars with their counts.

use super::{axis, esc, BOTTOM, LEFT, RIGHT, TOP};
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub struct Bins {
    /// `counts.len() + 1` edges; a bin holds values in [edge i, edge i+1), the last one also
    /// its right edge.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Bins {
    /// About `target` bins of a nice width over `values` (non-finite values are left out).
    pub fn of(values: &[f64], target: usize) -> Bins {
        let vals: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if vals.is_empty() {
            return Bins {
                edges: Vec::new(),
                counts: Vec::new(),
            };
        }
        let lo = vals.iter().copied().fold(f64::MAX, f64::min);
        let hi = vals.iter().copied().fold(f64::MIN, f64::max);
        let (a, b) = axis::span(lo, hi);
        let step = axis::nice_step((b - a) / target.max(1) as f64);
        let start = (lo / step).floor() * step;
        let n = (((hi - start) / step).floor() as usize + 1).max(1);
        let mut counts = vec![0u64; n];
        for v in vals {
            let i = (((v - start) / step).floor().max(0.0) as usize).min(n - 1);
            counts[i] += 1;
        }
        let d = axis::decimals(step) + 1;
        let round = |x: f64| {
            let p = 10f64.powi(d as i32);
            (x * p).round() / p
        };
        let edges = (0..=n).map(|i| round(start + i as f64 * step)).collect();
        Bins { edges, counts }
    }
}

pub struct Histogram {
    key: String,
    title: String,
    x_label: String,
    bins: Bins,
    width: f64,
    height: f64,
    color: String,
}

impl Histogram {
    pub fn new(key: &str, title: &str, x_label: &str, bins: Bins) -> Histogram {
        Histogram {
            key: key.into(),
            title: title.into(),
            x_label: x_label.into(),
            bins,
            width: 460.0,
            height: 260.0,
            color: super::BLUE.into(),
        }
    }

    pub fn size(mut self, width: f64, height: f64) -> Histogram {
        self.width = width.max(LEFT + RIGHT + 40.0);
        self.height = height.max(TOP + BOTTOM + 40.0);
        self
    }

    pub fn render(&self) -> String {
        let (w, h) = (self.width, self.height);
        let (pw, ph) = (w - LEFT - RIGHT, h - TOP - BOTTOM);
        let mut s = String::with_capacity(4096);
        let total: u64 = self.bins.counts.iter().sum();
        let _ = write!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart histogram chart-{k}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11"><title>{t}</title><rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/><text class="chart-title" x="{LEFT}" y="18" font-size="13" font-weight="bold">{t}</text><text x="{:.1}" y="32" text-anchor="end" fill="#555555">{total} values</text><rect class="plot" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#bbbbbb"/>"##,
            w - RIGHT,
            k = esc(&self.key),
            t = esc(&self.title),
        );
        let (Some(&x0), Some(&x1)) = (self.bins.edges.first(), self.bins.edges.last()) else {
            let _ = write!(
                s,
                r##"<text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle" fill="#737373">no values</text></svg>"##,
                LEFT + pw / 2.0,
                TOP + ph / 2.0
            );
            return s;
        };
        let top = self.bins.counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let (x0, x1) = axis::span(x0, x1);
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |c: f64| TOP + ph - c / (top * 1.08) * ph;
        let (yt, ystep) = axis::ticks(0.0, top, 4);
        s.push_str(r#"<g class="axis y-axis">"#);
        for t in yt.into_iter().filter(|t| (t - t.round()).abs() < 1e-9) {
            let y = sy(t);
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eeeeee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                y + 3.5,
                axis::fmt(t, axis::decimals(ystep.max(1.0)))
            );
        }
        let _ = write!(
            s,
            r#"<text class="axis-label" x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">count</text></g><g class="bars" data-series="{}" data-count="{total}">"#,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            esc(&self.key)
        );
        let step = self.bins.edges.get(1).map_or(1.0, |e| e - x0);
        let d = axis::decimals(step);
        for (i, &c) in self.bins.counts.iter().enumerate() {
            let (a, b) = (self.bins.edges[i], self.bins.edges[i + 1]);
            let (xa, xb) = (sx(a), sx(b));
            let y = sy(c as f64);
            let _ = write!(
                s,
                r##"<rect class="bar" data-count="{c}" data-from="{fa}" data-to="{fb}" x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{col}" stroke="#ffffff" stroke-width="0.5"><title>{fa} to {fb}: {c}</title></rect>"##,
                xa,
                (xb - xa).max(0.5),
                (TOP + ph - y).max(0.0),
                fa = axis::fmt(a, d),
                fb = axis::fmt(b, d),
                col = esc(&self.color),
            );
        }
        s.push_str("</g>");
        if x0 < 0.0 && x1 > 0.0 {
            let x = sx(0.0);
            let _ = write!(
                s,
                r##"<line class="zero" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#333333" stroke-dasharray="3,2"/>"##,
                TOP + ph
            );
        }
        let n = ((pw / 36.0) as usize).max(4);
        let (xt, xstep) = axis::ticks(x0, x1, n);
        let xd = axis::decimals(xstep);
        s.push_str(r#"<g class="axis x-axis">"#);
        for t in xt {
            let x = sx(t);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#888888"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph + 4.0,
                TOP + ph + 16.0,
                axis::fmt(t, xd)
            );
        }
        let _ = write!(
            s,
            r#"<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g></svg>"#,
            LEFT + pw / 2.0,
            TOP + ph + 32.0,
            esc(&self.x_label)
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_hold_every_value() {
        let b = Bins::of(&[-2.5, -0.1, 0.0, 0.4, 3.0, f64::NAN], 8);
        assert_eq!(b.counts.iter().sum::<u64>(), 5);
        assert_eq!(b.edges.len(), b.counts.len() + 1);
        assert!(b.edges[0] <= -2.5 && *b.edges.last().unwrap() >= 3.0);
        let one = Bins::of(&[1.0, 1.0], 8);
        assert_eq!(one.counts.iter().sum::<u64>(), 2);
        assert!(Bins::of(&[], 8).counts.is_empty());
    }
}
