//! The media plane: one RTP socket per call leg, a jitter buffer per leg, and a 20 ms clock that
//! mixes. Legs are grouped in rooms: a room is what the agent hears and speaks into — one leg for
//! a plain call, two for a three-party conference (each far end hears the agent and the other far
//! end; the agent, and the recording, hear both). A room without the agent (hold, consultation
//! elsewhere) sends nothing of the agent.
//!
//! The agent is the host's headset (or WAV file), unless a room has an agent's endpoint leg
//! (the bridge to the desktop's endpoint or a SIP phone at the hub): that leg is then the
//! agent's voice in the room, and hears what the agent would hear. One endpoint leg may speak
//! for several rooms (a call parked during a consultation), hearing those the agent is in.

use crate::audio::{
    self, FRAME, Frame, JitterBuffer, RtpPacket, SILENCE, TelephoneEvent, WavWriter,
};
use crate::sdp::Codec;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Identifies a leg (one RTP stream with one far end).
pub type LegId = u64;
/// Identifies a room.
pub type RoomId = u64;

/// What the media plane tells the user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaNews {
    /// A DTMF digit arrived (RFC 4733) on a leg.
    Dtmf(LegId, char),
}

/// How a leg sends and receives, from the SDP negotiation.
#[derive(Debug, Clone)]
pub struct LegParams {
    /// The far end's RTP address.
    pub remote: SocketAddr,
    /// The codec.
    pub codec: Codec,
    /// The negotiated telephone-event payload type, if any.
    pub telephone_event: Option<u8>,
    /// Whether we send.
    pub send: bool,
    /// Whether we take in what arrives.
    pub receive: bool,
}

struct Leg {
    socket: Arc<UdpSocket>,
    params: LegParams,
    room: RoomId,
    jitter: JitterBuffer,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    marker: bool,
    dtmf: VecDeque<u8>,
    /// The digit being sent: (event, frames sent so far, its timestamp).
    sending: Option<(u8, u16, u32)>,
    gap: u8,
    last_rx: Instant,
    last_event_ts: Option<u32>,
    task: tokio::task::JoinHandle<()>,
    packets_in: u64,
    packets_out: u64,
    /// An agent's endpoint leg: the voice of the rooms naming it, never a far end of its own.
    endpoint: bool,
}

struct Room {
    agent: bool,
    /// The endpoint leg that is the agent here (none: the headset or WAV file).
    voice: Option<LegId>,
    position: usize,
    recorder: Option<WavWriter>,
}

#[derive(Default)]
struct Plane {
    legs: HashMap<LegId, Leg>,
    rooms: HashMap<RoomId, Room>,
}

/// The media plane, shared by the user agent and the clock task.
#[derive(Clone)]
pub struct Media {
    plane: Arc<Mutex<Plane>>,
    voice: Arc<Vec<i16>>,
    jitter_frames: usize,
    news: mpsc::UnboundedSender<MediaNews>,
    bind: std::net::IpAddr,
    /// The agent's headset, when built with the `device` feature and opened.
    #[cfg(feature = "device")]
    device: Option<Arc<crate::device::Device>>,
}

/// Counters of one leg, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegStats {
    /// RTP packets taken in.
    pub packets_in: u64,
    /// RTP packets sent.
    pub packets_out: u64,
    /// Frames concealed.
    pub lost: u64,
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

impl Media {
    /// A media plane playing `voice` (8 kHz samples, looped; empty: silence) as the agent.
    pub fn new(
        voice: Vec<i16>,
        jitter_frames: usize,
        bind: std::net::IpAddr,
        news: mpsc::UnboundedSender<MediaNews>,
    ) -> Media {
        Media {
            plane: Arc::new(Mutex::new(Plane::default())),
            voice: Arc::new(voice),
            jitter_frames,
            news,
            bind,
            #[cfg(feature = "device")]
            device: None,
        }
    }

    /// Uses the agent's headset instead of the WAV file (feature `device`).
    #[cfg(feature = "device")]
    pub fn with_device(mut self, device: crate::device::Device) -> Media {
        self.device = Some(Arc::new(device));
        self
    }

    /// The agent's next 20 ms: the headset's microphone, else the WAV file at `position`.
    fn agent_frame(&self, voice: &[i16], position: &mut usize) -> Frame {
        #[cfg(feature = "device")]
        if let Some(device) = &self.device {
            return device.capture();
        }
        let mut frame = SILENCE;
        if !voice.is_empty() {
            for s in frame.iter_mut() {
                *s = voice[*position % voice.len()];
                *position = (*position + 1) % voice.len();
            }
        }
        frame
    }

    fn lock(&self) -> MutexGuard<'_, Plane> {
        self.plane.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds an RTP socket for a new leg (an even port, as RFC 3550 recommends, when possible).
    pub fn bind_socket(&self) -> std::io::Result<std::net::UdpSocket> {
        for _ in 0..8 {
            let socket = std::net::UdpSocket::bind(SocketAddr::new(self.bind, 0))?;
            if socket.local_addr()?.port() % 2 == 0 {
                return Ok(socket);
            }
        }
        std::net::UdpSocket::bind(SocketAddr::new(self.bind, 0))
    }

    /// Opens a room; `record` names the recording file.
    pub fn open_room(&self, room: RoomId, record: Option<PathBuf>) -> Result<(), std::io::Error> {
        let recorder = match record {
            Some(path) => Some(WavWriter::create(&path, 2)?),
            None => None,
        };
        self.lock().rooms.insert(
            room,
            Room {
                agent: true,
                voice: None,
                position: 0,
                recorder,
            },
        );
        Ok(())
    }

    /// Closes a room (its recording is finished) and its legs.
    pub fn close_room(&self, room: RoomId) {
        let mut plane = self.lock();
        let legs: Vec<LegId> = plane
            .legs
            .iter()
            .filter(|(_, l)| l.room == room)
            .map(|(id, _)| *id)
            .collect();
        for id in legs {
            if let Some(leg) = plane.legs.remove(&id) {
                leg.task.abort();
            }
        }
        if let Some(mut r) = plane.rooms.remove(&room)
            && let Some(mut rec) = r.recorder.take()
        {
            let _ = rec.finish();
        }
    }

    /// Whether the agent is in the room (speaks into it and hears it).
    pub fn set_agent(&self, room: RoomId, present: bool) {
        if let Some(r) = self.lock().rooms.get_mut(&room) {
            r.agent = present;
        }
    }

    /// Starts a leg on `socket` in `room`; must run inside the runtime.
    pub fn add_leg(
        &self,
        id: LegId,
        room: RoomId,
        socket: std::net::UdpSocket,
        params: LegParams,
    ) -> std::io::Result<()> {
        socket.set_nonblocking(true)?;
        let socket = Arc::new(UdpSocket::from_std(socket)?);
        // The leg is in the plane before its receiver can look for it: RTP already waiting
        // would otherwise find no leg and end the receiver for good. Under load the caller's
        // audio overtakes the command thread between our 200 OK and this call: the bench's calls
        // "with too little audio" had received no RTP at all (the test below lost 51 of 300).
        let mut plane = self.lock();
        let task = tokio::spawn(receive(self.clone(), id, socket.clone()));
        plane.legs.insert(
            id,
            Leg {
                socket,
                params,
                room,
                jitter: JitterBuffer::new(self.jitter_frames, 50),
                ssrc: random_u32(),
                sequence: random_u32() as u16,
                timestamp: random_u32(),
                marker: true,
                dtmf: VecDeque::new(),
                sending: None,
                gap: 0,
                last_rx: Instant::now(),
                last_event_ts: None,
                task,
                packets_in: 0,
                packets_out: 0,
                endpoint: false,
            },
        );
        Ok(())
    }

    /// Makes endpoint leg `leg` the agent of `room` (the bridge to the agent's own endpoint).
    pub fn attach_voice(&self, room: RoomId, leg: LegId) {
        let mut plane = self.lock();
        if let Some(l) = plane.legs.get_mut(&leg) {
            l.endpoint = true;
        }
        if let Some(r) = plane.rooms.get_mut(&room) {
            r.voice = Some(leg);
        }
    }

    /// Gives the rooms `leg` spoke for back to the headset (or WAV file).
    pub fn detach_voice(&self, leg: LegId) {
        for room in self.lock().rooms.values_mut() {
            if room.voice == Some(leg) {
                room.voice = None;
            }
        }
    }

    /// Changes how a leg sends and receives (after a re-INVITE).
    pub fn update_leg(&self, id: LegId, params: LegParams) {
        if let Some(leg) = self.lock().legs.get_mut(&id) {
            if !leg.params.receive && params.receive {
                leg.last_rx = Instant::now();
            }
            leg.params = params;
        }
    }

    /// Moves a leg to another room (conference).
    pub fn move_leg(&self, id: LegId, room: RoomId) {
        if let Some(leg) = self.lock().legs.get_mut(&id) {
            leg.room = room;
        }
    }

    /// Stops a leg.
    pub fn remove_leg(&self, id: LegId) {
        if let Some(leg) = self.lock().legs.remove(&id) {
            leg.task.abort();
        }
    }

    /// Queues DTMF digits to send on a leg; returns how many were valid.
    pub fn send_dtmf(&self, id: LegId, digits: &str) -> usize {
        let mut plane = self.lock();
        let Some(leg) = plane.legs.get_mut(&id) else {
            return 0;
        };
        let events: Vec<u8> = digits.chars().filter_map(audio::dtmf_event).collect();
        leg.dtmf.extend(&events);
        events.len()
    }

    /// How long since the leg last received RTP (or started), and whether it ever did.
    pub fn silent_for(&self, id: LegId) -> Option<(Duration, bool)> {
        self.lock()
            .legs
            .get(&id)
            .map(|l| (l.last_rx.elapsed(), l.packets_in > 0))
    }

    /// A leg's counters.
    pub fn stats(&self, id: LegId) -> Option<LegStats> {
        self.lock().legs.get(&id).map(|l| LegStats {
            packets_in: l.packets_in,
            packets_out: l.packets_out,
            lost: l.jitter.lost,
        })
    }

    /// One 20 ms step: takes a frame from every leg's jitter buffer, mixes, sends, records.
    pub fn tick(&self) {
        let voice = self.voice.clone();
        let mut plane = self.lock();
        let Plane { legs, rooms } = &mut *plane;
        let mut heard: HashMap<LegId, Frame> = HashMap::with_capacity(legs.len());
        // Each room's legs, found in one pass (a scan of every leg per room was quadratic: at
        // 800 calls, 640,000 steps every 20 ms with the plane locked against the receivers).
        let mut members_of: HashMap<RoomId, Vec<LegId>> = HashMap::with_capacity(rooms.len());
        // What each endpoint leg hears: the rooms it speaks for, where the agent is present.
        let mut endpoint_hears: HashMap<LegId, Frame> = HashMap::new();
        for (id, leg) in legs.iter_mut() {
            let frame = if leg.params.receive {
                leg.jitter.pop().unwrap_or(SILENCE)
            } else {
                SILENCE
            };
            heard.insert(*id, frame);
            if leg.endpoint {
                endpoint_hears.insert(*id, SILENCE);
            } else {
                members_of.entry(leg.room).or_default().push(*id);
            }
        }
        #[cfg(feature = "device")]
        let microphone = self.device.as_ref().map(|d| d.capture());
        let mut speaker = SILENCE;
        for (room_id, room) in rooms.iter_mut() {
            let agent = if !room.agent {
                SILENCE
            } else if let Some(voice) = room.voice {
                heard.get(&voice).copied().unwrap_or(SILENCE)
            } else {
                #[cfg(feature = "device")]
                if let Some(frame) = microphone {
                    frame
                } else {
                    self.agent_frame(&voice, &mut room.position)
                }
                #[cfg(not(feature = "device"))]
                self.agent_frame(&voice, &mut room.position)
            };
            let members = members_of.remove(room_id).unwrap_or_default();
            let mut far = SILENCE;
            for id in &members {
                if let Some(f) = heard.get(id) {
                    mix(&mut far, f);
                }
            }
            if room.agent {
                match room.voice.and_then(|v| endpoint_hears.get_mut(&v)) {
                    Some(hears) => mix(hears, &far),
                    None if room.voice.is_none() => mix(&mut speaker, &far),
                    None => {}
                }
            }
            if let Some(rec) = &mut room.recorder {
                let mut stereo = [0i16; FRAME * 2];
                for i in 0..FRAME {
                    stereo[2 * i] = far[i];
                    stereo[2 * i + 1] = agent[i];
                }
                let _ = rec.write(&stereo);
            }
            for id in &members {
                let Some(leg) = legs.get_mut(id) else {
                    continue;
                };
                let mut out = agent;
                for other in &members {
                    if other != id
                        && let Some(f) = heard.get(other)
                    {
                        mix(&mut out, f);
                    }
                }
                leg.send_frame(&out);
            }
        }
        for (id, hears) in &endpoint_hears {
            if let Some(leg) = legs.get_mut(id) {
                leg.send_frame(hears);
            }
        }
        // Legs in no room (a room closed first) send nothing.
        #[cfg(feature = "device")]
        if let Some(device) = &self.device {
            device.play(speaker);
        }
        #[cfg(not(feature = "device"))]
        let _ = speaker;
    }
}

fn mix(into: &mut Frame, add: &Frame) {
    for (a, b) in into.iter_mut().zip(add.iter()) {
        *a = a.saturating_add(*b);
    }
}

impl Leg {
    fn send_frame(&mut self, frame: &Frame) {
        if !self.params.send {
            self.timestamp = self.timestamp.wrapping_add(FRAME as u32);
            return;
        }
        let packet = if let (Some(pt), Some((event, sent, ts))) =
            (self.params.telephone_event, self.sending)
        {
            // A digit lasts 5 frames (100 ms); its end is sent three times (RFC 4733 §2.5.1.4).
            let sent = sent + 1;
            let end = sent > 5;
            let duration = (sent.min(5) * FRAME as u16).max(FRAME as u16);
            self.sending = if sent >= 8 {
                self.gap = 3;
                None
            } else {
                Some((event, sent, ts))
            };
            RtpPacket {
                payload_type: pt,
                marker: sent == 1,
                sequence: self.sequence,
                timestamp: ts,
                ssrc: self.ssrc,
                payload: TelephoneEvent {
                    event,
                    end,
                    volume: 10,
                    duration,
                }
                .to_bytes()
                .to_vec(),
            }
        } else {
            if self.gap == 0
                && self.params.telephone_event.is_some()
                && let Some(event) = self.dtmf.pop_front()
            {
                self.sending = Some((event, 0, self.timestamp));
                return self.send_frame(frame);
            }
            self.gap = self.gap.saturating_sub(1);
            let payload = match self.params.codec {
                Codec::Pcmu => frame.iter().map(|s| audio::ulaw_encode(*s)).collect(),
                Codec::Pcma => frame.iter().map(|s| audio::alaw_encode(*s)).collect(),
            };
            RtpPacket {
                payload_type: self.params.codec.payload_type(),
                marker: std::mem::take(&mut self.marker),
                sequence: self.sequence,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                payload,
            }
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(FRAME as u32);
        if self
            .socket
            .try_send_to(&packet.to_bytes(), self.params.remote)
            .is_ok()
        {
            self.packets_out += 1;
        }
    }
}

/// Takes in one leg's RTP until the leg is removed.
async fn receive(media: Media, id: LegId, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, _from)) = socket.recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Some(packet) = RtpPacket::parse(&buf[..n]) else {
            continue;
        };
        let mut plane = media.lock();
        let Some(leg) = plane.legs.get_mut(&id) else {
            return;
        };
        leg.last_rx = Instant::now();
        leg.packets_in += 1;
        if !leg.params.receive {
            continue;
        }
        if Some(packet.payload_type) == leg.params.telephone_event {
            if let Some(event) = TelephoneEvent::parse(&packet.payload)
                && event.end
                && leg.last_event_ts != Some(packet.timestamp)
            {
                leg.last_event_ts = Some(packet.timestamp);
                if let Some(digit) = audio::dtmf_digit(event.event) {
                    let _ = media.news.send(MediaNews::Dtmf(id, digit));
                }
            }
            continue;
        }
        let decode: fn(u8) -> i16 = match packet.payload_type {
            0 => audio::ulaw_decode,
            8 => audio::alaw_decode,
            _ => continue,
        };
        // 20 ms frames; other packet sizes are cut or padded to 20 ms.
        let mut frame = SILENCE;
        for (s, b) in frame.iter_mut().zip(packet.payload.iter()) {
            *s = decode(*b);
        }
        leg.jitter.push(packet.sequence, frame);
    }
}

/// Runs the 20 ms media clock until `stop` changes.
pub async fn clock(media: Media, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = ticks.tick() => media.tick(),
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RTP that is already waiting when a leg starts (the caller's audio can overtake the
    /// command thread between our 200 OK and the leg) must be taken in, never stop the leg.
    #[test]
    fn rtp_waiting_before_the_leg_starts_is_taken_in() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let (news, _heard) = mpsc::unbounded_channel();
        let media = Media::new(Vec::new(), 3, "127.0.0.1".parse().expect("ip"), news);
        let far = std::net::UdpSocket::bind("127.0.0.1:0").expect("far end");
        let packet = RtpPacket {
            payload_type: 0,
            marker: false,
            sequence: 1,
            timestamp: 160,
            ssrc: 7,
            payload: vec![0xff; FRAME],
        }
        .to_bytes();
        const LEGS: u64 = 300;
        runtime.block_on(async {
            for id in 0..LEGS {
                let socket = media.bind_socket().expect("socket");
                far.send_to(&packet, socket.local_addr().expect("addr"))
                    .expect("send");
                media.open_room(id, None).expect("room");
                let params = LegParams {
                    remote: far.local_addr().expect("addr"),
                    codec: Codec::Pcmu,
                    telephone_event: None,
                    send: false,
                    receive: true,
                };
                media.add_leg(id, id, socket, params).expect("leg");
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let deaf: Vec<LegId> = (0..LEGS)
                    .filter(|id| media.stats(*id).is_none_or(|s| s.packets_in == 0))
                    .collect();
                if deaf.is_empty() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} of {LEGS} legs never took in the RTP waiting for them: {deaf:?}",
                    deaf.len()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
}
