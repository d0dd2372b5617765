//! What a vendor implements ([`ChannelPlugin`]) and uses ([`Host`]), and the guard that turns it
//! into the frozen ABI trait. Every entry point runs inside `catch_unwind` on the plugin's side.

use crate::abi::{Envelope, HostServicesBox, LogLevel, Plugin, PluginError};
use crate::codec::Message;
use crate::vocabulary::commands::{Command, Reply};
use crate::vocabulary::events::Event;
use crate::vocabulary::session::{HostHello, PluginConfig, PluginDescriptor, PluginHello};
use abi_stable::std_types::{RErr, RResult, RStr};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;

/// A channel plugin. Implement this and export it with [`crate::export_plugin!`].
///
/// The host creates exactly one instance per host process, calls `start` once, then `handle` for
/// each command, and `stop` once at shutdown or when the admin disables the channel. Calls come
/// from one host thread at a time and each has a deadline: do I/O on your own threads (see
/// [`crate::runtime`]) and report through [`Host::emit`]. A panic is caught and turned into an
/// error, after which the host quarantines the plugin: it takes no more calls.
pub trait ChannelPlugin: Send + Sized + 'static {
    /// Static facts about the plugin. Called before `create`; must not start anything.
    fn descriptor() -> PluginDescriptor;

    /// Creates the instance from the host services and its configuration section.
    fn create(host: Host, config: PluginConfig) -> Result<Self, PluginError>;

    /// Starts I/O and answers with what this instance supports.
    fn start(&mut self, hello: &HostHello) -> Result<PluginHello, PluginError>;

    /// Handles one command. Return [`PluginError::unsupported`] for commands you do not handle.
    fn handle(&mut self, command: Command) -> Result<Reply, PluginError>;

    /// Stops I/O and threads. Called once; the instance is dropped afterwards.
    fn stop(&mut self) -> Result<(), PluginError>;
}

/// The host's services as a plugin uses them. Cheap to clone and usable from any thread.
#[derive(Clone)]
pub struct Host {
    services: Arc<HostServicesBox>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl Host {
    /// Wraps the services the host passed to `create`.
    pub fn new(services: HostServicesBox) -> Self {
        Host {
            services: Arc::new(services),
        }
    }

    /// Sends an event to the host. Never blocks; fails with `QUEUE_FULL` when the host is behind.
    pub fn emit(&self, event: impl Into<Event>) -> Result<(), PluginError> {
        self.emit_envelope(event.into().to_envelope())
    }

    /// Sends an already encoded event (for kinds newer than this plugin-api).
    pub fn emit_envelope(&self, envelope: Envelope) -> Result<(), PluginError> {
        self.services.emit(envelope).into_result()
    }

    /// Writes a line to the host's log.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.services.log(level, RStr::from_str(message));
    }

    /// Logs at INFO.
    pub fn info(&self, message: &str) {
        self.log(LogLevel::INFO, message);
    }

    /// Logs at WARN.
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::WARN, message);
    }

    /// Logs at ERROR.
    pub fn error(&self, message: &str) {
        self.log(LogLevel::ERROR, message);
    }

    /// This plugin's durable data directory (exists, kept across restarts).
    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(self.services.data_dir().as_str())
    }

    /// A request to a host service (none are defined in 1.0: the answer is `UNSUPPORTED`).
    pub fn request(&self, request: Envelope) -> Result<Envelope, PluginError> {
        self.services.request(request).into_result()
    }
}

/// Wraps a [`ChannelPlugin`] as the ABI's [`Plugin`]: decodes, catches panics, encodes.
#[doc(hidden)]
pub struct Guarded<P> {
    // `None` only while being dropped.
    inner: Option<P>,
    poisoned: Option<String>,
}

impl<P> Drop for Guarded<P> {
    fn drop(&mut self) {
        // The host drops the instance through the ABI: a panic in the plugin's Drop must not
        // unwind across it.
        let inner = self.inner.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
    }
}

impl<P: ChannelPlugin> Guarded<P> {
    /// Wraps an instance (used by [`crate::export_plugin!`], and by benchmarks that compare the
    /// same calls without the library boundary).
    pub fn new(inner: P) -> Self {
        Guarded {
            inner: Some(inner),
            poisoned: None,
        }
    }

    fn call<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut P) -> Result<T, PluginError>,
    ) -> RResult<T, PluginError> {
        if let Some(earlier) = &self.poisoned {
            return RErr(PluginError::new(
                crate::ErrorCode::PANICKED,
                format!("the plugin panicked earlier ({earlier}) and takes no more calls"),
            ));
        }
        let Some(inner) = self.inner.as_mut() else {
            return RErr(PluginError::failed("the plugin instance is being dropped"));
        };
        match catch_unwind(AssertUnwindSafe(|| f(inner))) {
            Ok(result) => result.into(),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                self.poisoned = Some(message.clone());
                RErr(PluginError::new(
                    crate::ErrorCode::PANICKED,
                    format!("panicked in `{what}`: {message}"),
                ))
            }
        }
    }
}

impl<P: ChannelPlugin> Plugin for Guarded<P> {
    fn start(&mut self, hello: Envelope) -> RResult<Envelope, PluginError> {
        self.call("start", |plugin| {
            let hello = HostHello::from_envelope(&hello)?;
            plugin.start(&hello).map(|answer| answer.to_envelope())
        })
    }

    fn handle(&mut self, command: Envelope) -> RResult<Envelope, PluginError> {
        self.call("handle", |plugin| match Command::from_envelope(&command)? {
            Command::Unknown(unknown) => Err(PluginError::unsupported(&unknown.kind)),
            command => plugin.handle(command).map(|reply| reply.to_envelope()),
        })
    }

    fn stop(&mut self) -> RResult<(), PluginError> {
        self.call("stop", |plugin| plugin.stop())
    }
}

/// Text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.into(),
        Err(payload) => RErr(PluginError::new(
            crate::ErrorCode::PANICKED,
            format!("panicked in `{what}`: {}", panic_message(payload.as_ref())),
        )),
    }
}

/// The `describe` entry point of [`crate::export_plugin!`].
#[doc(hidden)]
pub extern "C" fn describe_entry<P: ChannelPlugin>() -> RResult<Envelope, PluginError> {
    guarded("describe", || {
        let mut descriptor = P::descriptor();
        descriptor.api_version = crate::API_VERSION.to_string();
        Ok(descriptor.to_envelope())
    })
}

/// The `create` entry point of [`crate::export_plugin!`].
#[doc(hidden)]
pub extern "C" fn create_entry<P: ChannelPlugin>(
    services: HostServicesBox,
    config: Envelope,
) -> RResult<crate::abi::PluginBox, PluginError> {
    guarded("create", || {
        let config = PluginConfig::from_envelope(&config)?;
        let inner = P::create(Host::new(services), config)?;
        let guarded = Guarded {
            inner: Some(inner),
            poisoned: None,
        };
        Ok(crate::abi::Plugin_TO::from_value(
            guarded,
            abi_stable::sabi_trait::TD_Opaque,
        ))
    })
}

/// Exports a [`ChannelPlugin`] as this library's root module. Use it once, at the crate root of a
/// `cdylib`. Your crate must depend on `abi_stable` with the exact version plugin-api uses
/// (`=0.11.3`), because abi_stable's export attribute refers to it by name.
///
/// ```ignore
/// struct Sms { /* ... */ }
/// impl plugin_api::ChannelPlugin for Sms { /* ... */ }
/// plugin_api::export_plugin!(Sms);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The root module of this agentdesk plugin.
        #[::abi_stable::export_root_module]
        pub fn agentdesk_plugin_root() -> $crate::PluginRoot_Ref {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::PluginRoot {
                describe: $crate::plugin::describe_entry::<$plugin>,
                create: $crate::plugin::create_entry::<$plugin>,
            }
            .leak_into_prefix()
        }
    };
}

/// Answers a command the plugin does not handle; for the `_` arm of a `match` in `handle`.
pub fn unsupported(command: &Command) -> Result<Reply, PluginError> {
    Err(PluginError::unsupported(command.kind()))
}
