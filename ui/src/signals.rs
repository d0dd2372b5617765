//! SIGTERM and SIGINT end agentdesk the way closing its window does: the core stops, then every
//! plugin's `stop` runs with its stop deadline. Holds only the signal watch, not what ending means.

use tokio::signal::unix::{SignalKind, signal};

/// Calls `on_signal` (with the signal's name) on a thread of its own when SIGTERM or SIGINT
/// arrives; from then on those signals no longer end the process by themselves. The handlers are
/// in place when this returns.
pub fn watch(on_signal: impl FnOnce(&'static str) + Send + 'static) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let name = runtime.block_on(async {
                tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                }
            });
            tracing::info!("{name}: stopping the plugins and the core");
            on_signal(name);
        })?;
    Ok(())
}

/// Calls `on_hangup` on a thread of its own each time SIGHUP arrives (a hub re-reads its admin
/// file); from then on SIGHUP no longer ends the process. The handler is in place when this
/// returns.
pub fn on_hangup(on_hangup: impl Fn() + Send + 'static) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut hangup = runtime.block_on(async { signal(SignalKind::hangup()) })?;
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            while runtime.block_on(hangup.recv()).is_some() {
                tracing::info!("SIGHUP: re-reading the admin file");
                on_hangup();
            }
        })?;
    Ok(())
}
