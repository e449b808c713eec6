//! Backtests that ask the model: through the real client to the fake server, capped in money,
//! and served again from the recording.

use flashmm_core::config::AzureApi;
use flashmm_testkit::azure::{Expect, FakeAzure};
use serde_json::Value;
use std::process::Output;

const KEY: &str = "k-0123456789";

async fn flashmm(args: Vec<String>, endpoint: String) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_flashmm"))
            .args(&args)
            .env("AZURE_OPENAI_ENDPOINT", endpoint)
            .env("AZURE_OPENAI_DEPLOYMENT", "o4-mini-prod")
            .env("AZURE_OPENAI_API_KEY", KEY)
            .env_remove("AZURE_OPENAI_AD_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_azure_backtest_needs_a_cap_stops_at_it_and_replays_from_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j").display().to_string();
    let expect = Expect {
        api: AzureApi::Deployments,
        deployment: "o4-mini-prod".into(),
        api_version: "2025-04-01-preview".into(),
        api_key: Some(KEY.into()),
        bearer: None,
    };
    let fake = FakeAzure::start(expect, vec![], 11, 0.0).await.unwrap();
    let base = |extra: &[&str]| {
        let mut v: Vec<String> = ["--journal", &j, "backtest", "--json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    let o = flashmm(base(&["--predictor", "azure"]), fake.endpoint()).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--max-cost-usd"));

    // Each fake answer costs about 0.0015-0.0037 USD, and the worst case reserved per request is
    // about 0.0093: a 0.03 cap stops the run after a handful of calls.
    let v = json(
        &flashmm(
            base(&["--predictor", "azure", "--max-cost-usd", "0.03"]),
            fake.endpoint(),
        )
        .await,
    );
    let cost: f64 = v["predictor_cost_usd"].as_str().unwrap().parse().unwrap();
    assert!(cost > 0.0 && cost <= 0.03, "{v}");
    assert!(
        v["stopped_early"].as_str().unwrap().contains("cost cap"),
        "{v}"
    );
    assert!(v["events"].as_u64().unwrap() < 41_247, "{v}");
    let calls = fake.received().len();
    // Every answer the model gave (and was paid for) is in the session, even the one in flight
    // when the cap stopped the run.
    assert!(v["predictions"].as_u64().unwrap() as usize >= calls, "{v}");
    // Read back from the journal, the capped run (session 2) ends where it stopped, not at the
    // end of the data: the same summary as the run printed, and its decisions replay.
    let cli = |args: &[&str]| {
        let mut a = vec!["--journal".to_string(), j.clone()];
        a.extend(args.iter().map(|s| s.to_string()));
        a
    };
    let report = json(
        &flashmm(
            cli(&["report", "--json", "--session", "2"]),
            fake.endpoint(),
        )
        .await,
    );
    assert!(
        report["label"].as_str().unwrap().contains("azure"),
        "{report}"
    );
    for key in [
        "events",
        "fills",
        "pnl",
        "final_mid",
        "predictions",
        "markout_bps",
    ] {
        assert_eq!(report["summary"][key], v[key], "{key}");
    }
    assert_eq!(report["market_read"]["complete"], false, "{report}");
    assert!(report["caveat"]
        .as_str()
        .unwrap()
        .contains("stopped before the end of its data"));
    let replay = flashmm(cli(&["replay", "--session", "2"]), fake.endpoint()).await;
    assert!(
        replay.status.success(),
        "{}{}",
        String::from_utf8_lossy(&replay.stdout),
        String::from_utf8_lossy(&replay.stderr)
    );

    // A generous cap runs to the end; then the same answers are served from the journal.
    let live = json(
        &flashmm(
            base(&["--predictor", "azure", "--max-cost-usd", "5"]),
            fake.endpoint(),
        )
        .await,
    );
    assert!(live["stopped_early"].is_null());
    assert_eq!(live["events"], 41_247);
    let asked = fake.received().len() - calls;
    assert!(asked > 20, "{asked}");
    let replayed = json(
        &flashmm(
            base(&["--predictor", "recorded"]),
            "http://127.0.0.1:9".into(),
        )
        .await,
    );
    assert_eq!(
        fake.received().len() - calls,
        asked,
        "the recorded predictor must not call the model"
    );
    for key in [
        "quotes",
        "orders",
        "fills",
        "pnl",
        "predictions",
        "prediction_hit_rate",
        "markout_bps",
    ] {
        assert_eq!(replayed[key], live[key], "{key}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn predict_once_prints_the_answer_tokens_cost_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j").display().to_string();
    let expect = Expect {
        api: AzureApi::Deployments,
        deployment: "o4-mini-prod".into(),
        api_version: "2025-04-01-preview".into(),
        api_key: Some(KEY.into()),
        bearer: None,
    };
    let fake = FakeAzure::start(expect, vec![], 5, 0.0).await.unwrap();
    let args: Vec<String> = [
        "--journal",
        &j,
        "predict",
        "--once",
        "--at",
        "2024-08-08T23:57:30Z",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let v = json(&flashmm(args, fake.endpoint()).await);
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        ["bullish", "bearish", "neutral"].contains(&v["prediction"]["direction"].as_str().unwrap())
    );
    assert!(v["usage"]["completion"].as_u64().unwrap() > v["usage"]["reasoning"].as_u64().unwrap());
    assert!(v["cost_usd"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
    assert_eq!(v["http_status"], 200);
    assert!(
        v["at"].as_str().unwrap().starts_with("2024-08-08T23:57:2"),
        "{v}"
    );
    // The prompt that went out describes that moment, and it is in the journal as a probe session.
    let body: Value = serde_json::from_str(&fake.received()[0].body).unwrap();
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("time: 2024-08-08T23:57:2"), "{user}");
    let journal = flashmm_journal::Journal::open(std::path::Path::new(&j)).unwrap();
    let probe = journal
        .sessions()
        .unwrap()
        .into_iter()
        .find(|s| s.mode == flashmm_core::event::Mode::Probe)
        .unwrap();
    assert_eq!(probe.entries, 4);
}
