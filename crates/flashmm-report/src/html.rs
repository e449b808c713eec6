//! Self-contained HTML pages for reports: inline CSS and inline SVG, no scripts, nothing
//! fetched, so a page reads the same offline. Pages are also well-formed XML (every element
//! closed, only XML's own entities), so tests and tools can parse them.

use super::chart::esc;
use std::fmt::Write;

const STYLE: &str = "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#222;line-height:1.4}\
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin-top:22px}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}.neg{color:#b2182b}.pos{color:#1a7837}.muted{color:#777}\
pre{background:#f7f7f7;border:1px solid #e3e3e3;padding:8px;font-size:12px;white-space:pre-wrap;word-break:break-word}\
svg.chart{display:block;margin:10px 0;max-width:100%;height:auto}.charts-row svg.chart{display:inline-block;margin-right:8px}\
ul.hints li{margin:4px 0}.sub{color:#555;font-size:13px}.warn{color:#a40000;font-weight:bold}section.fill{margin-top:28px}details{margin:6px 0}";

/// One table cell.
pub enum Cell {
    Text(String),
    /// Right-aligned; coloured by sign when it starts with a minus or is positive.
    Num(String),
    /// Right-aligned, with extra classes (`neg`, `pos`).
    Classed(String, &'static str),
    /// Already-escaped HTML.
    Html(String),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }
    pub fn num(s: impl Into<String>) -> Cell {
        Cell::Num(s.into())
    }
}

/// A number cell whose colour says whether it is good (positive) or bad (negative) for us.
pub fn signed(s: impl Into<String>) -> Cell {
    let s = s.into();
    let class = if s.starts_with('-') {
        "num neg"
    } else if s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "num pos"
    } else {
        "num"
    };
    Cell::Classed(s, class)
}

fn cell(out: &mut String, c: Cell) {
    let _ = match c {
        Cell::Text(t) => write!(out, "<td>{}</td>", esc(&t)),
        Cell::Num(t) => write!(out, r#"<td class="num">{}</td>"#, esc(&t)),
        Cell::Classed(t, class) => write!(out, r#"<td class="{class}">{}</td>"#, esc(&t)),
        Cell::Html(h) => write!(out, "<td>{h}</td>"),
    };
}

pub struct Page {
    title: String,
    body: String,
}

impl Page {
    pub fn new(title: &str) -> Page {
        Page {
            title: title.into(),
            body: String::with_capacity(64 * 1024),
        }
    }

    pub fn heading(&mut self, level: u8, text: &str, id: Option<&str>) {
        let level = level.clamp(1, 4);
        let id = id
            .map(|i| format!(r#" id="{}""#, esc(i)))
            .unwrap_or_default();
        let _ = write!(self.body, "<h{level}{id}>{}</h{level}>", esc(text));
    }

    pub fn p(&mut self, class: &str, text: &str) {
        let _ = write!(self.body, r#"<p class="{}">{}</p>"#, esc(class), esc(text));
    }

    pub fn raw(&mut self, html: &str) {
        self.body.push_str(html);
    }

    pub fn pre(&mut self, text: &str) {
        let _ = write!(self.body, "<pre>{}</pre>", esc(text));
    }

    /// A collapsed block (HTML's own `<details>`, no script) around escaped text.
    pub fn details_pre(&mut self, summary: &str, text: &str) {
        let _ = write!(
            self.body,
            "<details><summary>{}</summary><pre>{}</pre></details>",
            esc(summary),
            esc(text)
        );
    }

    pub fn table(&mut self, class: &str, head: &[&str], rows: Vec<Vec<Cell>>) {
        let _ = write!(self.body, r#"<table class="{}"><thead><tr>"#, esc(class));
        for h in head {
            let _ = write!(self.body, "<th>{}</th>", esc(h));
        }
        self.body.push_str("</tr></thead><tbody>");
        for row in rows {
            self.body.push_str("<tr>");
            for c in row {
                cell(&mut self.body, c);
            }
            self.body.push_str("</tr>");
        }
        self.body.push_str("</tbody></table>");
    }

    /// A two-column table of names and values.
    pub fn pairs(&mut self, class: &str, rows: Vec<(String, Cell)>) {
        let _ = write!(self.body, r#"<table class="{}"><tbody>"#, esc(class));
        for (k, v) in rows {
            let _ = write!(self.body, "<tr><th>{}</th>", esc(&k));
            cell(&mut self.body, v);
            self.body.push_str("</tr>");
        }
        self.body.push_str("</tbody></table>");
    }

    pub fn list(&mut self, class: &str, items: &[String]) {
        let _ = write!(self.body, r#"<ul class="{}">"#, esc(class));
        for i in items {
            let _ = write!(self.body, "<li>{}</li>", esc(i));
        }
        self.body.push_str("</ul>");
    }

    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/><meta name=\"generator\" content=\"flashmm {}\"/><title>{}</title><style>{STYLE}</style></head><body>{}</body></html>\n",
            flashmm_core::VERSION,
            esc(&self.title),
            self.body
        )
    }
}
