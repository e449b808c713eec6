//! Markout horizons: `1s`, `500ms`, `2m` on the command line, canonical labels in the output.

use super::error::ReportError;

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_S: i64 = 1_000_000_000;
/// Longer horizons say nothing about a fill.
const MAX_NS: i64 = 86_400 * NS_PER_S;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Horizon {
    pub ns: i64,
}

impl Horizon {
    pub fn from_secs(s: u64) -> Horizon {
        Horizon {
            ns: s as i64 * NS_PER_S,
        }
    }

    /// `30s` for whole seconds, else `500ms`: the key used in JSON and in headings.
    pub fn label(&self) -> String {
        if self.ns % NS_PER_S == 0 {
            format!("{}s", self.ns / NS_PER_S)
        } else {
            format!("{}ms", self.ns / NS_PER_MS)
        }
    }

    /// One horizon; `flag` names the argument in errors.
    pub fn parse(flag: &'static str, value: &str) -> Result<Horizon, ReportError> {
        let v = value.trim().to_ascii_lowercase();
        let bad = |why: &str| ReportError::Horizon {
            flag,
            value: value.to_string(),
            why: why.to_string(),
        };
        let (num, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => v.split_at(i),
            None => return Err(bad("give a unit: ms, s or m, as in 1s,5s,30s")),
        };
        let n: i64 = num
            .parse()
            .map_err(|_| bad("expected a whole number followed by ms, s or m"))?;
        let per = match unit {
            "ms" => NS_PER_MS,
            "s" => NS_PER_S,
            "m" | "min" => 60 * NS_PER_S,
            _ => return Err(bad("the unit must be ms, s or m")),
        };
        let ns = n
            .checked_mul(per)
            .filter(|ns| *ns > 0 && *ns <= MAX_NS)
            .ok_or_else(|| bad("a horizon must be above 0 and at most one day"))?;
        Ok(Horizon { ns })
    }

    /// A comma-separated list, sorted and without repeats.
    pub fn parse_list(value: &str) -> Result<Vec<Horizon>, ReportError> {
        let mut out = Vec::new();
        for part in value.split(',').filter(|p| !p.trim().is_empty()) {
            out.push(Horizon::parse("--horizons", part).map_err(|e| match e {
                ReportError::Horizon { why, flag, .. } => ReportError::Horizon {
                    flag,
                    value: value.to_string(),
                    why: format!("{part:?}: {why}"),
                },
                other => other,
            })?);
        }
        if out.is_empty() {
            return Err(ReportError::Horizon {
                flag: "--horizons",
                value: value.to_string(),
                why: "no horizon given; for example 1s,5s,30s".into(),
            });
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// The report's default horizons, the same as the backtest summary's.
pub fn defaults() -> Vec<Horizon> {
    super::HORIZONS_S
        .iter()
        .map(|&s| Horizon::from_secs(s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_labels() {
        let h = Horizon::parse_list("30s, 1s,500ms,2m,1s").unwrap();
        let labels: Vec<String> = h.iter().map(|h| h.label()).collect();
        assert_eq!(labels, ["500ms", "1s", "30s", "120s"]);
        for bad in ["", "5", "0s", "1h", "-1s", "2d", "99999m"] {
            assert!(Horizon::parse_list(bad).is_err(), "{bad}");
        }
    }
}
