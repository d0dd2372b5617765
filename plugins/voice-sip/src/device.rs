//! The agent's real headset (cargo feature `device`): ALSA's `arecord` and `aplay` (package
//! `alsa-utils`) started as child processes on the default device, 8 kHz 16-bit mono raw PCM over
//! pipes. No audio library is linked; without the feature the plugin plays its WAV file.

use crate::audio::{FRAME, Frame, SILENCE};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

/// Frames kept from the microphone at most (older ones are dropped: 200 ms).
const CAPTURE_FRAMES: usize = 10;

/// The headset: microphone frames in, speaker frames out.
pub struct Device {
    captured: Arc<Mutex<VecDeque<Frame>>>,
    speaker: SyncSender<Frame>,
    children: Mutex<Vec<Child>>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Device")
    }
}

fn pcm_args(program: &str) -> Command {
    let mut c = Command::new(program);
    c.args(["-q", "-t", "raw", "-f", "S16_LE", "-r", "8000", "-c", "1"]);
    c
}

impl Device {
    /// Starts `arecord` and `aplay` on the default ALSA device.
    pub fn open() -> std::io::Result<Device> {
        let mut record = pcm_args("arecord")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut play = pcm_args("aplay")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let captured = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(mut out) = record.stdout.take() {
            let captured = captured.clone();
            std::thread::Builder::new()
                .name("voice-mic".into())
                .spawn(move || {
                    let mut bytes = [0u8; FRAME * 2];
                    while out.read_exact(&mut bytes).is_ok() {
                        let mut frame = SILENCE;
                        for (s, b) in frame.iter_mut().zip(bytes.chunks_exact(2)) {
                            *s = i16::from_le_bytes([b[0], b[1]]);
                        }
                        let mut q = captured.lock().unwrap_or_else(|p| p.into_inner());
                        q.push_back(frame);
                        while q.len() > CAPTURE_FRAMES {
                            q.pop_front();
                        }
                    }
                })?;
        }
        let (speaker, frames): (SyncSender<Frame>, Receiver<Frame>) = sync_channel(CAPTURE_FRAMES);
        if let Some(mut input) = play.stdin.take() {
            std::thread::Builder::new()
                .name("voice-speaker".into())
                .spawn(move || {
                    while let Ok(frame) = frames.recv() {
                        let bytes: Vec<u8> = frame.iter().flat_map(|s| s.to_le_bytes()).collect();
                        if input.write_all(&bytes).is_err() {
                            return;
                        }
                    }
                })?;
        }
        Ok(Device {
            captured,
            speaker,
            children: Mutex::new(vec![record, play]),
        })
    }

    /// The next 20 ms from the microphone (silence when none is waiting).
    pub fn capture(&self) -> Frame {
        self.captured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
            .unwrap_or(SILENCE)
    }

    /// 20 ms for the speaker (dropped when the speaker is behind).
    pub fn play(&self, frame: Frame) {
        if let Err(TrySendError::Disconnected(_)) = self.speaker.try_send(frame) {
            // aplay is gone; nothing to do but keep the call going.
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        for child in self
            .children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter_mut()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
