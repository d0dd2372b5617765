//! How a new offer rings: a customer's with the ring-back tone, a colleague's internal IM with a
//! soft, short chime. The desktop asks a [`RingSink`]; nothing blocks or fails without a sound
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
    /// A soft chime instead of the ring: an internal IM (a colleague, not a customer).
    pub soft: bool,
}

impl Ring {
    /// The sound of this ring, as a WAV file.
    pub fn tone(&self) -> Vec<u8> {
        if self.soft {
            chime_wav()
        } else {
            ring_tone_wav()
        }
    }
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

/// Writes each ring as `ring-<key>.wav` (the ring-back tone, or the soft chime) in a directory.
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
        if let Err(e) = std::fs::write(&path, ring.tone()) {
            tracing::warn!("ring not written to {}: {e}", path.display());
        }
    }
}

/// Plays the ring tone through the first audio player found on `PATH`.
#[derive(Debug, Clone)]
pub struct PlayerSink {
    player: PathBuf,
    tone: PathBuf,
    chime: PathBuf,
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
        let (tone, chime) = (dir.join("ring.wav"), dir.join("chime.wav"));
        std::fs::create_dir_all(dir).ok()?;
        std::fs::write(&tone, ring_tone_wav()).ok()?;
        std::fs::write(&chime, chime_wav()).ok()?;
        Some(PlayerSink {
            player,
            tone,
            chime,
        })
    }
}

impl RingSink for PlayerSink {
    fn ring(&mut self, ring: &Ring) {
        let sound = if ring.soft { &self.chime } else { &self.tone };
        let started = std::process::Command::new(&self.player)
            .arg(sound)
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

/// Samples per second of the tones.
const RATE: u32 = 8000;

/// One second of the North American ring-back tone (440 + 480 Hz) as a 16-bit PCM WAV file.
pub fn ring_tone_wav() -> Vec<u8> {
    let samples: Vec<i16> = (0..RATE)
        .map(|n| {
            let t = n as f32 / RATE as f32;
            let v = (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + (2.0 * std::f32::consts::PI * 480.0 * t).sin();
            (v * 0.25 * i16::MAX as f32) as i16
        })
        .collect();
    wav(&samples)
}

/// A quarter of a second of 880 Hz, quiet and fading out: an internal IM's soft chime.
pub fn chime_wav() -> Vec<u8> {
    let len = RATE / 4;
    let samples: Vec<i16> = (0..len)
        .map(|n| {
            let t = n as f32 / RATE as f32;
            let fade = 1.0 - n as f32 / len as f32;
            let v = (2.0 * std::f32::consts::PI * 880.0 * t).sin() * fade;
            (v * 0.08 * i16::MAX as f32) as i16
        })
        .collect();
    wav(&samples)
}

/// 8 kHz mono 16-bit PCM samples as a WAV file.
fn wav(samples: &[i16]) -> Vec<u8> {
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

    fn peak(wav: &[u8]) -> i16 {
        wav[44..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]).saturating_abs())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn an_ims_chime_is_shorter_and_softer_than_a_customers_ring() {
        let (ring, chime) = (ring_tone_wav(), chime_wav());
        assert_eq!(
            chime.len(),
            44 + 4_000,
            "2,000 samples: a quarter of a second"
        );
        assert!(peak(&chime) > 0, "the chime is not silence");
        assert!(
            peak(&chime) * 4 < peak(&ring),
            "{} vs {}",
            peak(&chime),
            peak(&ring)
        );
        let soft = Ring {
            key: 1,
            channel: "im".into(),
            soft: true,
        };
        assert_eq!(soft.tone(), chime);
    }
}
