//! The live engine as a process: SIGTERM cancels everything; kill -9 and a restart reconcile
//! with no duplicate order and no reused nonce; the key never shows in journal, logs or errors.

use crate::common::{wait_for, PATIENCE};
use flashmm_core::event::*;
use flashmm_journal::Journal;
use flashmm_testkit::citrex::{FakeCitrex, FakeConfig};
use flashmm_testkit::sei::FakeSei;
use flashmm_venue::citrex::eip712::Signer;
use rust_decimal_macros::dec;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const KEY: &str = "0x36f973d09569752528d6d2033f635b57dad67d3c3d1a42cb196010b266d52c4f";

fn start(
    fake: &FakeCitrex,
    sei: &FakeSei,
    journal: &std::path::Path,
    logs: &std::path::Path,
    run: usize,
) -> Child {
    let out = std::fs::File::create(logs.join(format!("out-{run}.txt"))).unwrap();
    let err = std::fs::File::create(logs.join(format!("err-{run}.txt"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args(["-vv", "--journal", journal.to_str().unwrap(), "live"])
        .args(["--set", "citrex.network=\"testnet\""])
        .args(["--set", &format!("citrex.rest_url={:?}", fake.rest_url())])
        .args(["--set", &format!("citrex.ws_url={:?}", fake.ws_url())])
        .args(["--set", &format!("citrex.sei_ws_url={:?}", sei.url())])
        .args([
            "--set",
            "live.metrics_addr=\"\"",
            "--set",
            "live.control_addr=\"\"",
        ])
        .args(["--set", "citrex.reconnect_base_ms=50", "--run-for", "60"])
        .env("FLASHMM_SEI_PRIVATE_KEY", KEY)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

async fn exit(mut child: Child) -> Option<i32> {
    tokio::task::spawn_blocking(move || child.wait().unwrap().code())
        .await
        .unwrap()
}

fn grep_tree(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            hits.extend(grep_tree(&p, needle));
        } else if std::fs::read(&p)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_kill9_restart_and_the_key_stays_secret() {
    let fake = FakeCitrex::start(FakeConfig::default()).await.unwrap();
    let sei = FakeSei::start(100).await.unwrap();
    fake.set_book(
        "btcperp",
        vec![(dec!(60000), dec!(1))],
        vec![(dec!(60001), dec!(1))],
    );
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let me = Signer::from_hex(KEY).unwrap().address();

    // 1. SIGTERM: cancel-all per product, then a clean exit.
    let child = start(&fake, &sei, &journal, &logs, 1);
    wait_for(PATIENCE, "quotes", || fake.open_orders(me).len() == 6).await;
    signal(&child, "-TERM");
    assert_eq!(exit(child).await, Some(0));
    assert_eq!(fake.cancel_all_count(), 1);
    assert!(fake.open_orders(me).is_empty());

    // 2. kill -9 leaves orders at the venue.
    let child = start(&fake, &sei, &journal, &logs, 2);
    wait_for(PATIENCE, "quotes", || fake.open_orders(me).len() == 6).await;
    signal(&child, "-KILL");
    exit(child).await;
    let left = fake.open_orders(me);
    assert_eq!(left.len(), 6, "kill -9 cancels nothing");

    // 3. The restart reconciles: cancels what was left, then quotes; never more than one
    //    ladder at the venue, never a nonce twice.
    let child = start(&fake, &sei, &journal, &logs, 3);
    let mut most = 0;
    wait_for(PATIENCE, "the restarted engine quoting", || {
        let n = fake.open_orders(me).len();
        most = most.max(n);
        fake.cancel_all_count() == 2 && n == 6
    })
    .await;
    // A second ladder would show within moments of the first; watching for half a second can
    // miss one on a slow machine but never reports one that is not there.
    for _ in 0..20 {
        most = most.max(fake.open_orders(me).len());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(most <= 6, "duplicate orders at the venue: {most} open");
    for o in &left {
        assert!(
            !fake.open_orders(me).iter().any(|x| x.id == o.id),
            "an order from the killed run survived"
        );
    }
    signal(&child, "-TERM");
    assert_eq!(exit(child).await, Some(0));
    let nonces = fake.nonces(me);
    let mut unique = nonces.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        nonces.len(),
        "a nonce was reused across the restart"
    );

    // The journal tells the story, and every live session replays clean.
    let j = Journal::open(&journal).unwrap();
    let live: Vec<_> = j
        .sessions()
        .unwrap()
        .into_iter()
        .filter(|s| s.mode == Mode::Live)
        .collect();
    assert_eq!(live.len(), 3);
    assert_eq!(live[1].status, None, "the killed session never ended");
    let reconciled = j
        .read(live[2].first_seq)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| matches!(&e.body, Body::Wire(w) if w.action == WireAction::Reconcile))
        .count();
    assert_eq!(
        reconciled, 6,
        "each leftover order is journaled as a correction"
    );
    for s in &live {
        let r = flashmm::mode::replay::verify(&j, s, None, None, &mut |_, _| {}).unwrap();
        assert!(
            r.divergences.is_empty(),
            "session {}: {:?}",
            s.id,
            r.divergences.first().map(|d| &d.why)
        );
    }
    drop(j);

    // The key is nowhere: not in the journal's files, not in trace logs.
    for needle in [
        KEY.trim_start_matches("0x"),
        "36F973D09569752528D6D2033F635B57DAD67D3C3D1A42CB196010B266D52C4F",
    ] {
        let hits: Vec<String> = grep_tree(dir.path(), needle.as_bytes());
        assert!(hits.is_empty(), "the key is in {hits:?}");
    }
    let err = std::fs::read_to_string(logs.join("err-1.txt")).unwrap();
    assert!(
        err.contains("TRACE") || err.contains("DEBUG") || err.contains("session"),
        "logs were captured: {err}"
    );
}

#[test]
fn without_a_key_or_paper_the_command_says_what_to_do() {
    let o = Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args([
            "--journal",
            tempfile::tempdir().unwrap().path().to_str().unwrap(),
            "live",
        ])
        .env_remove("FLASHMM_SEI_PRIVATE_KEY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("FLASHMM_SEI_PRIVATE_KEY")
            && err.contains("--key-file")
            && err.contains("--paper"),
        "{err}"
    );
    // A bad key is refused without echoing it.
    let o = Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args([
            "--journal",
            tempfile::tempdir().unwrap().path().to_str().unwrap(),
            "live",
        ])
        .env("FLASHMM_SEI_PRIVATE_KEY", "not-a-key-but-secret-anyway")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("not-a-key-but-secret-anyway") && err.contains("32 bytes"),
        "{err}"
    );
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args([
            "--journal",
            dir.path().join("j").to_str().unwrap(),
            "live",
            "--key-file",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("chmod 600"), "{err}");
}
