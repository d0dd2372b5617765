//! How a new offer rings. The desktop asks a [`RingSink`]; nothing blocks or fails without a sound
//! device. [`PlayerSink`] plays the tone through the system's player (`pw-play`, `paplay` or
//! `aplay`, found at run time, started without waiting for it); [`WavSink`] writes each ring as a
//! WAV file (tests assert on it); [`SilentSink`] only counts.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One ring request: an offer that just arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// The interaction offered.
    pub key: u64,
    /// Its channel.
    pub channel: String,
}

/// Where rings go.
pub trait RingSink: Send {
    /// Rings once for `ring`. Must return at once (no blocking on a device).
    fn ring(&mut self, ring: &Ring);
}

/// Counts rings and plays nothing.
#[derive(Debug, Default, Clone)]
pub struct SilentSink {
    /// How many rings were asked for.
    pub count: Arc<AtomicUsize>,
}

impl RingSink for SilentSink {
    fn ring(&mut self, _ring: &Ring) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }
}

/// Writes each ring as `ring-<key>.wav` (a 440/480 Hz ring-back tone, 8 kHz mono, 1 s) in a
/// directory.
#[derive(Debug, Clone)]
pub struct WavSink {
    dir: PathBuf,
}

impl WavSink {
    /// Rings into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WavSink { dir: dir.into() }
    }
}

impl RingSink for WavSink {
    fn ring(&mut self, ring: &Ring) {
        let path = self.dir.join(format!("ring-{}.wav", ring.key));
        if let Err(e) = std::fs::write(&path, ring_tone_wav()) {
            tracing::warn!("ring not written to {}: {e}", path.display());
        }
    }
}

/// Plays the ring tone through the first audio player found on `PATH`.
#[derive(Debug, Clone)]
pub struct PlayerSink {
    player: PathBuf,
    tone: PathBuf,
}

impl PlayerSink {
    /// A sink over the first of `pw-play`, `paplay`, `aplay` on `PATH`, with the tone written to
    /// `dir`; `None` when there is no player (or the tone cannot be written).
    pub fn find(dir: &std::path::Path) -> Option<Self> {
        let path = std::env::var_os("PATH")?;
        let player = ["pw-play", "paplay", "aplay"].iter().find_map(|name| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })?;
        let tone = dir.join("ring.wav");
        std::fs::create_dir_all(dir).ok()?;
        std::fs::write(&tone, ring_tone_wav()).ok()?;
        Some(PlayerSink { player, tone })
    }
}

impl RingSink for PlayerSink {
    fn ring(&mut self, _ring: &Ring) {
        let started = std::process::Command::new(&self.player)
            .arg(&self.tone)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match started {
            // Reaped by a thread of its own so no zombie is left; the desktop never waits.
            Ok(mut child) => {
                let _ = std::thread::Builder::new()
                    .name("ring".into())
                    .spawn(move || child.wait());
            }
            Err(e) => tracing::warn!("ring not played by {}: {e}", self.player.display()),
        }
    }
}

/// One second of the North American ring-back tone (440 + 480 Hz) as a 16-bit PCM WAV file.
pub fn ring_tone_wav() -> Vec<u8> {
    const RATE: u32 = 8000;
    let samples: Vec<i16> = (0..RATE)
        .map(|n| {
            let t = n as f32 / RATE as f32;
            let v = (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + (2.0 * std::f32::consts::PI * 480.0 * t).sin();
            (v * 0.25 * i16::MAX as f32) as i16
        })
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&RATE.to_le_bytes());
    wav.extend_from_slice(&(RATE * 2).to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    wav
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_tone_is_a_well_formed_one_second_pcm_wav() {
        let wav = ring_tone_wav();
        assert_eq!(&wav[0..4], b"RIFF");
        assert_eq!(&wav[8..16], b"WAVEfmt ");
        let data_len = u32::from_le_bytes([wav[40], wav[41], wav[42], wav[43]]);
        assert_eq!(data_len, 16_000, "8,000 16-bit samples");
        assert_eq!(wav.len(), 44 + 16_000);
        assert!(wav[44..].iter().any(|b| *b != 0), "the tone is not silence");
    }
}
