//! Audio without a device: G.711 μ-law/A-law, RTP packets (RFC 3550), RFC 4733 telephone events,
//! a jitter buffer, and WAV files (16-bit PCM, 8 kHz) to play and to record.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;
/// The sample rate.
pub const RATE: u32 = 8000;

/// One 20 ms frame of 16-bit samples.
pub type Frame = [i16; FRAME];

/// A silent frame.
pub const SILENCE: Frame = [0; FRAME];

/// G.711 μ-law encoding of one sample.
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let high = (s >> 7) as u32;
    let exponent = if high == 0 {
        0
    } else {
        (31 - high.leading_zeros()).min(7) as i32
    };
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// G.711 μ-law decoding of one byte.
pub fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let sign = b & 0x80;
    let exponent = i32::from((b >> 4) & 0x07);
    let mantissa = i32::from(b & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// G.711 A-law encoding of one sample.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut s = i32::from(sample) >> 3;
    let mask = if s >= 0 {
        0xd5
    } else {
        s = -s - 1;
        0x55
    };
    let segment_ends = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
    let segment = segment_ends.iter().position(|&end| s <= end).unwrap_or(8) as i32;
    let value = if segment >= 8 {
        0x7f
    } else {
        let shift = if segment < 2 { 1 } else { segment };
        (segment << 4) | ((s >> shift) & 0x0f)
    };
    (value as u8) ^ mask
}

/// G.711 A-law decoding of one byte.
pub fn alaw_decode(byte: u8) -> i16 {
    let a = i32::from(byte ^ 0x55);
    let mut t = (a & 0x0f) << 4;
    let segment = (a & 0x70) >> 4;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= segment - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// An RTP packet (RFC 3550 §5.1) as we send and read it: no CSRCs sent, extensions skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// The payload type.
    pub payload_type: u8,
    /// The marker bit.
    pub marker: bool,
    /// The sequence number.
    pub sequence: u16,
    /// The timestamp.
    pub timestamp: u32,
    /// The source.
    pub ssrc: u32,
    /// The payload.
    pub payload: Vec<u8>,
}

impl RtpPacket {
    /// Parses a datagram; `None` when it is not RTP version 2 or is cut short.
    pub fn parse(data: &[u8]) -> Option<RtpPacket> {
        if data.len() < 12 || data[0] >> 6 != 2 {
            return None;
        }
        let padding = data[0] & 0x20 != 0;
        let extension = data[0] & 0x10 != 0;
        let csrcs = usize::from(data[0] & 0x0f);
        let mut start = 12 + 4 * csrcs;
        if extension {
            let words = data.get(start + 2..start + 4)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        }
        let mut end = data.len();
        if padding {
            end = end.checked_sub(usize::from(*data.last()?))?;
        }
        if start > end {
            return None;
        }
        Some(RtpPacket {
            payload_type: data[1] & 0x7f,
            marker: data[1] & 0x80 != 0,
            sequence: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: data[start..end].to_vec(),
        })
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.payload.len());
        out.push(0x80);
        out.push(self.payload_type & 0x7f | if self.marker { 0x80 } else { 0 });
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// An RFC 4733 telephone event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (0-9, 10 = `*`, 11 = `#`, 12-15 = A-D).
    pub event: u8,
    /// Whether this packet ends the event.
    pub end: bool,
    /// The volume (dBm0 below zero).
    pub volume: u8,
    /// The duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
    /// Parses a payload.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let p = payload.get(..4)?;
        Some(TelephoneEvent {
            event: p[0],
            end: p[1] & 0x80 != 0,
            volume: p[1] & 0x3f,
            duration: u16::from_be_bytes([p[2], p[3]]),
        })
    }
}

/// The event code of a DTMF digit.
pub fn dtmf_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(12 + (digit as u8 - b'A')),
        'a'..='d' => Some(12 + (digit as u8 - b'a')),
        _ => None,
    }
}

/// The digit of an event code.
pub fn dtmf_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// Reorders packets and absorbs jitter: frames come out at a steady 20 ms pace once `depth`
/// frames are buffered; a missing frame is concealed by repeating the last one, fading out.
#[derive(Debug)]
pub struct JitterBuffer {
    depth: usize,
    capacity: usize,
    frames: BTreeMap<u64, Frame>,
    /// The extended sequence number of the next frame to play.
    next: Option<u64>,
    /// The highest extended sequence number seen (for wrap-around).
    highest: Option<u64>,
    playing: bool,
    last: Frame,
    concealed: u32,
    /// Frames that arrived too late or twice and were dropped.
    pub dropped: u64,
    /// Frames concealed because they never arrived in time.
    pub lost: u64,
}

impl JitterBuffer {
    /// A buffer that waits for `depth` frames before playing and keeps at most `capacity`.
    pub fn new(depth: usize, capacity: usize) -> Self {
        JitterBuffer {
            depth: depth.max(1),
            capacity: capacity.max(depth + 1),
            frames: BTreeMap::new(),
            next: None,
            highest: None,
            playing: false,
            last: SILENCE,
            concealed: 0,
            dropped: 0,
            lost: 0,
        }
    }

    fn extend(&self, sequence: u16) -> u64 {
        let Some(highest) = self.highest else {
            return u64::from(sequence) + (1 << 16);
        };
        let cycle = highest & !0xffff;
        let candidates = [cycle.wrapping_sub(1 << 16), cycle, cycle + (1 << 16)];
        candidates
            .iter()
            .map(|c| c + u64::from(sequence))
            .min_by_key(|e| e.abs_diff(highest))
            .unwrap_or(highest)
    }

    /// Adds a decoded frame with its RTP sequence number.
    pub fn push(&mut self, sequence: u16, frame: Frame) {
        let ext = self.extend(sequence);
        if self.next.is_some_and(|next| ext < next) || self.frames.contains_key(&ext) {
            self.dropped += 1;
            return;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.frames.insert(ext, frame);
        while self.frames.len() > self.capacity {
            // Far behind (a burst or a clock drift): skip ahead to stay near real time.
            if let Some((first, _)) = self.frames.pop_first() {
                self.next = Some(first + 1);
                self.dropped += 1;
            }
        }
    }

    /// The next 20 ms to play: a frame, a concealment, or `None` while filling.
    pub fn pop(&mut self) -> Option<Frame> {
        if !self.playing {
            if self.frames.len() < self.depth {
                return None;
            }
            self.playing = true;
            self.next = self.frames.keys().next().copied();
        }
        let next = self.next?;
        if let Some(frame) = self.frames.remove(&next) {
            self.next = Some(next + 1);
            self.last = frame;
            self.concealed = 0;
            return Some(frame);
        }
        if self.frames.is_empty() {
            // Ran dry (hold, silence suppression, peer gone): fill again before playing.
            self.playing = false;
            return None;
        }
        self.next = Some(next + 1);
        self.lost += 1;
        self.concealed += 1;
        let gain = 1.0 / f32::from(1u16 << self.concealed.min(8) as u16);
        let mut frame = self.last;
        for s in &mut frame {
            *s = (f32::from(*s) * gain) as i16;
        }
        Some(frame)
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// Why a WAV file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// Reading failed.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// Not a PCM WAV file we can play.
    #[error("not a 16-bit PCM WAV file: {0}")]
    Format(&'static str),
}

/// Reads a 16-bit PCM WAV file as 8 kHz mono samples (channels are averaged; other rates are
/// resampled by nearest sample, which is enough for prompts and test tones).
pub fn read_wav(path: &Path) -> Result<Vec<i16>, WavError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::Format("no RIFF/WAVE header"));
    }
    let mut at = 12;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " && body.len() >= 16 {
            format = Some((
                u16::from_le_bytes([body[0], body[1]]),
                u16::from_le_bytes([body[2], body[3]]),
                u32::from_le_bytes([body[4], body[5], body[6], body[7]]),
                u16::from_le_bytes([body[14], body[15]]),
            ));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or(WavError::Format("data before fmt"))?;
            if tag != 1 || bits != 16 || channels == 0 || rate == 0 {
                return Err(WavError::Format("only 16-bit PCM is supported"));
            }
            let channels = usize::from(channels);
            let samples: Vec<i16> = body
                .chunks_exact(2 * channels)
                .map(|frame| {
                    let sum: i32 = frame
                        .chunks_exact(2)
                        .map(|s| i32::from(i16::from_le_bytes([s[0], s[1]])))
                        .sum();
                    (sum / channels as i32) as i16
                })
                .collect();
            if rate == RATE {
                return Ok(samples);
            }
            let n = (samples.len() as u64 * u64::from(RATE) / u64::from(rate)) as usize;
            return Ok((0..n)
                .map(|i| samples[(i as u64 * u64::from(rate) / u64::from(RATE)) as usize])
                .collect());
        }
        at += 8 + len + (len & 1);
    }
    Err(WavError::Format("no data chunk"))
}

/// Writes a WAV file as frames arrive: 8 kHz, 16-bit, `channels` interleaved; the header's
/// sizes are fixed up on [`WavWriter::finish`] (and on drop).
#[derive(Debug)]
pub struct WavWriter {
    file: Option<std::io::BufWriter<std::fs::File>>,
    channels: u16,
    data_bytes: u32,
}

impl WavWriter {
    /// Creates the file (and its folder).
    pub fn create(path: &Path, channels: u16) -> std::io::Result<WavWriter> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        file.write_all(&header(channels, 0))?;
        Ok(WavWriter {
            file: Some(file),
            channels,
            data_bytes: 0,
        })
    }

    /// Appends interleaved samples.
    pub fn write(&mut self, samples: &[i16]) -> std::io::Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        let mut bytes = Vec::with_capacity(samples.len() * 2);
        for s in samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        file.write_all(&bytes)?;
        self.data_bytes = self.data_bytes.saturating_add(bytes.len() as u32);
        Ok(())
    }

    /// Writes the final sizes and closes the file.
    pub fn finish(&mut self) -> std::io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header(self.channels, self.data_bytes))?;
        file.flush()
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn header(channels: u16, data_bytes: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let block = channels * 2;
    h[..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_bytes).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(RATE * u32::from(block)).to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_round_trips_within_its_quantisation_error() {
        for s in (-32000i16..32000).step_by(97) {
            let u = ulaw_decode(ulaw_encode(s));
            let a = alaw_decode(alaw_encode(s));
            let tolerance = (i32::from(s).abs() / 16).max(16);
            assert!(
                (i32::from(u) - i32::from(s)).abs() <= tolerance,
                "μ {s} -> {u}"
            );
            assert!(
                (i32::from(a) - i32::from(s)).abs() <= tolerance,
                "A {s} -> {a}"
            );
        }
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(alaw_encode(0), 0xd5);
    }

    #[test]
    fn rtp_and_telephone_events_round_trip() {
        let p = RtpPacket {
            payload_type: 101,
            marker: true,
            sequence: 65535,
            timestamp: 7,
            ssrc: 9,
            payload: TelephoneEvent {
                event: 11,
                end: true,
                volume: 10,
                duration: 800,
            }
            .to_bytes()
            .to_vec(),
        };
        let back = RtpPacket::parse(&p.to_bytes()).expect("parses");
        assert_eq!(back, p);
        let e = TelephoneEvent::parse(&back.payload).expect("event");
        assert_eq!(
            (dtmf_digit(e.event), e.end, e.duration),
            (Some('#'), true, 800)
        );
        assert!(RtpPacket::parse(&[0x40; 20]).is_none());
        assert!(RtpPacket::parse(&[0x80; 5]).is_none());
        assert_eq!(dtmf_event('*'), Some(10));
    }

    fn frame(v: i16) -> Frame {
        [v; FRAME]
    }

    #[test]
    fn the_jitter_buffer_reorders_conceals_and_survives_wrap_around() {
        let mut jb = JitterBuffer::new(2, 10);
        jb.push(65534, frame(1));
        assert_eq!(jb.pop(), None, "filling");
        jb.push(0, frame(3)); // out of order, across the wrap
        jb.push(65535, frame(2));
        assert_eq!(jb.pop().map(|f| f[0]), Some(1));
        assert_eq!(jb.pop().map(|f| f[0]), Some(2));
        assert_eq!(jb.pop().map(|f| f[0]), Some(3));
        jb.push(1, frame(4));
        jb.push(1, frame(4));
        assert_eq!(jb.dropped, 1, "a duplicate is dropped");
        jb.push(3, frame(6)); // 2 is lost
        assert_eq!(jb.pop().map(|f| f[0]), Some(4));
        assert_eq!(
            jb.pop().map(|f| f[0]),
            Some(2),
            "concealed from the last frame"
        );
        assert_eq!(jb.lost, 1);
        assert_eq!(jb.pop().map(|f| f[0]), Some(6));
        jb.push(2, frame(5));
        assert_eq!(jb.dropped, 2, "too late");
        assert_eq!(jb.pop(), None, "ran dry");
    }

    #[test]
    fn a_written_wav_reads_back() {
        let dir = std::env::temp_dir().join(format!("voice-wav-{}", std::process::id()));
        let path = dir.join("t.wav");
        let mut w = WavWriter::create(&path, 1).expect("create");
        w.write(&[1, -2, 3]).expect("write");
        w.finish().expect("finish");
        assert_eq!(read_wav(&path).expect("read"), vec![1, -2, 3]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
