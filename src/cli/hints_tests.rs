//! Every flag an error or hint names exists on the command that prints it, or on the command
//! the hint spells out (`flashmm journal import --allow-gaps ...`). The hints are the string
//! literals of the files below, outside their tests, plus the messages built from parts.

use super::Cli;
use clap::CommandFactory;
use std::collections::BTreeSet;

/// Who prints a file's messages: `All` when every listed command can print every one of them,
/// `Any` for a file whose messages are split among the commands (journal.rs: import's and
/// export's), where a flag has to exist on one of them.
enum Printers {
    All(&'static [&'static str]),
    Any(&'static [&'static str]),
}
use Printers::*;

const FILES: &[(&str, &str, Printers)] = &[
    (
        "src/cli/backtest.rs",
        include_str!("backtest.rs"),
        All(&["backtest"]),
    ),
    (
        "src/mode/backtest.rs",
        include_str!("../mode/backtest.rs"),
        All(&["backtest"]),
    ),
    (
        "src/mode/import_hint.rs",
        include_str!("../mode/import_hint.rs"),
        All(&["backtest", "predict"]),
    ),
    (
        "src/mode/cover.rs",
        include_str!("../mode/cover.rs"),
        All(&["backtest", "replay"]),
    ),
    (
        "src/mode/replay.rs",
        include_str!("../mode/replay.rs"),
        All(&["replay"]),
    ),
    (
        "src/cli/replay.rs",
        include_str!("replay.rs"),
        All(&["replay"]),
    ),
    (
        "src/mode/probe.rs",
        include_str!("../mode/probe.rs"),
        All(&["predict"]),
    ),
    (
        "src/cli/predict.rs",
        include_str!("predict.rs"),
        All(&["predict"]),
    ),
    ("src/cli/live.rs", include_str!("live.rs"), All(&["live"])),
    (
        "src/cli/mod.rs",
        include_str!("mod.rs"),
        Any(&["config", "report", "postmortem"]),
    ),
    (
        "src/cli/report.rs",
        include_str!("report.rs"),
        Any(&["report", "postmortem"]),
    ),
    (
        "src/cli/journal.rs",
        include_str!("journal.rs"),
        Any(&["journal import", "journal export", "journal ls"]),
    ),
    (
        "venue/citrex/client.rs",
        include_str!("../../crates/flashmm-venue/src/citrex/client.rs"),
        All(&["live"]),
    ),
    (
        "journal/binance.rs",
        include_str!("../../crates/flashmm-journal/src/binance.rs"),
        All(&["journal import"]),
    ),
    (
        "journal/hyperliquid.rs",
        include_str!("../../crates/flashmm-journal/src/hyperliquid.rs"),
        All(&["journal import"]),
    ),
    (
        "journal/tardis.rs",
        include_str!("../../crates/flashmm-journal/src/tardis.rs"),
        All(&["journal import"]),
    ),
    (
        "journal/detect.rs",
        include_str!("../../crates/flashmm-journal/src/detect.rs"),
        All(&["backtest"]),
    ),
    (
        "journal/jsonl.rs",
        include_str!("../../crates/flashmm-journal/src/jsonl.rs"),
        All(&["journal import"]),
    ),
    (
        "journal/lib.rs",
        include_str!("../../crates/flashmm-journal/src/lib.rs"),
        All(&["backtest", "replay", "journal ls", "report"]),
    ),
    (
        "journal/writer.rs",
        include_str!("../../crates/flashmm-journal/src/writer.rs"),
        All(&["journal import"]),
    ),
    (
        "report/export/mod.rs",
        include_str!("../../crates/flashmm-report/src/export/mod.rs"),
        All(&["journal export"]),
    ),
    (
        "report/select.rs",
        include_str!("../../crates/flashmm-report/src/select.rs"),
        All(&["report", "postmortem"]),
    ),
    (
        "report/error.rs",
        include_str!("../../crates/flashmm-report/src/error.rs"),
        All(&["postmortem"]),
    ),
    (
        "report/horizon.rs",
        include_str!("../../crates/flashmm-report/src/horizon.rs"),
        All(&["postmortem"]),
    ),
    (
        "report/postmortem/mod.rs",
        include_str!("../../crates/flashmm-report/src/postmortem/mod.rs"),
        All(&["postmortem"]),
    ),
    (
        "report/postmortem/text.rs",
        include_str!("../../crates/flashmm-report/src/postmortem/text.rs"),
        All(&["postmortem"]),
    ),
    (
        "report/session/text.rs",
        include_str!("../../crates/flashmm-report/src/session/text.rs"),
        All(&["report"]),
    ),
    (
        "report/session/html.rs",
        include_str!("../../crates/flashmm-report/src/session/html.rs"),
        All(&["report"]),
    ),
    (
        "core/config.rs",
        include_str!("../../crates/flashmm-core/src/config.rs"),
        All(&["backtest", "replay", "config"]),
    ),
];

/// The long flags of a command path such as "journal import", with the global ones.
fn flags_of(path: &str) -> Option<BTreeSet<String>> {
    let root = Cli::command();
    let mut names: BTreeSet<String> = root
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let mut cmd = &root;
    for word in path.split_whitespace() {
        cmd = cmd.find_subcommand(word)?;
    }
    names.extend(
        cmd.get_arguments()
            .filter_map(|a| a.get_long().map(|l| format!("--{l}"))),
    );
    names.insert("--help".into());
    Some(names)
}

/// The string literals of `src` outside comments and its test module.
fn literals(src: &str) -> Vec<String> {
    let code = src.split("#[cfg(test)]").next().unwrap_or(src);
    let mut out = Vec::new();
    for line in code.lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let mut end = None;
            let mut escaped = false;
            for (i, c) in after.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            let Some(end) = end else { break };
            out.push(after[..end].to_string());
            rest = &after[end + 1..];
        }
    }
    out
}

fn is_flag(tok: &str) -> Option<String> {
    let t = tok.trim_start_matches(['`', '(', '"']);
    let name: String = t
        .strip_prefix("--")?
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .collect();
    let name = name.trim_end_matches('-');
    (!name.is_empty() && name.starts_with(|c: char| c.is_ascii_lowercase()))
        .then(|| format!("--{name}"))
}

/// (flag, the command a `flashmm ...` in the hint names, if any) for each flag in `hint`.
fn flags_named(hint: &str) -> Vec<(String, Option<String>)> {
    let root = Cli::command();
    let toks: Vec<&str> = hint.split_whitespace().collect();
    let mut out = Vec::new();
    let mut ctx: Option<String> = None;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        let names_command = t.trim_start_matches('`') == "flashmm";
        if names_command {
            let mut cmd = &root;
            let mut path: Vec<&str> = Vec::new();
            while let Some(next) = toks.get(i + 1) {
                let w = next.trim_end_matches(['`', ';', ',', '.', ':']);
                match cmd.find_subcommand(w) {
                    Some(c) => {
                        cmd = c;
                        path.push(w);
                        i += 1;
                    }
                    None => break,
                }
            }
            ctx = Some(path.join(" "));
        } else if let Some(f) = is_flag(t) {
            out.push((f, ctx.clone()));
        }
        // A closing backtick or a new clause ends the command the hint spelled out.
        if (!names_command && t.contains('`')) || t.ends_with(';') {
            ctx = None;
        }
        i += 1;
    }
    out
}

fn check(hint: &str, printers: &Printers, whence: &str, bad: &mut Vec<String>) {
    for (flag, ctx) in flags_named(hint) {
        let ok = match (&ctx, printers) {
            (Some(c), _) => flags_of(c).is_some_and(|f| f.contains(&flag)),
            (None, All(cmds)) => cmds
                .iter()
                .all(|c| flags_of(c).is_some_and(|f| f.contains(&flag))),
            (None, Any(cmds)) => cmds
                .iter()
                .any(|c| flags_of(c).is_some_and(|f| f.contains(&flag))),
        };
        if !ok {
            let on = ctx.unwrap_or_else(|| match printers {
                All(c) | Any(c) => c.join(" / "),
            });
            bad.push(format!("{whence}: {flag} is not a flag of {on}: {hint:?}"));
        }
    }
}

#[test]
fn every_command_the_table_names_exists() {
    for (_, _, p) in FILES {
        let (All(cmds) | Any(cmds)) = p;
        for c in *cmds {
            assert!(flags_of(c).is_some(), "no command {c}");
        }
    }
}

#[test]
fn every_flag_a_hint_names_exists_on_the_command_that_prints_it() {
    let mut bad = Vec::new();
    for (file, src, printers) in FILES {
        for hint in literals(src) {
            check(&hint, printers, file, &mut bad);
        }
    }
    // Messages built from parts.
    use flashmm::mode::import_hint::import_hint;
    use flashmm_journal::binance::ImportError;
    let errors = [
        ImportError::Gap {
            line: 3,
            detail: "U=115".into(),
        },
        ImportError::TimeJump {
            line: 3,
            dir: "back",
            jump_s: 9,
            from: 1,
            to: 2,
            max_s: 1,
        },
        ImportError::NoSymbol,
        ImportError::Malformed {
            line: 3,
            detail: "x".into(),
        },
        ImportError::AlreadyImported {
            path: "a.gz".into(),
            session: 1,
        },
    ];
    for e in &errors {
        check(
            &import_hint("a.gz", "binance", e),
            &All(&["backtest", "predict"]),
            "import_hint",
            &mut bad,
        );
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_check_sees_a_flag_the_command_lacks() {
    let mut bad = Vec::new();
    check("pass --allow-gaps", &All(&["backtest"]), "t", &mut bad);
    check(
        "run `flashmm journal import --allow-gaps FILE`",
        &All(&["backtest"]),
        "t",
        &mut bad,
    );
    check(
        "run `flashmm backtest --symbol X`",
        &All(&["journal import"]),
        "t",
        &mut bad,
    );
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("--allow-gaps is not a flag of backtest"));
    assert!(bad[1].contains("--symbol is not a flag of backtest"));
}
