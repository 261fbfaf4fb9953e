//! When a binary should stop: Ctrl-C, SIGTERM (what the Functions host, container runtimes and
//! systemd send), or, for a handler started by a Functions host, that host gone.

use std::time::Duration;

/// Resolves on Ctrl-C or SIGTERM, or once `parent` is no longer this process's parent (a
/// `kill -9` of the host sends its child nothing; the child is adopted instead).
pub async fn signal(parent: Option<u32>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let orphaned = async {
        match parent {
            Some(parent) => parent_gone(parent).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {}, () = orphaned => {} }
}

/// Resolves once `parent` is no longer this process's parent: it died, and we were adopted.
/// (A parent of 1 is no sign of an orphan: in a container the host may well be process 1.)
async fn parent_gone(parent: u32) {
    #[cfg(unix)]
    while std::os::unix::process::parent_id() == parent {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await;
    tracing::warn!(parent, "the parent process is gone; stopping");
}
