//! Sessions that did not finish (killed or crashed: no `SessionEnd`) and runs that stopped
//! before the end of their data: `journal ls`, `report` and `postmortem` say so, show the range
//! the session covered, and derive nothing from market entries after its last entry.
//!
//! A kill is made by copying a finished backtest's journal entry by entry, with the same seqs,
//! and stopping after entry `k`: what a kill -9 leaves is that prefix (the backtest appends in
//! seq order and the journal reopens to its last complete block). The rule is checked against a
//! second copy holding only what the session had when it journaled `k`: the market entries after
//! the last one it had read are blanked, so nothing later can leak into it.

use crate::common;

use flashmm::mode::backtest::{self, BacktestArgs, Data, PredictorChoice};
use flashmm_core::book::Book;
use flashmm_core::config::Config;
use flashmm_core::event::*;
use flashmm_journal::stream::{market_reach, session_stream};
use flashmm_journal::{Journal, Writer};
use flashmm_report::horizon::Horizon;
use flashmm_report::postmortem::{self, Options, Select};
use flashmm_report::{export, session};
use rust_decimal::Decimal;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const IMPORT: u64 = 1;
const RUN: u64 = 2;
/// The last market entry of the fixture's import (41,247 market entries after its start).
const LAST_MARKET: u64 = 41_247;

fn run_backtest(j: &Journal, to: Option<i64>) -> backtest::Outcome {
    let mut w = j.writer().unwrap();
    let o = backtest::run(
        &mut w,
        BacktestArgs {
            data: Data::File(common::fixture()),
            from: None,
            from_until: None,
            to,
            predictor: PredictorChoice::Rules,
            cfg: Config::default(),
            market_keys: None,
            progress: false,
            what_if: None,
        },
    )
    .unwrap();
    w.close().unwrap();
    o
}

/// The fixture imported (session 1) and `runs` finished rules backtests over it (2, 3, ...).
fn finished(dir: &Path, runs: usize) -> Journal {
    let j = Journal::open(dir).unwrap();
    for _ in 0..runs {
        run_backtest(&j, None);
    }
    j
}

/// A fresh journal at `dst` with `src`'s entries, same seqs, through `f` (`None` stops the
/// copy); then `after` with the writer, which still has the copied sessions open.
fn copy_then(
    src: &Journal,
    dst: &Path,
    mut f: impl FnMut(Entry) -> Option<Entry>,
    after: impl FnOnce(&mut Writer),
) -> Journal {
    let j = Journal::open(dst).unwrap();
    let mut w = j.writer().unwrap();
    for e in src.read(0).unwrap() {
        let Some(mut e) = f(e.unwrap()) else { break };
        match e.body {
            Body::SessionStart(_) => w.begin_with_id(&mut e).unwrap(),
            _ => w.append(&mut e).unwrap(),
        }
    }
    after(&mut w);
    w.close().unwrap();
    j
}

fn copy(src: &Journal, dst: &Path, f: impl FnMut(Entry) -> Option<Entry>) -> Journal {
    copy_then(src, dst, f, |_| {})
}

fn cut(k: u64) -> impl FnMut(Entry) -> Option<Entry> {
    move |e| (e.seq <= k).then_some(e)
}

/// `src` as a kill right after entry `k` leaves it: the session there has no end.
fn killed_at(src: &Journal, dst: &Path, k: u64) -> Journal {
    copy(src, dst, cut(k))
}

/// The finished session's stream (the order the driver obeyed while it ran) up to and
/// including its own entry `k`: everything the session had seen when it journaled `k`.
fn prefix(src: &Journal, session: u64, k: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    for e in session_stream(src, session).unwrap() {
        let e = e.unwrap();
        let own_k = e.session == session && e.seq == k;
        out.push(e);
        if own_k {
            return out;
        }
    }
    panic!("entry {k} is not in session {session}'s stream")
}

/// The last market entry in `entries`.
fn last_market(entries: &[Entry]) -> Option<u64> {
    entries
        .iter()
        .rev()
        .find(|e| e.body.is_market())
        .map(|e| e.seq)
}

/// A journal holding only what session `session` had when it journaled entry `k`: the import's
/// market entries after the last one it had read are blanked (kept as timers, so the seqs stay),
/// and the copy stops at `k`.
fn only_up_to(src: &Journal, dst: &Path, session: u64, k: u64) -> Journal {
    only_up_to_then(src, dst, session, k, |_| {})
}

fn only_up_to_then(
    src: &Journal,
    dst: &Path,
    session: u64,
    k: u64,
    after: impl FnOnce(&mut Writer),
) -> Journal {
    let read = last_market(&prefix(src, session, k));
    copy_then(
        src,
        dst,
        |mut e| {
            if e.seq > k {
                return None;
            }
            if e.session == IMPORT && e.body.is_market() && read.is_none_or(|r| e.seq > r) {
                e.body = Body::Input(Input::Timer);
            }
            Some(e)
        },
        after,
    )
}

/// The mid of the market book after `entries`' market entries: the last price known then.
fn mid_after(entries: &[Entry]) -> Option<Decimal> {
    let mut book = Book::new();
    let mut mid = None;
    for e in entries.iter().filter(|e| e.body.is_market()) {
        book.apply_entry(e);
        if let (Some((b, _)), Some((a, _))) = (book.best_bid(), book.best_ask()) {
            mid = Some((b + a) / Decimal::TWO);
        }
    }
    mid
}

/// A report or post-mortem's JSON without what only says how much data lies beyond the
/// session (which a journal that holds nothing beyond it cannot know).
fn numbers(mut v: Value) -> Value {
    let m = v.as_object_mut().unwrap();
    m.remove("caveat");
    m.remove("market_read");
    v
}

fn options(session: u64) -> Options {
    Options {
        session: Some(session),
        select: Select::All,
        horizons: Horizon::parse_list("1s,5s,30s").unwrap(),
        rank_by: None,
    }
}

fn own(j: &Journal, session: u64) -> Vec<Entry> {
    let info = j.session(session).unwrap();
    j.read(info.first_seq)
        .unwrap()
        .map(|e| e.unwrap())
        .take_while(|e| e.seq <= info.last_seq)
        .filter(|e| e.session == session)
        .collect()
}

fn flashmm(journal: &Path, args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .arg("--journal")
        .arg(journal)
        .args(args)
        .output()
        .expect("run flashmm");
    assert!(
        o.status.success(),
        "flashmm {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_killed_backtest_reads_back_like_a_journal_that_ends_where_it_stopped() {
    let d = tempfile::tempdir().unwrap();
    let j = finished(&d.path().join("j"), 1);
    let entries = own(&j, RUN);
    let n = entries.len();
    let first_fill = entries
        .iter()
        .find(|e| matches!(e.body, Body::Input(Input::Fill(_))))
        .unwrap()
        .seq;
    let last_output_by_market = entries
        .iter()
        .rev()
        .find(|e| matches!(e.body, Body::Output(_)) && e.cause.is_some_and(|c| c <= LAST_MARKET))
        .unwrap()
        .seq;
    // Right after the start; at a fill (an input); at points through the run; at the last
    // entry before the end (the market entries after it were never journaled as read).
    let ks = [
        entries[0].seq,
        first_fill,
        entries[n / 3].seq,
        entries[n / 2].seq + 1,
        last_output_by_market,
        entries[n - 2].seq,
    ];
    for k in ks {
        let kj = killed_at(&j, &d.path().join(format!("k{k}")), k);
        let rj = only_up_to(&j, &d.path().join(format!("r{k}")), RUN, k);
        let seen = prefix(&j, RUN, k);
        let read = last_market(&seen);

        // The stream stops at the session's last entry: exactly what the run had seen there.
        assert_eq!(common::stream(&kj, RUN), seen, "k {k}");
        let info = kj.session(RUN).unwrap();
        assert_eq!((info.status.clone(), info.last_seq), (None, k));
        // The cheap reach `journal ls` uses agrees with the stream.
        let reach = market_reach(&kj, &info).unwrap().unwrap();
        assert_eq!(reach.read_to, read, "k {k}");
        assert_eq!(reach.last, Some(LAST_MARKET));
        assert!(!reach.complete(), "k {k}");
        let mut s = session_stream(&kj, RUN).unwrap();
        for e in s.by_ref() {
            e.unwrap();
        }
        assert_eq!(s.read_to(), read);

        // The report equals the one from a journal holding nothing after k.
        let rk = session::read(&kj, None).unwrap();
        let rr = session::read(&rj, Some(RUN)).unwrap();
        assert_eq!(rk.picked.info.id, RUN);
        assert_eq!(numbers(rk.to_json()), numbers(rr.to_json()), "k {k}");
        assert!(rk.picked.note.as_deref().unwrap().contains("unfinished"));
        // The position is marked at the last price at or before entry k.
        assert_eq!(rk.summary.mid(), mid_after(&seen), "k {k}");
        let pnl = rk
            .summary
            .position()
            .pnl(mid_after(&seen).unwrap_or_default());
        assert_eq!(rk.summary.pnl(), pnl);
        // The range printed is the range covered.
        let last_ts = seen.iter().map(|e| e.ts_ns).max().unwrap();
        assert_eq!(rk.last_ts, last_ts);
        let t = rk.to_text();
        let header = t.lines().next().unwrap();
        assert!(
            header.starts_with("FlashMM session 2 UNFINISHED (backtest")
                && header.contains(&format!(".. {} (", when::format(last_ts))),
            "{t}"
        );
        let caveat = t.lines().nth(1).unwrap();
        assert!(
            caveat.contains("UNFINISHED: no session end (killed or crashed)")
                && caveat.contains(&format!("to seq {k}"))
                && caveat.contains(&format!(
                    "market seqs {} of 0..{LAST_MARKET}",
                    read.map_or("none".into(), |r| format!("0..{r}"))
                )),
            "{t}"
        );
        let v = rk.to_json();
        assert_eq!(
            (&v["status"], &v["finished"], &v["last_seq"]),
            (
                &Value::from("unfinished"),
                &Value::from(false),
                &Value::from(k)
            )
        );
        assert_eq!(v["market_read"]["to_seq"], serde_json::json!(read));
        assert_eq!(v["market_read"]["complete"], false);
        assert!(v["summary"]["events"].as_u64().unwrap() < LAST_MARKET);
        let html = rk.to_html();
        assert!(
            html.contains("<h1>Session 2 UNFINISHED")
                && html.contains(r#"<p class="warn">UNFINISHED"#)
        );

        // The post-mortem too: labelled, and no markout from prices after k.
        let pk = postmortem::run(&kj, &options(RUN)).unwrap();
        let pr = postmortem::run(&rj, &options(RUN)).unwrap();
        assert_eq!(numbers(pk.to_json()), numbers(pr.to_json()), "k {k}");
        let t = pk.to_text();
        assert!(
            t.starts_with("post-mortem of session 2 UNFINISHED ("),
            "{t}"
        );
        assert!(t.contains("UNFINISHED: no session end"), "{t}");
        assert_eq!(pk.to_json()["finished"], false);
        if pk.unscored_at_rank > 0 {
            assert!(t.contains("never taken from later data"), "{t}");
        }
        for f in &pk.fills {
            for (h, m) in pk.horizons.iter().zip(&f.marks) {
                if f.ts_ns + h.ns > last_ts {
                    assert_eq!(*m, flashmm_report::markout::Mark::NoData, "fill {}", f.seq);
                }
            }
        }
        assert!(pk.to_html().contains(r#"<p class="warn">UNFINISHED"#));

        // And the CSV tables: the market the session traded against stops where it stopped.
        let tables = export::parse_kinds(None).unwrap();
        let (ek, er) = (
            d.path().join(format!("ek{k}")),
            d.path().join(format!("er{k}")),
        );
        export::export(&kj, Some(RUN), &tables, export::Format::Csv, &ek).unwrap();
        export::export(&rj, Some(RUN), &tables, export::Format::Csv, &er).unwrap();
        for t in &tables {
            let name = format!("{}.csv", t.name());
            assert!(
                std::fs::read(ek.join(&name)).unwrap() == std::fs::read(er.join(&name)).unwrap(),
                "k {k}: {name} differs"
            );
        }
    }
}

#[test]
fn journal_ls_shows_an_unfinished_session_and_the_range_it_covered() {
    let d = tempfile::tempdir().unwrap();
    let jd = d.path().join("j");
    let kd = d.path().join("k");
    let (k, read, own_last_ts) = {
        let j = finished(&jd, 1);
        let entries = own(&j, RUN);
        let k = entries[entries.len() / 2].seq;
        let _ = killed_at(&j, &kd, k);
        let read = last_market(&prefix(&j, RUN, k)).unwrap();
        let last_ts = entries.iter().filter(|e| e.seq <= k).map(|e| e.ts_ns).max();
        (k, read, last_ts.unwrap())
    };

    let row = |out: &str, id: u64| -> String {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(&id.to_string()))
            .unwrap_or_else(|| panic!("no row for session {id}:\n{out}"))
            .to_string()
    };
    let ls = text(&flashmm(&kd, &["journal", "ls"]).stdout);
    let header = ls.lines().next().unwrap();
    assert!(
        header.contains("market") && header.contains("status"),
        "{ls}"
    );
    let r = row(&ls, RUN);
    assert!(
        r.contains("unfinished (no session end: killed or crashed)"),
        "{ls}"
    );
    assert!(
        r.contains(&format!("0..{read} of 0..{LAST_MARKET}")),
        "{ls}"
    );
    assert!(r.contains(&format!("..{k} ")), "{ls}");
    assert!(r.contains(&when::format(own_last_ts)), "{ls}");
    let imp = row(&ls, IMPORT);
    assert!(
        imp.contains("completed") && !imp.contains("unfinished"),
        "{ls}"
    );
    assert!(ls.contains("unfinished: 2;"), "{ls}");

    let v: Value =
        serde_json::from_slice(&flashmm(&kd, &["journal", "ls", "--json"]).stdout).unwrap();
    let s = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == RUN)
        .unwrap();
    // The fields there were before, unchanged...
    for key in [
        "id",
        "mode",
        "label",
        "parent",
        "source",
        "first_seq",
        "last_seq",
        "entries",
        "first_ts",
        "last_ts",
        "status",
    ] {
        assert!(s.get(key).is_some(), "{key} missing: {s}");
    }
    assert_eq!(
        (&s["status"], &s["last_seq"]),
        (&Value::Null, &Value::from(k))
    );
    assert_eq!(s["last_ts"], own_last_ts);
    assert_eq!(s["source"]["journal"]["to_seq"], LAST_MARKET + 1);
    // ...and what the session covered.
    assert_eq!(s["finished"], false);
    assert!(
        s["state"].as_str().unwrap().contains("killed or crashed"),
        "{s}"
    );
    assert_eq!(s["market"]["session"], IMPORT);
    assert_eq!(s["market"]["read_to"], read);
    assert_eq!(s["market"]["last"], LAST_MARKET);
    assert_eq!(s["market"]["complete"], false);
    let i = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == IMPORT)
        .unwrap();
    assert_eq!(
        (&i["finished"], &i["market"]),
        (&Value::from(true), &Value::Null)
    );

    // The finished run, for contrast: it read its whole range.
    let ls = text(&flashmm(&jd, &["journal", "ls"]).stdout);
    let r = row(&ls, RUN);
    assert!(
        r.contains(&format!(" 0..{LAST_MARKET} ")) && r.contains("completed"),
        "{ls}"
    );
    assert!(!ls.contains("unfinished"), "{ls}");
    let v: Value =
        serde_json::from_slice(&flashmm(&jd, &["journal", "ls", "--json"]).stdout).unwrap();
    let s = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == RUN)
        .unwrap();
    assert_eq!(
        (&s["finished"], &s["market"]["complete"]),
        (&Value::from(true), &Value::from(true))
    );
}

#[test]
fn report_by_default_passes_over_an_unfinished_session_and_says_so() {
    let d = tempfile::tempdir().unwrap();
    let kd = d.path().join("k");
    let only = d.path().join("only");
    {
        let j = finished(&d.path().join("j"), 2);
        let third = own(&j, 3);
        let _ = killed_at(&j, &kd, third[third.len() / 2].seq);
        let second = own(&j, RUN);
        let _ = killed_at(&j, &only, second[second.len() / 2].seq);
    }
    // Session 3 is newer but unfinished: the default is session 2, and stderr says why.
    for args in [&["report"][..], &["postmortem", "--worst", "3"]] {
        let o = flashmm(&kd, args);
        let (out, err) = (text(&o.stdout), text(&o.stderr));
        assert!(
            err.contains("session 3 is unfinished (no session end: killed or crashed)")
                && err.contains("reading session 2")
                && err.contains("--session 3"),
            "{args:?}: {err}"
        );
        let first = out.lines().next().unwrap();
        assert!(
            first.starts_with("FlashMM session 2 (")
                || first.starts_with("post-mortem of session 2 ("),
            "{first}"
        );
        assert!(!out.contains("UNFINISHED"), "{out}");
    }
    let v: Value = serde_json::from_slice(&flashmm(&kd, &["report", "--json"]).stdout).unwrap();
    assert_eq!(
        (&v["session"], &v["finished"]),
        (&Value::from(RUN), &Value::from(true))
    );
    assert_eq!(v["caveat"], Value::Null);
    assert_eq!(v["summary"]["events"], LAST_MARKET);
    // Named, it is read, and labelled.
    let o = flashmm(&kd, &["report", "--session", "3"]);
    assert!(text(&o.stdout).starts_with("FlashMM session 3 UNFINISHED ("));
    assert!(text(&o.stderr).is_empty(), "{}", text(&o.stderr));
    let o = flashmm(&kd, &["postmortem", "--session", "3", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (&v["status"], &v["session"]),
        (&Value::from("unfinished"), &Value::from(3))
    );
    assert!(v["caveat"].as_str().unwrap().starts_with("UNFINISHED"));
    // With nothing finished to read instead, the unfinished one is read, labelled, and stderr
    // says so.
    let o = flashmm(&only, &["report"]);
    assert!(text(&o.stdout).starts_with("FlashMM session 2 UNFINISHED ("));
    assert!(text(&o.stderr).contains("no session with decisions is finished"));
    // --help says what the default is.
    let h = text(&flashmm(&only, &["report", "--help"]).stdout);
    assert!(
        h.contains("newest finished session") && h.contains("UNFINISHED"),
        "{h}"
    );
}

#[test]
fn a_finished_run_is_read_to_where_it_stopped_not_to_the_end_of_the_data() {
    let d = tempfile::tempdir().unwrap();
    let j = finished(&d.path().join("j"), 1);
    // The driver's end names the last market entry it read.
    let info = j.session(RUN).unwrap();
    let end = j.get(info.last_seq).unwrap().unwrap();
    assert!(matches!(end.body, Body::SessionEnd(_)));
    assert_eq!(end.cause, Some(LAST_MARKET));

    // A run that stopped early (at its cost cap, say) and ended there: copy one cut at k and
    // give it the end the driver writes, naming the last market entry it had read.
    let entries = own(&j, RUN);
    let k = entries[entries.len() / 2].seq;
    let seen = prefix(&j, RUN, k);
    let read = last_market(&seen).unwrap();
    let ts = seen.iter().map(|e| e.ts_ns).max().unwrap() + 1;
    let end = |w: &mut Writer| {
        w.end_after(
            RUN,
            ts,
            SessionStatus::Completed,
            "stopped".into(),
            Some(read),
        )
        .unwrap();
    };
    let sj = copy_then(&j, &d.path().join("s"), cut(k), end);
    let rj = only_up_to_then(&j, &d.path().join("r"), RUN, k, end);
    let rs = session::read(&sj, Some(RUN)).unwrap();
    let rr = session::read(&rj, Some(RUN)).unwrap();
    assert_eq!(numbers(rs.to_json()), numbers(rr.to_json()));
    assert_eq!(rs.summary.mid(), mid_after(&seen));
    assert!(rs.summary.events < LAST_MARKET);
    let reach = rs.picked.reach.clone().unwrap();
    assert_eq!((reach.read_to, reach.complete()), (Some(read), false));
    let t = rs.to_text();
    assert!(!t.contains("UNFINISHED"), "{t}");
    assert!(
        t.lines().nth(1).unwrap().contains(&format!(
            "stopped before the end of its data: read market seqs 0..{read} of 0..{LAST_MARKET}"
        )),
        "{t}"
    );
    // An end that says it read nothing reads no market entry.
    let nj = copy_then(&j, &d.path().join("n"), cut(entries[3].seq), |w| {
        w.end_after(
            RUN,
            0,
            SessionStatus::Completed,
            String::new(),
            Some(info.first_seq),
        )
        .unwrap();
    });
    assert!(common::stream(&nj, RUN).iter().all(|e| e.session == RUN));
    let r = market_reach(&nj, &nj.session(RUN).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(r.read_to, None);

    // --to: the report ends at the run's end, the driver's own summary and the journal agree.
    let tj = Journal::open(&d.path().join("t")).unwrap();
    let to = entries[entries.len() / 4].ts_ns;
    let o = run_backtest(&tj, Some(to));
    let v = session::read(&tj, Some(o.session)).unwrap();
    assert_eq!(v.summary.to_json(), o.summary.to_json());
    let end = tj
        .get(tj.session(o.session).unwrap().last_seq)
        .unwrap()
        .unwrap();
    let last = tj.get(end.cause.unwrap()).unwrap().unwrap();
    assert!(last.body.is_market() && last.ts_ns <= to);
    let all_to: Vec<Entry> = common::stream(&tj, o.session);
    assert_eq!(v.summary.mid(), mid_after(&all_to));
    assert!(all_to
        .iter()
        .filter(|e| e.body.is_market())
        .all(|e| e.ts_ns <= to));
}

#[test]
fn a_what_if_of_a_killed_session_reruns_only_the_market_it_read_and_replay_checks_it() {
    let d = tempfile::tempdir().unwrap();
    let kd = d.path().join("k");
    {
        let j = finished(&d.path().join("j"), 1);
        let entries = own(&j, RUN);
        let _ = killed_at(&j, &kd, entries[entries.len() / 2].seq);
    }
    let kj = Journal::open(&kd).unwrap();
    let info = kj.session(RUN).unwrap();
    let read = market_reach(&kj, &info).unwrap().unwrap().read_to.unwrap();
    // Replay checks the decisions up to the kill and stops there, not at the end of the data.
    let r = flashmm::mode::replay::verify(&kj, &info, None, None, &mut |_, _| {}).unwrap();
    assert!(r.divergences.is_empty(), "{:?}", r.divergences.first());
    assert!(r.outputs_matched > 0);
    let mut w = kj.writer().unwrap();
    let (o, original) =
        flashmm::mode::replay::what_if(&mut w, &info, &["strategy.levels=2".into()], false)
            .unwrap();
    w.close().unwrap();
    assert_eq!((o.from_seq, o.to_seq), (0, read));
    assert_eq!(o.summary.events, original.events);
    assert!(original.events < LAST_MARKET, "{}", original.events);
}

#[test]
fn a_failed_or_interrupted_run_says_so_and_a_finished_newest_one_needs_no_note() {
    let d = tempfile::tempdir().unwrap();
    let j = finished(&d.path().join("j"), 1);
    // The newest session is finished: it is the default, with nothing to say on stderr.
    let v = session::read(&j, None).unwrap();
    assert_eq!((v.picked.info.id, v.picked.note.as_deref()), (RUN, None));
    assert_eq!(v.picked.caveat(), None);
    let info = j.session(RUN).unwrap();
    for (status, says) in [
        (
            SessionStatus::Failed("disk full".into()),
            "FAILED: disk full",
        ),
        (SessionStatus::Interrupted, "INTERRUPTED"),
    ] {
        let dst = d.path().join(says.replace(' ', "_").replace(':', ""));
        let ended = copy_then(&j, &dst, cut(info.last_seq - 1), |w| {
            w.end_after(RUN, info.last_ts, status, String::new(), Some(LAST_MARKET))
                .unwrap();
        });
        let v = session::read(&ended, None).unwrap();
        assert_eq!(v.picked.note, None, "{says}: a finished session");
        assert_eq!(v.picked.caveat().as_deref(), Some(says));
        assert_eq!(
            v.to_text().lines().nth(1),
            Some(format!("  {says}").as_str())
        );
        assert_eq!(
            v.to_json()["summary"],
            session::read(&j, None).unwrap().to_json()["summary"]
        );
    }
}
