//! Encoding of typed messages into [`Envelope`]s and back (JSON, tolerant of unknown fields).
//! Holds the `Message` trait and the macro that builds the open vocabulary enums; no message types.

use crate::abi::Envelope;
use abi_stable::std_types::{RString, RVec};
use serde::{Serialize, de::DeserializeOwned};

/// A typed message with a fixed kind name and schema version.
pub trait Message: Serialize + DeserializeOwned {
    /// The kind name written into [`Envelope::kind`].
    const KIND: &'static str;
    /// The schema version of this kind written into [`Envelope::schema`].
    const SCHEMA: u32 = 1;

    /// Encodes this message into an envelope.
    fn to_envelope(&self) -> Envelope {
        encode(self)
    }

    /// Decodes an envelope of this kind. Unknown fields are ignored; a different kind is an error.
    fn from_envelope(envelope: &Envelope) -> Result<Self, CodecError> {
        if envelope.kind.as_str() != Self::KIND {
            return Err(CodecError::WrongKind {
                expected: Self::KIND,
                found: envelope.kind.to_string(),
            });
        }
        decode_bytes(Self::KIND, &envelope.bytes)
    }
}

/// Why an envelope could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The envelope holds another kind than the one asked for.
    WrongKind {
        /// The kind that was expected.
        expected: &'static str,
        /// The kind that was found.
        found: String,
    },
    /// The bytes are not a valid message of that kind.
    Malformed {
        /// The kind being decoded.
        kind: String,
        /// The decoder's explanation (line, column, field).
        reason: String,
    },
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::WrongKind { expected, found } => {
                write!(f, "expected a `{expected}` message, found `{found}`")
            }
            CodecError::Malformed { kind, reason } => {
                write!(f, "malformed `{kind}` message: {reason}")
            }
        }
    }
}

impl std::error::Error for CodecError {}

impl From<CodecError> for crate::PluginError {
    fn from(e: CodecError) -> Self {
        crate::PluginError::invalid(e.to_string())
    }
}

/// Encodes any message into an envelope.
pub fn encode<M: Message>(message: &M) -> Envelope {
    // Serializing our own plain data types to JSON cannot fail: they hold no maps with non-string
    // keys and no types whose Serialize implementation returns errors.
    let bytes = serde_json::to_vec(message).unwrap_or_default();
    Envelope {
        kind: RString::from(M::KIND),
        schema: M::SCHEMA,
        bytes: RVec::from(bytes),
    }
}

pub(crate) fn decode_bytes<M: DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<M, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| CodecError::Malformed {
        kind: kind.to_string(),
        reason: e.to_string(),
    })
}

/// A message of a kind this version of plugin-api does not know (sent by a newer peer).
/// It is kept as it came so that it can be logged, forwarded or answered "unsupported".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMessage {
    /// The kind name.
    pub kind: String,
    /// The schema version.
    pub schema: u32,
    /// The raw JSON bytes.
    pub bytes: Vec<u8>,
}

/// Builds an open vocabulary enum: one variant per message type plus `Unknown`, with
/// `kind`, `to_envelope`, `from_envelope`, `known_kinds` and `From` for every message type.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty), )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($ty), )*
            /// A kind this version does not know, kept as it came.
            Unknown($crate::codec::UnknownMessage),
        }

        impl $name {
            /// Every kind this version of plugin-api knows for this enum.
            pub const KNOWN_KINDS: &'static [&'static str] =
                &[$( <$ty as $crate::codec::Message>::KIND, )*];

            /// The kind name of this message.
            pub fn kind(&self) -> &str {
                match self {
                    $( Self::$variant(_) => <$ty as $crate::codec::Message>::KIND, )*
                    Self::Unknown(unknown) => &unknown.kind,
                }
            }

            /// Encodes this message into an envelope (an `Unknown` one is passed on unchanged).
            pub fn to_envelope(&self) -> $crate::Envelope {
                match self {
                    $( Self::$variant(m) => $crate::codec::encode(m), )*
                    Self::Unknown(unknown) => $crate::Envelope {
                        kind: unknown.kind.as_str().into(),
                        schema: unknown.schema,
                        bytes: unknown.bytes.clone().into(),
                    },
                }
            }

            /// Decodes an envelope. An unknown kind is `Ok(Unknown)`; a known kind with bytes
            /// that do not decode is an error.
            pub fn from_envelope(envelope: &$crate::Envelope) -> Result<Self, $crate::CodecError> {
                let kind = envelope.kind.as_str();
                $(
                    if kind == <$ty as $crate::codec::Message>::KIND {
                        return $crate::codec::decode_bytes::<$ty>(kind, &envelope.bytes)
                            .map(Self::$variant);
                    }
                )*
                Ok(Self::Unknown($crate::codec::UnknownMessage {
                    kind: kind.to_string(),
                    schema: envelope.schema,
                    bytes: envelope.bytes.to_vec(),
                }))
            }
        }

        $(
            impl From<$ty> for $name {
                fn from(m: $ty) -> Self {
                    Self::$variant(m)
                }
            }
        )*
    };
}

/// Implements [`Message`] for a struct with the given kind name.
macro_rules! message_kind {
    ($($ty:ty => $kind:literal),* $(,)?) => {
        $( impl $crate::codec::Message for $ty { const KIND: &'static str = $kind; } )*
    };
}

pub(crate) use {message_kind, vocabulary};
