//! The host's side of the `HostServices` trait handed to each plugin instance: a non-blocking
//! event queue, logging into the host's log, and the plugin's data directory.

use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString};
use plugin_api::{Envelope, ErrorCode, HostServices, LogLevel, PluginError};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one plugin's traffic, readable while it runs.
#[derive(Debug, Default)]
pub struct PluginMetrics {
    /// Events accepted into the queue.
    pub events_emitted: AtomicU64,
    /// Events refused because the queue was full.
    pub events_dropped: AtomicU64,
    /// Events that could not be decoded.
    pub events_malformed: AtomicU64,
    /// Events of a kind this host does not know.
    pub events_unknown: AtomicU64,
    /// Commands handled successfully.
    pub calls_ok: AtomicU64,
    /// Commands answered with an error.
    pub calls_failed: AtomicU64,
    /// Messages received again (same id, same content) and dropped by the core.
    pub messages_duplicate: AtomicU64,
    /// Messages whose id an earlier message with other content had; kept as new.
    pub message_ids_reused: AtomicU64,
    /// Events dropped because the plugin was quarantined when they arrived (from its own
    /// threads: no call of it can stop those).
    pub events_after_quarantine: AtomicU64,
}

/// One event as it left a plugin, before decoding.
#[derive(Debug)]
pub struct RawEvent {
    /// The plugin that emitted it.
    pub plugin_id: Arc<str>,
    /// The envelope.
    pub envelope: Envelope,
}

/// `HostServices` for one plugin instance.
pub struct HostSide {
    plugin_id: Arc<str>,
    events: crossbeam_channel::Sender<RawEvent>,
    data_dir: PathBuf,
    metrics: Arc<PluginMetrics>,
}

impl HostSide {
    /// Services for `plugin_id`: events go to `events` (bounded: a full queue is refused), the
    /// data directory is `data_dir`, traffic is counted in `metrics`.
    pub fn new(
        plugin_id: Arc<str>,
        events: crossbeam_channel::Sender<RawEvent>,
        data_dir: PathBuf,
        metrics: Arc<PluginMetrics>,
    ) -> Self {
        HostSide {
            plugin_id,
            events,
            data_dir,
            metrics,
        }
    }

    /// As the ABI object handed to a plugin's `create`.
    pub fn into_abi(self) -> plugin_api::HostServicesBox {
        plugin_api::HostServices_TO::from_ptr(
            abi_stable::std_types::RArc::new(self),
            abi_stable::sabi_trait::TD_Opaque,
        )
    }
}

// Host code called from plugin threads must not unwind into the plugin either: each method is
// guarded, and a panic here becomes an error value (emit) or is swallowed (log).
impl HostServices for HostSide {
    fn emit(&self, event: Envelope) -> RResult<(), PluginError> {
        let sent = catch_unwind(AssertUnwindSafe(|| {
            self.events.try_send(RawEvent {
                plugin_id: self.plugin_id.clone(),
                envelope: event,
            })
        }));
        match sent {
            Ok(Ok(())) => {
                self.metrics.events_emitted.fetch_add(1, Ordering::Relaxed);
                ROk(())
            }
            Ok(Err(crossbeam_channel::TrySendError::Full(_))) => {
                self.metrics.events_dropped.fetch_add(1, Ordering::Relaxed);
                RErr(PluginError::new(
                    ErrorCode::QUEUE_FULL,
                    "the host's event queue is full",
                ))
            }
            Ok(Err(crossbeam_channel::TrySendError::Disconnected(_))) => RErr(PluginError::new(
                ErrorCode::UNAVAILABLE,
                "the host no longer takes events from this plugin",
            )),
            Err(_) => RErr(PluginError::failed("the host failed to take the event")),
        }
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            let plugin = &*self.plugin_id;
            let message = message.as_str();
            match level {
                LogLevel::TRACE => tracing::trace!(target: "plugin", plugin, "{message}"),
                LogLevel::DEBUG => tracing::debug!(target: "plugin", plugin, "{message}"),
                LogLevel::WARN => tracing::warn!(target: "plugin", plugin, "{message}"),
                LogLevel::ERROR => tracing::error!(target: "plugin", plugin, "{message}"),
                _ => tracing::info!(target: "plugin", plugin, "{message}"),
            }
        }));
    }

    fn data_dir(&self) -> RString {
        RString::from(self.data_dir.to_string_lossy().into_owned())
    }

    fn request(&self, request: Envelope) -> RResult<Envelope, PluginError> {
        RErr(PluginError::unsupported(request.kind.as_str()))
    }
}
