//! Keys and tokens never reach the journal, the logs or error text, even when the server
//! echoes them back. The test greps every byte the program wrote.

use crate::common;

use flashmm_core::config::AzureApi;
use flashmm_testkit::azure::{Expect, FakeAzure, Reply};
use std::path::Path;
use std::process::Output;

const KEY: &str = "sk-live-4d3c2b1a0f9e8d7c6b5a";
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOi.entra-secret-token";

fn grep_tree(dir: &Path, needle: &[u8]) -> Vec<String> {
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

async fn predict_once(journal: &Path, endpoint: &str, env: (&str, &str)) -> Output {
    let (journal, endpoint) = (journal.to_path_buf(), endpoint.to_string());
    let (k, v) = (env.0.to_string(), env.1.to_string());
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_flashmm"))
            .args([
                "-vv",
                "--journal",
                journal.to_str().unwrap(),
                "predict",
                "--once",
                "--data",
            ])
            .arg(common::fixture())
            .args(["--at", "2024-08-08T23:58:00Z"])
            .env("RUST_LOG", "trace")
            .env("AZURE_OPENAI_ENDPOINT", endpoint)
            .env("AZURE_OPENAI_DEPLOYMENT", "o4-mini-prod")
            .env_remove("AZURE_OPENAI_API_KEY")
            .env_remove("AZURE_OPENAI_AD_TOKEN")
            .env(k, v)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn assert_clean(what: &str, bytes: &[u8]) {
    for secret in [KEY, TOKEN] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{what} contains a secret:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_stay_out_of_journal_logs_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("j");
    let expect = Expect {
        api: AzureApi::Deployments,
        deployment: "o4-mini-prod".into(),
        api_version: "2025-04-01-preview".into(),
        api_key: Some(KEY.into()),
        bearer: None,
    };

    // A good call with an api-key.
    let fake = FakeAzure::start(expect.clone(), vec![], 3, 0.001)
        .await
        .unwrap();
    let o = predict_once(&j, &fake.endpoint(), ("AZURE_OPENAI_API_KEY", KEY)).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        fake.received()[0].header("api-key"),
        Some(KEY),
        "the key was really sent"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("prediction"));
    assert_clean("stdout", &o.stdout);
    assert_clean("stderr (trace logs)", &o.stderr);

    // A server that echoes the key back in an error body, three times over.
    let echo = format!(
        r#"{{"error":{{"code":"401","message":"key {KEY} is not valid for this resource"}}}}"#
    );
    let fake = FakeAzure::start(expect.clone(), vec![Reply::json(401, echo)], 3, 0.001)
        .await
        .unwrap();
    let o = predict_once(&j, &fake.endpoint(), ("AZURE_OPENAI_API_KEY", KEY)).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("HTTP 401"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_clean("stdout of the failure", &o.stdout);
    assert_clean("stderr of the failure", &o.stderr);

    // A bearer token that the server does not accept.
    let o = predict_once(&j, &fake.endpoint(), ("AZURE_OPENAI_AD_TOKEN", TOKEN)).await;
    assert_eq!(o.status.code(), Some(1));
    assert_clean("stdout with a token", &o.stdout);
    assert_clean("stderr with a token", &o.stderr);

    // Nothing in any file of the journal, and nothing in its export.
    let hits: Vec<String> = [KEY, TOKEN]
        .iter()
        .flat_map(|s| grep_tree(&j, s.as_bytes()))
        .collect();
    assert!(hits.is_empty(), "secrets in {hits:?}");
    let journal = flashmm_journal::Journal::open(&j).unwrap();
    let mut export = Vec::new();
    flashmm_journal::jsonl::export(&journal, None, &mut export).unwrap();
    assert_clean("the JSONL export", &export);
    // The scrubbed body is still there for the post-mortem.
    assert!(String::from_utf8_lossy(&export).contains("is not valid for this resource"));
}

#[test]
fn a_missing_credential_says_which_variables_to_set() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_flashmm"))
        .args([
            "--journal",
            tempfile::tempdir().unwrap().path().to_str().unwrap(),
            "predict",
            "--once",
        ])
        .env("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com")
        .env("AZURE_OPENAI_DEPLOYMENT", "d")
        .env_remove("AZURE_OPENAI_API_KEY")
        .env_remove("AZURE_OPENAI_AD_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("AZURE_OPENAI_API_KEY") && err.contains("AZURE_OPENAI_AD_TOKEN"),
        "{err}"
    );
}
