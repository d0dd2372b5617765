//! The runner protocol's frames: what the host and a plugin runner say to each other, and their
//! byte encoding. No I/O policy here beyond reading and writing one frame.
//!
//! A frame is a little-endian `u32` length followed by that many bytes of payload, never more than
//! [`MAX_FRAME_BYTES`]. The payload is a tag byte and the message's fields: integers little-endian,
//! strings and byte strings as a `u32` length and the bytes. The envelopes inside are the same
//! [`Envelope`]s an in-process plugin exchanges, carried opaque. Frames from a runner are input
//! from an untrusted process: the decoder checks every length against what is left, refuses
//! unknown tags and trailing bytes, and never allocates more than the frame it was given.

use abi_stable::std_types::{RString, RVec};
use plugin_api::{Envelope, ErrorCode, PluginError};
use std::io::{Read, Write};

/// The largest payload either side accepts (16 MiB). A bigger frame is a protocol violation.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// A frame that could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended cleanly between frames.
    #[error("the stream ended")]
    Closed,
    /// Reading or writing failed (including an end of stream inside a frame).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The announced length is over the limit.
    #[error("a frame of {len} bytes is over the limit of {MAX_FRAME_BYTES}")]
    TooLarge {
        /// The announced length.
        len: usize,
    },
    /// The payload ended before a field did.
    #[error("the frame ends inside a field ({what})")]
    Truncated {
        /// The field.
        what: &'static str,
    },
    /// A tag this side does not know.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enum.
        what: &'static str,
        /// The tag.
        tag: u8,
    },
    /// A string that is not UTF-8.
    #[error("a string field is not UTF-8")]
    NotUtf8,
    /// Bytes left over after the message.
    #[error("{0} bytes after the end of the message")]
    Trailing(usize),
}

/// What the host asks of a runner. Calls are answered in order by [`FromRunner::Answer`] with
/// the same `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToRunner {
    /// Open the library (the same checks as in the host) and answer with its descriptor.
    Describe {
        /// Call number.
        seq: u64,
        /// The library file.
        library: String,
    },
    /// Create the instance with the plugin's configuration envelope.
    Create {
        /// Call number.
        seq: u64,
        /// The plugin's durable data directory.
        data_dir: String,
        /// A `PluginConfig` envelope.
        config: Envelope,
    },
    /// `start` with a `HostHello` envelope.
    Start {
        /// Call number.
        seq: u64,
        /// The hello.
        hello: Envelope,
    },
    /// `handle` one command envelope.
    Handle {
        /// Call number.
        seq: u64,
        /// The command.
        command: Envelope,
    },
    /// `stop`; the runner exits after answering.
    Stop {
        /// Call number.
        seq: u64,
    },
    /// The answer to a plugin's [`FromRunner::Request`].
    RequestAnswer {
        /// The request's number.
        id: u64,
        /// The answer.
        answer: Result<Envelope, PluginError>,
    },
}

/// What a runner tells the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromRunner {
    /// The answer to the call numbered `seq`.
    Answer {
        /// Call number.
        seq: u64,
        /// How many events the runner had queued for the host before this answer: the host
        /// hands the answer on only once it has taken that many (events arrive on the other
        /// stream, so this keeps an event emitted during a call ahead of the call's answer).
        events_before: u64,
        /// The plugin's answer.
        answer: Result<Envelope, PluginError>,
    },
    /// The plugin emitted an event.
    Emit(Envelope),
    /// The plugin logged a line.
    Log {
        /// A `LogLevel` value.
        level: u8,
        /// The line.
        message: String,
    },
    /// The plugin asked a host service; answered by [`ToRunner::RequestAnswer`].
    Request {
        /// Request number.
        id: u64,
        /// The request.
        request: Envelope,
    },
}

/// Writes one frame (length and payload); the caller flushes.
pub fn write_frame(out: &mut impl Write, payload: &[u8]) -> Result<(), FrameError> {
    if payload.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge { len: payload.len() });
    }
    out.write_all(&(payload.len() as u32).to_le_bytes())?;
    out.write_all(payload)?;
    Ok(())
}

/// Reads one frame's payload into `buf` (reused between calls). A stream that ends before the
/// first byte of a frame is [`FrameError::Closed`]; anywhere else it is an i/o error.
pub fn read_frame(input: &mut impl Read, buf: &mut Vec<u8>) -> Result<(), FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge { len });
    }
    buf.clear();
    buf.resize(len, 0);
    input.read_exact(buf)?;
    Ok(())
}

impl ToRunner {
    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Encoder::default();
        match self {
            ToRunner::Describe { seq, library } => {
                out.u8(1).u64(*seq).str(library);
            }
            ToRunner::Create {
                seq,
                data_dir,
                config,
            } => {
                out.u8(2).u64(*seq).str(data_dir).envelope(config);
            }
            ToRunner::Start { seq, hello } => {
                out.u8(3).u64(*seq).envelope(hello);
            }
            ToRunner::Handle { seq, command } => {
                out.u8(4).u64(*seq).envelope(command);
            }
            ToRunner::Stop { seq } => {
                out.u8(5).u64(*seq);
            }
            ToRunner::RequestAnswer { id, answer } => {
                out.u8(6).u64(*id).result(answer);
            }
        }
        out.0
    }

    /// Decodes a payload.
    pub fn decode(payload: &[u8]) -> Result<Self, FrameError> {
        let mut d = Decoder(payload);
        let message = match d.u8("tag")? {
            1 => ToRunner::Describe {
                seq: d.u64("seq")?,
                library: d.string("library")?,
            },
            2 => ToRunner::Create {
                seq: d.u64("seq")?,
                data_dir: d.string("data dir")?,
                config: d.envelope()?,
            },
            3 => ToRunner::Start {
                seq: d.u64("seq")?,
                hello: d.envelope()?,
            },
            4 => ToRunner::Handle {
                seq: d.u64("seq")?,
                command: d.envelope()?,
            },
            5 => ToRunner::Stop { seq: d.u64("seq")? },
            6 => ToRunner::RequestAnswer {
                id: d.u64("id")?,
                answer: d.result()?,
            },
            tag => {
                return Err(FrameError::UnknownTag {
                    what: "host message",
                    tag,
                });
            }
        };
        d.finish()?;
        Ok(message)
    }
}

impl FromRunner {
    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Encoder::default();
        match self {
            FromRunner::Answer {
                seq,
                events_before,
                answer,
            } => {
                out.u8(1).u64(*seq).u64(*events_before).result(answer);
            }
            FromRunner::Emit(event) => {
                out.u8(2).envelope(event);
            }
            FromRunner::Log { level, message } => {
                out.u8(3).u8(*level).str(message);
            }
            FromRunner::Request { id, request } => {
                out.u8(4).u64(*id).envelope(request);
            }
        }
        out.0
    }

    /// Decodes a payload.
    pub fn decode(payload: &[u8]) -> Result<Self, FrameError> {
        let mut d = Decoder(payload);
        let message = match d.u8("tag")? {
            1 => FromRunner::Answer {
                seq: d.u64("seq")?,
                events_before: d.u64("events before")?,
                answer: d.result()?,
            },
            2 => FromRunner::Emit(d.envelope()?),
            3 => FromRunner::Log {
                level: d.u8("level")?,
                message: d.string("message")?,
            },
            4 => FromRunner::Request {
                id: d.u64("id")?,
                request: d.envelope()?,
            },
            tag => {
                return Err(FrameError::UnknownTag {
                    what: "runner message",
                    tag,
                });
            }
        };
        d.finish()?;
        Ok(message)
    }
}

#[derive(Default)]
struct Encoder(Vec<u8>);

impl Encoder {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Lengths over u32 cannot fit a frame anyway; `write_frame` refuses the frame.
        self.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(v);
        self
    }
    fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    fn envelope(&mut self, e: &Envelope) -> &mut Self {
        self.str(&e.kind).u32(e.schema).bytes(&e.bytes)
    }
    fn result(&mut self, r: &Result<Envelope, PluginError>) -> &mut Self {
        match r {
            Ok(e) => self.u8(0).envelope(e),
            Err(e) => self.u8(1).u32(e.code.0).str(&e.message),
        }
    }
}

struct Decoder<'a>(&'a [u8]);

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Truncated { what });
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, FrameError> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, FrameError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, FrameError> {
        let mut v = [0u8; 8];
        v.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(v))
    }
    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], FrameError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }
    fn string(&mut self, what: &'static str) -> Result<String, FrameError> {
        std::str::from_utf8(self.bytes(what)?)
            .map(str::to_owned)
            .map_err(|_| FrameError::NotUtf8)
    }
    fn envelope(&mut self) -> Result<Envelope, FrameError> {
        Ok(Envelope {
            kind: RString::from(self.string("envelope kind")?),
            schema: self.u32("envelope schema")?,
            bytes: RVec::from(self.bytes("envelope bytes")?.to_vec()),
        })
    }
    fn result(&mut self) -> Result<Result<Envelope, PluginError>, FrameError> {
        match self.u8("result tag")? {
            0 => Ok(Ok(self.envelope()?)),
            1 => {
                let code = ErrorCode(self.u32("error code")?);
                Ok(Err(PluginError::new(code, self.string("error message")?)))
            }
            tag => Err(FrameError::UnknownTag {
                what: "result",
                tag,
            }),
        }
    }
    fn finish(&self) -> Result<(), FrameError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(FrameError::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn envelope(kind: &str, bytes: &[u8]) -> Envelope {
        Envelope {
            kind: kind.into(),
            schema: 3,
            bytes: bytes.to_vec().into(),
        }
    }

    #[test]
    fn every_message_survives_encoding_and_a_frame() {
        let to = [
            ToRunner::Describe {
                seq: 1,
                library: "/p/libx.so".into(),
            },
            ToRunner::Create {
                seq: 2,
                data_dir: "/d".into(),
                config: envelope("config", b"{}"),
            },
            ToRunner::Start {
                seq: 3,
                hello: envelope("host-hello", b"{\"a\":1}"),
            },
            ToRunner::Handle {
                seq: u64::MAX,
                command: envelope("accept", &[0, 255, 7]),
            },
            ToRunner::Stop { seq: 5 },
            ToRunner::RequestAnswer {
                id: 9,
                answer: Err(PluginError::unsupported("store-get")),
            },
        ];
        for message in to {
            let mut wire = Vec::new();
            write_frame(&mut wire, &message.encode()).expect("write");
            let mut buf = Vec::new();
            read_frame(&mut wire.as_slice(), &mut buf).expect("read");
            assert_eq!(ToRunner::decode(&buf).expect("decode"), message);
        }
        let from = [
            FromRunner::Answer {
                seq: 4,
                events_before: 0,
                answer: Ok(envelope("reply", b"ok")),
            },
            FromRunner::Answer {
                seq: 4,
                events_before: u64::MAX,
                answer: Err(PluginError::new(ErrorCode(77), "new code")),
            },
            FromRunner::Emit(envelope("offer", b"{}")),
            FromRunner::Log {
                level: 3,
                message: "hé".into(),
            },
            FromRunner::Request {
                id: 1,
                request: envelope("store-get", b""),
            },
        ];
        for message in from {
            assert_eq!(
                FromRunner::decode(&message.encode()).expect("decode"),
                message
            );
        }
    }

    #[test]
    fn an_oversized_length_is_refused_before_anything_is_allocated() {
        let wire = (MAX_FRAME_BYTES as u32 + 1).to_le_bytes();
        let mut buf = Vec::new();
        let err = read_frame(&mut wire.as_slice(), &mut buf).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
        assert_eq!(buf.capacity(), 0);
        assert!(matches!(
            read_frame(&mut [].as_slice(), &mut buf),
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            read_frame(&mut [5, 0, 0, 0, 1].as_slice(), &mut buf),
            Err(FrameError::Io(_))
        ));
    }

    #[test]
    fn bad_payloads_are_named_not_panicked_on() {
        let emit = FromRunner::Emit(envelope("offer", b"{}")).encode();
        assert!(matches!(
            FromRunner::decode(&emit[..emit.len() - 1]),
            Err(FrameError::Truncated { .. })
        ));
        let mut longer = emit.clone();
        longer.push(0);
        assert!(matches!(
            FromRunner::decode(&longer),
            Err(FrameError::Trailing(1))
        ));
        assert!(matches!(
            FromRunner::decode(&[99]),
            Err(FrameError::UnknownTag { tag: 99, .. })
        ));
        // A length field pointing far past the end.
        assert!(matches!(
            FromRunner::decode(&[2, 255, 255, 255, 255]),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(
            FromRunner::decode(&[3, 1, 1, 0, 0, 0, 0xff]),
            Err(FrameError::NotUtf8)
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = FromRunner::decode(&bytes);
            let _ = ToRunner::decode(&bytes);
            let mut buf = Vec::new();
            let _ = read_frame(&mut bytes.as_slice(), &mut buf);
        }
    }
}
