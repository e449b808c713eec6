//! Small SVG charts for reports: line and step series, scatter markers, horizontal reference
//! lines and vertical event markers on a time or number axis, and histograms, with ticks,
//! labels and a legend.
//!
//! The output is plain SVG text with its colours inline, no scripts and no external references,
//! so a page that embeds it reads offline. Coordinates are printed with one decimal, so the same
//! data gives the same bytes. Tests and tools can find what was drawn: each series is a
//! `<g class="series …" data-series="NAME" data-count="N">`, each marker a `<path class="marker
//! …" data-seq="SEQ">` with a `<title>` tooltip, each event a `<line class="event …">`.
//!
//! Longer than 600 lines on purpose: every chart kind shares the frame, axes and the series
//! markup that the tests parse; `axis` and `histogram` are split out.

pub mod axis;
pub mod histogram;

pub use histogram::{Bins, Histogram};

use std::fmt::Write;

/// Escapes text for XML and HTML content and attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub const GREEN: &str = "#1a9850";
pub const RED: &str = "#d73027";
pub const BLUE: &str = "#2166ac";
pub const ORANGE: &str = "#e08214";
pub const GREY: &str = "#737373";
pub const PURPLE: &str = "#762a83";

const LEFT: f64 = 78.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 40.0;

#[derive(Clone, Debug)]
pub enum XAxis {
    /// x is seconds after `origin_ns`; ticks are labelled with the UTC clock time.
    Time {
        origin_ns: i64,
    },
    Number {
        label: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Circle,
    Up,
    Down,
    Cross,
    Diamond,
}

#[derive(Clone, Debug)]
pub struct Marker {
    pub x: f64,
    pub y: f64,
    pub shape: Shape,
    /// Extra class, e.g. `buy` or `sell`.
    pub class: String,
    pub color: String,
    /// Tooltip text.
    pub title: String,
    /// The journal entry the marker stands for.
    pub seq: Option<u64>,
}

#[derive(Clone, Debug)]
enum Draw {
    Line {
        points: Vec<(f64, f64)>,
        step: bool,
        dashed: bool,
    },
    Markers(Vec<Marker>, Shape),
    /// Many small dots in one path, with no tooltip each.
    Dots(Vec<(f64, f64)>),
}

#[derive(Clone, Debug)]
struct Series {
    key: String,
    name: String,
    color: String,
    draw: Draw,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub x: f64,
    pub label: String,
    pub title: String,
    pub class: String,
    pub color: String,
}

#[derive(Clone, Debug)]
struct HLine {
    y: f64,
    label: String,
    color: String,
}

#[derive(Clone, Debug)]
pub struct Chart {
    key: String,
    title: String,
    y_label: String,
    x: XAxis,
    width: f64,
    height: f64,
    series: Vec<Series>,
    events: Vec<Event>,
    hlines: Vec<HLine>,
    x_range: Option<(f64, f64)>,
}

impl Chart {
    /// `key` names the chart in its class (`chart chart-KEY`).
    pub fn new(key: &str, title: &str, y_label: &str, x: XAxis) -> Chart {
        Chart {
            key: key.into(),
            title: title.into(),
            y_label: y_label.into(),
            x,
            width: 960.0,
            height: 300.0,
            series: Vec::new(),
            events: Vec::new(),
            hlines: Vec::new(),
            x_range: None,
        }
    }

    pub fn size(mut self, width: f64, height: f64) -> Chart {
        self.width = width.max(LEFT + RIGHT + 40.0);
        self.height = height.max(TOP + BOTTOM + 40.0);
        self
    }

    /// Fixes the x range instead of fitting it to the data.
    pub fn x_range(mut self, lo: f64, hi: f64) -> Chart {
        self.x_range = Some(axis::span(lo, hi));
        self
    }

    /// A line through `points` (sorted by x); a NaN y breaks it. Long series are thinned to the
    /// extremes of each pixel column, which keeps every spike visible.
    pub fn line(&mut self, key: &str, name: &str, color: &str, points: Vec<(f64, f64)>) {
        self.push_line(key, name, color, points, false, false);
    }

    pub fn dashed(&mut self, key: &str, name: &str, color: &str, points: Vec<(f64, f64)>) {
        self.push_line(key, name, color, points, false, true);
    }

    /// A step line: each value holds until the next point, and the last until the right edge.
    pub fn step(&mut self, key: &str, name: &str, color: &str, points: Vec<(f64, f64)>) {
        self.push_line(key, name, color, points, true, false);
    }

    fn push_line(
        &mut self,
        key: &str,
        name: &str,
        color: &str,
        points: Vec<(f64, f64)>,
        step: bool,
        dashed: bool,
    ) {
        // Infinite values are dropped; NaN stays, as a break in the line.
        let points = points
            .into_iter()
            .filter(|(x, y)| x.is_finite() && !y.is_infinite())
            .collect();
        self.series.push(Series {
            key: key.into(),
            name: name.into(),
            color: color.into(),
            draw: Draw::Line {
                points,
                step,
                dashed,
            },
        });
    }

    /// Markers, each with its tooltip and seq; `shape` is the legend's.
    pub fn markers(
        &mut self,
        key: &str,
        name: &str,
        color: &str,
        shape: Shape,
        markers: Vec<Marker>,
    ) {
        let markers = markers
            .into_iter()
            .filter(|m| m.x.is_finite() && m.y.is_finite())
            .collect();
        self.series.push(Series {
            key: key.into(),
            name: name.into(),
            color: color.into(),
            draw: Draw::Markers(markers, shape),
        });
    }

    /// Small dots for many points (trades), drawn as one path.
    pub fn dots(&mut self, key: &str, name: &str, color: &str, points: Vec<(f64, f64)>) {
        let points = points
            .into_iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        self.series.push(Series {
            key: key.into(),
            name: name.into(),
            color: color.into(),
            draw: Draw::Dots(points),
        });
    }

    pub fn event(&mut self, e: Event) {
        if e.x.is_finite() {
            self.events.push(e);
        }
    }

    pub fn hline(&mut self, y: f64, label: &str, color: &str) {
        if y.is_finite() {
            self.hlines.push(HLine {
                y,
                label: label.into(),
                color: color.into(),
            });
        }
    }

    fn ranges(&self) -> Option<((f64, f64), (f64, f64))> {
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        let mut any = false;
        let mut see = |x: f64, y: Option<f64>| {
            x0 = x0.min(x);
            x1 = x1.max(x);
            if let Some(y) = y {
                y0 = y0.min(y);
                y1 = y1.max(y);
                any = true;
            }
        };
        for s in &self.series {
            match &s.draw {
                Draw::Line { points, .. } => points
                    .iter()
                    .for_each(|p| see(p.0, (!p.1.is_nan()).then_some(p.1))),
                Draw::Markers(ms, _) => ms.iter().for_each(|m| see(m.x, Some(m.y))),
                Draw::Dots(ps) => ps.iter().for_each(|p| see(p.0, Some(p.1))),
            }
        }
        for e in &self.events {
            see(e.x, None);
        }
        if !any {
            return None;
        }
        for h in &self.hlines {
            y0 = y0.min(h.y);
            y1 = y1.max(h.y);
        }
        let (x0, x1) = self.x_range.unwrap_or_else(|| axis::span(x0, x1));
        let (y0, y1) = axis::span(y0, y1);
        let pad = (y1 - y0) * 0.06;
        Some(((x0, x1), (y0 - pad, y1 + pad)))
    }

    pub fn render(&self) -> String {
        let (w, h) = (self.width, self.height);
        let (pw, ph) = (w - LEFT - RIGHT, h - TOP - BOTTOM);
        let mut s = String::with_capacity(16 * 1024);
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{key}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11"><title>{t}</title>"#,
            key = esc(&self.key),
            t = esc(&self.title),
        );
        let _ = write!(
            s,
            r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/><text class="chart-title" x="{LEFT}" y="18" font-size="13" font-weight="bold">{}</text>"##,
            esc(&self.title)
        );
        let Some(((x0, x1), (y0, y1))) = self.ranges() else {
            let _ = write!(
                s,
                r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#cccccc"/><text class="no-data" x="{:.1}" y="{:.1}" text-anchor="middle" fill="{GREY}">no data in this session</text></svg>"##,
                LEFT + pw / 2.0,
                TOP + ph / 2.0
            );
            return s;
        };
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - (y - y0) / (y1 - y0) * ph;
        self.axes(&mut s, (x0, x1), (y0, y1), &sx, &sy);
        for hl in &self.hlines {
            let y = sy(hl.y);
            let _ = write!(
                s,
                r#"<g class="hline"><line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{c}" stroke-dasharray="2,3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{c}">{}</text></g>"#,
                LEFT + pw,
                LEFT + pw - 2.0,
                y - 3.0,
                esc(&hl.label),
                c = esc(&hl.color),
            );
        }
        for se in &self.series {
            match &se.draw {
                Draw::Line {
                    points,
                    step,
                    dashed,
                } => {
                    // A NaN value breaks the line: nothing is drawn until the next value.
                    let mut segs: Vec<Vec<(f64, f64)>> = Vec::new();
                    let mut cur: Vec<(f64, f64)> = Vec::new();
                    let mut prev: Option<f64> = None;
                    for &(x, y) in points {
                        if let (true, Some(py)) = (*step, prev) {
                            cur.push((sx(x), sy(py)));
                        }
                        if y.is_nan() {
                            if !cur.is_empty() {
                                segs.push(std::mem::take(&mut cur));
                            }
                            prev = None;
                            continue;
                        }
                        cur.push((sx(x), sy(y)));
                        prev = Some(y);
                    }
                    if let (true, Some(py)) = (*step, prev) {
                        cur.push((sx(x1), sy(py)));
                    }
                    if !cur.is_empty() {
                        segs.push(cur);
                    }
                    let _ = write!(
                        s,
                        r#"<g class="series line {k}" data-series="{k}" data-count="{n}">"#,
                        k = esc(&se.key),
                        n = points.iter().filter(|p| !p.1.is_nan()).count(),
                    );
                    for seg in segs {
                        let pts = thin(&seg);
                        let _ = write!(
                            s,
                            r#"<polyline fill="none" stroke="{c}" stroke-width="1.4"{d} points=""#,
                            c = esc(&se.color),
                            d = if *dashed {
                                r#" stroke-dasharray="5,3""#
                            } else {
                                ""
                            },
                        );
                        for (i, (x, y)) in pts.iter().enumerate() {
                            let _ = write!(s, "{}{x:.1},{y:.1}", if i > 0 { " " } else { "" });
                        }
                        s.push_str(r#""/>"#);
                    }
                    s.push_str("</g>");
                }
                Draw::Markers(ms, _) => {
                    let _ = write!(
                        s,
                        r#"<g class="series markers {k}" data-series="{k}" data-count="{n}">"#,
                        k = esc(&se.key),
                        n = ms.len()
                    );
                    for m in ms {
                        shape(&mut s, m, sx(m.x), sy(m.y));
                    }
                    s.push_str("</g>");
                }
                Draw::Dots(ps) => {
                    let _ = write!(
                        s,
                        r#"<g class="series dots {k}" data-series="{k}" data-count="{n}"><path fill="none" stroke="{c}" stroke-width="3.5" stroke-linecap="round" d=""#,
                        k = esc(&se.key),
                        n = ps.len(),
                        c = esc(&se.color),
                    );
                    for (x, y) in ps {
                        let _ = write!(s, "M{:.1},{:.1}h0", sx(*x), sy(*y));
                    }
                    s.push_str(r#""/></g>"#);
                }
            }
        }
        if !self.events.is_empty() {
            s.push_str(r#"<g class="events">"#);
            for (i, e) in self.events.iter().enumerate() {
                let x = sx(e.x);
                let _ = write!(
                    s,
                    r#"<line class="event {cl}" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="{c}" stroke-width="1" stroke-dasharray="3,2"><title>{t}</title></line><text class="event-label" x="{:.1}" y="{:.1}" fill="{c}" font-size="9">{l}</text>"#,
                    TOP + ph,
                    x + 2.0,
                    TOP + 10.0 + (i % 4) as f64 * 10.0,
                    cl = esc(&e.class),
                    c = esc(&e.color),
                    t = esc(&e.title),
                    l = esc(&e.label),
                );
            }
            s.push_str("</g>");
        }
        self.legend(&mut s);
        s.push_str("</svg>");
        s
    }

    fn axes(
        &self,
        s: &mut String,
        (x0, x1): (f64, f64),
        (y0, y1): (f64, f64),
        sx: &dyn Fn(f64) -> f64,
        sy: &dyn Fn(f64) -> f64,
    ) {
        let (pw, ph) = (self.width - LEFT - RIGHT, self.height - TOP - BOTTOM);
        let _ = write!(
            s,
            r##"<rect class="plot" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#bbbbbb"/>"##
        );
        let (yt, ystep) = axis::ticks(y0, y1, 5);
        let yd = axis::decimals(ystep);
        s.push_str(r#"<g class="axis y-axis">"#);
        for t in yt {
            let y = sy(t);
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eeeeee"/><line x1="{:.1}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="#888888"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + pw,
                LEFT - 4.0,
                LEFT - 6.0,
                y + 3.5,
                axis::fmt(t, yd)
            );
        }
        let _ = write!(
            s,
            r#"<text class="axis-label" x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text></g>"#,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            esc(&self.y_label)
        );
        let n = ((pw / 110.0) as usize).max(2);
        let (xt, xstep, label): (Vec<f64>, f64, String) = match &self.x {
            XAxis::Time { origin_ns } => {
                let (t, st) = axis::time_ticks(*origin_ns, x0, x1, n);
                (t, st, "time (UTC)".into())
            }
            XAxis::Number { label } => {
                let (t, st) = axis::ticks(x0, x1, n);
                (t, st, label.clone())
            }
        };
        let xd = axis::decimals(xstep);
        s.push_str(r#"<g class="axis x-axis">"#);
        for t in xt {
            let x = sx(t);
            let text = match &self.x {
                XAxis::Time { origin_ns } => axis::clock(*origin_ns, t, xstep),
                XAxis::Number { .. } => axis::fmt(t, xd),
            };
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#f2f2f2"/><line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#888888"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph,
                TOP + ph + 4.0,
                TOP + ph + 16.0,
                esc(&text)
            );
        }
        let _ = write!(
            s,
            r#"<text class="axis-label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
            LEFT + pw / 2.0,
            TOP + ph + 32.0,
            esc(&label)
        );
    }

    fn legend(&self, s: &mut String) {
        let mut x = self.width - RIGHT;
        let y = 32.0;
        s.push_str(r#"<g class="legend">"#);
        for se in self.series.iter().rev() {
            let tw = se.name.chars().count() as f64 * 5.9;
            x -= tw + 30.0;
            let swatch = match &se.draw {
                Draw::Line { .. } => format!(
                    r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"/>"#,
                    x,
                    y - 4.0,
                    x + 14.0,
                    y - 4.0,
                    esc(&se.color)
                ),
                Draw::Dots(_) => format!(
                    r#"<path d="M{:.1},{:.1}h0" stroke="{}" stroke-width="5" stroke-linecap="round"/>"#,
                    x + 7.0,
                    y - 4.0,
                    esc(&se.color)
                ),
                Draw::Markers(_, legend) => {
                    let m = Marker {
                        x: 0.0,
                        y: 0.0,
                        shape: *legend,
                        class: "legend-marker".into(),
                        color: se.color.clone(),
                        title: se.name.clone(),
                        seq: None,
                    };
                    let mut t = String::new();
                    shape(&mut t, &m, x + 7.0, y - 4.0);
                    t
                }
            };
            let _ = write!(
                s,
                r#"{swatch}<text x="{:.1}" y="{y:.1}">{}</text>"#,
                x + 18.0,
                esc(&se.name)
            );
        }
        s.push_str("</g>");
    }
}

fn shape(s: &mut String, m: &Marker, x: f64, y: f64) {
    let d = match m.shape {
        Shape::Circle => format!(
            "M{:.1},{y:.1}a3.5,3.5 0 1,0 7,0a3.5,3.5 0 1,0 -7,0",
            x - 3.5
        ),
        Shape::Up => format!(
            "M{x:.1},{:.1}L{:.1},{:.1}L{:.1},{:.1}Z",
            y - 5.0,
            x + 4.5,
            y + 3.5,
            x - 4.5,
            y + 3.5
        ),
        Shape::Down => format!(
            "M{x:.1},{:.1}L{:.1},{:.1}L{:.1},{:.1}Z",
            y + 5.0,
            x + 4.5,
            y - 3.5,
            x - 4.5,
            y - 3.5
        ),
        Shape::Cross => format!(
            "M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}",
            x - 3.5,
            y - 3.5,
            x + 3.5,
            y + 3.5,
            x - 3.5,
            y + 3.5,
            x + 3.5,
            y - 3.5
        ),
        Shape::Diamond => format!(
            "M{x:.1},{:.1}L{:.1},{y:.1}L{x:.1},{:.1}L{:.1},{y:.1}Z",
            y - 4.5,
            x + 4.5,
            y + 4.5,
            x - 4.5
        ),
    };
    let c = esc(&m.color);
    let (fill, stroke) = match m.shape {
        Shape::Cross => (
            "none".to_string(),
            format!(r#" stroke="{c}" stroke-width="1.6""#),
        ),
        _ => (
            c.clone(),
            r##" stroke="#333333" stroke-width="0.6""##.to_string(),
        ),
    };
    let seq = m
        .seq
        .map(|q| format!(r#" data-seq="{q}""#))
        .unwrap_or_default();
    let _ = write!(
        s,
        r#"<path class="marker {}"{seq} d="{d}" fill="{fill}"{stroke}><title>{}</title></path>"#,
        esc(&m.class),
        esc(&m.title)
    );
}

/// Keeps, of each pixel column, the first, lowest, highest and last point, in order.
fn thin(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if pts.len() < 2000 {
        return pts.to_vec();
    }
    let mut out = Vec::with_capacity(4000);
    let mut i = 0;
    while i < pts.len() {
        let col = pts[i].0.floor();
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < pts.len() && pts[j].0.floor() == col {
            if pts[j].1 < pts[lo].1 {
                lo = j;
            }
            if pts[j].1 > pts[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut keep = [i, lo, hi, j - 1];
        keep.sort_unstable();
        let mut last = usize::MAX;
        for k in keep {
            if k != last {
                out.push(pts[k]);
                last = k;
            }
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_breaks_a_line_steps_reach_the_edge_and_text_is_escaped() {
        let mut c =
            Chart::new("t", "a <b> & \"c\"", "y", XAxis::Time { origin_ns: 0 }).x_range(0.0, 10.0);
        c.line(
            "l",
            "line",
            BLUE,
            vec![
                (0.0, 1.0),
                (1.0, 2.0),
                (2.0, f64::NAN),
                (3.0, 1.0),
                (4.0, 3.0),
            ],
        );
        c.step("s", "step", RED, vec![(0.0, 1.0), (5.0, 2.0)]);
        c.markers(
            "m",
            "markers",
            GREEN,
            Shape::Up,
            vec![Marker {
                x: 1.0,
                y: 2.0,
                shape: Shape::Up,
                class: "buy".into(),
                color: GREEN.into(),
                title: "fill <1>".into(),
                seq: Some(7),
            }],
        );
        let svg = c.render();
        assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        assert!(svg.contains("fill &lt;1&gt;") && svg.contains(r#"data-seq="7""#));
        let line = &svg[svg.find(r#"data-series="l""#).unwrap()..];
        let line = &line[..line.find("</g>").unwrap()];
        assert_eq!(line.matches("<polyline").count(), 2, "{line}");
        assert!(line.contains(r#"data-count="4""#));
        // The step holds its last value to the right edge of the plot (x = 960 - 18).
        let step = &svg[svg.find(r#"data-series="s""#).unwrap()..];
        let step = &step[..step.find("</g>").unwrap()];
        assert!(step.contains("942.0,"), "{step}");
        assert_eq!(svg, c.render(), "deterministic");
        let empty = Chart::new("e", "empty", "y", XAxis::Number { label: "x".into() }).render();
        assert!(empty.contains("no data"));
    }

    #[test]
    fn thinning_keeps_extremes_and_order() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64 / 100.0, if i == 5_050 { 99.0 } else { 1.0 }))
            .collect();
        let t = thin(&pts);
        assert!(t.len() <= 4 * 101);
        assert!(t.iter().any(|p| p.1 == 99.0));
        assert!(t.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
