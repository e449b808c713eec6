//! The operator's line into a running engine: `POST /kill` and `POST /resume` on a localhost
//! port, and the `flashmm kill` / `flashmm resume` commands that call them. A command arrives
//! in the engine as a journaled `Operator` input, like everything else.

use flashmm_core::event::OperatorCommand;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub async fn serve(
    addr: String,
    tx: mpsc::Sender<(OperatorCommand, String)>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(&addr).await?;
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            conn = listener.accept() => {
                let Ok((mut s, peer)) = conn else { continue };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let command = if head.starts_with("POST /kill") {
                        Some(OperatorCommand::Halt)
                    } else if head.starts_with("POST /resume") {
                        Some(OperatorCommand::Resume)
                    } else if head.starts_with("POST /cancel-all") {
                        Some(OperatorCommand::CancelAll)
                    } else {
                        None
                    };
                    let (status, body) = match command {
                        Some(c) => match tx.send((c, format!("control endpoint, from {peer}"))).await {
                            Ok(()) => ("200 OK", "{\"accepted\":true}"),
                            Err(_) => ("503 Service Unavailable", "{\"accepted\":false,\"error\":\"engine is stopping\"}"),
                        },
                        None => ("404 Not Found", "{\"error\":\"POST /kill, /resume or /cancel-all\"}"),
                    };
                    let out = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                    let _ = s.write_all(out.as_bytes()).await;
                });
            }
        }
    }
}

/// `flashmm kill` and friends: one POST to the engine's control endpoint.
pub async fn send(addr: &str, path: &str) -> Result<String, String> {
    let url = format!("http://{addr}{path}");
    let r = reqwest::Client::new()
        .post(&url)
        .send()
        .await
        .map_err(|e| format!("no engine answered at {addr} (live.control_addr): {e}"))?;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("the engine refused: HTTP {status} {body}"))
    }
}
