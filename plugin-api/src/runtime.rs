//! A tokio runtime owned by one plugin instance (feature `runtime`). A cdylib cannot share the
//! host's runtime: each library has its own copy of tokio's statics.

use crate::PluginError;
use std::time::Duration;

/// A multi-threaded tokio runtime built in `start` and shut down in `stop`.
#[derive(Debug)]
pub struct PluginRuntime {
    runtime: Option<tokio::runtime::Runtime>,
}

impl PluginRuntime {
    /// Builds a runtime with `threads` worker threads named after the plugin.
    pub fn new(plugin_id: &str, threads: usize) -> Result<Self, PluginError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(format!("plugin-{plugin_id}"))
            .enable_all()
            .build()
            .map_err(|e| PluginError::failed(format!("cannot build a tokio runtime: {e}")))?;
        Ok(PluginRuntime {
            runtime: Some(runtime),
        })
    }

    /// A handle to spawn tasks from any thread, or `None` after shutdown.
    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle().clone())
    }

    /// Runs a future to completion (for set-up in `start`, e.g. binding a socket).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> Result<F::Output, PluginError> {
        match &self.runtime {
            Some(runtime) => Ok(runtime.block_on(future)),
            None => Err(PluginError::new(
                crate::ErrorCode::STATE,
                "the runtime was shut down",
            )),
        }
    }

    /// Shuts the runtime down, waiting at most `timeout` for its tasks.
    pub fn shutdown(&mut self, timeout: Duration) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(timeout);
        }
    }
}

impl Drop for PluginRuntime {
    fn drop(&mut self) {
        // Never block a host thread for long if a vendor forgot to call shutdown.
        self.shutdown(Duration::from_millis(100));
    }
}
