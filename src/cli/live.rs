//! `flashmm live` and the `kill`/`resume` commands that reach a running engine's control
//! endpoint.

use super::{open, ConfigArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use flashmm_venue::azure::AzureClient;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
enum LivePredictorArg {
    Rules,
    Stub,
    /// Azure OpenAI (AZURE_OPENAI_*), asked asynchronously, never on the quoting path.
    Azure,
}

#[derive(Args)]
pub(super) struct LiveCmd {
    /// The real feed with the simulated venue: no key needed, no order leaves.
    #[arg(long, conflicts_with = "dry_run")]
    paper: bool,
    /// Sign and journal every order as it would be sent, and send nothing (fills are simulated).
    #[arg(long)]
    dry_run: bool,
    /// A file holding the private key (hex); it must be mode 0600. Otherwise FLASHMM_SEI_PRIVATE_KEY.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "rules")]
    predictor: LivePredictorArg,
    #[command(flatten)]
    config: ConfigArgs,
    /// Stop by itself after this many seconds (soak tests).
    #[arg(long, value_name = "SECONDS")]
    run_for: Option<u64>,
}

#[derive(Args)]
pub(super) struct ControlCmd {
    /// The engine's control endpoint (live.control_addr).
    #[arg(long, default_value = "127.0.0.1:9109", value_name = "ADDR")]
    pub(super) control: String,
}

pub(super) fn run_control(addr: &str, path: &str) -> Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(flashmm::mode::live::control::send(addr, path)) {
        Ok(body) => {
            println!("{body}");
            Ok(0)
        }
        Err(e) => bail!("{e}"),
    }
}

/// The key from `--key-file` (mode 0600 only) or FLASHMM_SEI_PRIVATE_KEY. Errors never echo it.
fn load_key(
    key_file: Option<&std::path::Path>,
) -> Result<Option<flashmm_venue::citrex::eip712::Signer>> {
    use flashmm_venue::citrex::eip712::Signer;
    let text = match key_file {
        Some(p) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(p)
                    .with_context(|| format!("--key-file {}", p.display()))?
                    .permissions()
                    .mode()
                    & 0o777;
                if mode & 0o077 != 0 {
                    bail!(
                        "--key-file {} is readable by others (mode {mode:o}); run chmod 600 on it",
                        p.display()
                    );
                }
            }
            std::fs::read_to_string(p).with_context(|| format!("--key-file {}", p.display()))?
        }
        None => match std::env::var("FLASHMM_SEI_PRIVATE_KEY") {
            Ok(k) if !k.trim().is_empty() => k,
            _ => return Ok(None),
        },
    };
    let signer = Signer::from_hex(text.trim()).map_err(|_| {
        anyhow::anyhow!(
            "the private key (FLASHMM_SEI_PRIVATE_KEY or --key-file) is not 32 bytes of hex"
        )
    })?;
    Ok(Some(signer))
}

pub(super) fn run_live(dir: &std::path::Path, l: LiveCmd) -> Result<i32> {
    use flashmm::mode::live::{self, LiveArgs, LivePredictor, VenueMode};
    use std::sync::Arc;
    let cfg = flashmm::config::load(l.config.config.as_deref(), &l.config.sets)?;
    let cfg = match cfg.markets.len() {
        0 => cfg,
        1 => cfg.market_configs()?.remove(0),
        n => anyhow::bail!(
            "the config lists {n} [[markets]] and `flashmm live` works on one market; keep one entry (several markets are for `flashmm backtest`, docs/markets.md)"
        ),
    };
    let key = load_key(l.key_file.as_deref())?;
    let venue = match (l.paper, l.dry_run, key) {
        (true, _, _) => VenueMode::Paper,
        (false, true, Some(k)) => VenueMode::DryRun(Arc::new(k)),
        (false, false, Some(k)) => VenueMode::Citrex(Arc::new(k)),
        (false, _, None) => bail!(
            "no signing key: set FLASHMM_SEI_PRIVATE_KEY or pass --key-file FILE to trade, or run with --paper to quote against the simulated venue"
        ),
    };
    let predictor = match l.predictor {
        LivePredictorArg::Rules => {
            LivePredictor::Local(Box::new(flashmm_core::signal::rules::Rules {
                signal_bps: cfg.predict.rules_signal_bps,
            }))
        }
        LivePredictorArg::Stub => {
            LivePredictor::Local(Box::new(flashmm_venue::stub::Stub::neutral()))
        }
        LivePredictorArg::Azure => {
            LivePredictor::Azure(Arc::new(AzureClient::from_env(&cfg.azure)?))
        }
    };
    let journal = open(dir)?;
    let writer = journal.writer()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let args = LiveArgs {
        cfg,
        venue,
        predictor,
        run_for: l.run_for.map(std::time::Duration::from_secs),
        stop: None,
    };
    let outcome = rt.block_on(live::run(writer, args))?;
    eprintln!("session {} ended: {:?}", outcome.session, outcome.status);
    eprint!("{}", outcome.metrics.summary());
    Ok(match outcome.status {
        flashmm_core::event::SessionStatus::Completed => 0,
        _ => 1,
    })
}
