//! The `flashmm` command line: parses arguments, builds a mode, runs it.

mod cli;

use clap::Parser;

fn main() {
    // Past `ulimit -f` a write fails with EFBIG instead of the signal killing us silently, so the
    // journal's error says what happened and what is safe.
    // SAFETY: setting a signal's disposition to "ignore" runs no handler code.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let cli = cli::Cli::parse();
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()),
        )
        .init();
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
