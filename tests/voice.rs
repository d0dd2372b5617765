//! The voice channel end to end: the packaged `agentdesk.voice` plugin in a real `PluginHost` and
//! `CoreService`, against real SIP peers started here on 127.0.0.1 with ports chosen at run time:
//! SIPp (Debian package `sip-tester`) for signalling, robustness and the registrar, and baresip
//! (`baresip-core`, driven through its `ctrl_tcp` module) for audio, hold and transfers. Audio is
//! proven by frequency: a tone played by one side is found (Goertzel) in the other's recording.

use crate::support::Install;
use agentdesk_host::core::{AgentCommand, ChannelState, InteractionState, Policy};
use agentdesk_host::plugins::package::package;
use agentdesk_host::service::{AgentSnapshot, CoreHandle, CoreService, Interact, InteractionView};
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::{first_party_library, free_pair, tool};
use plugin_api::{Address, MediaState, Route};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const VOICE: &str = "agentdesk.voice";
const WAIT: Duration = Duration::from_secs(20);
/// The agent's voice (the plugin's WAV), the customer's and the colleague's tones.
pub(crate) const AGENT_HZ: f64 = 1200.0;
pub(crate) const CUSTOMER_HZ: f64 = 440.0;
pub(crate) const COLLEAGUE_HZ: f64 = 700.0;

pub(crate) fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

// ----- audio checks ----------------------------------------------------------------------------

/// Writes `secs` of a sine tone, 8 kHz 16-bit mono.
pub(crate) fn write_tone(path: &Path, hz: f64, secs: u32) {
    let n = 8000 * secs as usize;
    let mut data = Vec::with_capacity(n * 2);
    for i in 0..n {
        let s = (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16;
        data.extend_from_slice(&s.to_le_bytes());
    }
    let mut bytes = Vec::with_capacity(44 + data.len());
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    for v in [1u16, 1] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for v in [8000u32, 16000] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for v in [2u16, 16] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).expect("tone file");
}

/// One channel of a 16-bit PCM WAV file and its sample rate.
pub(crate) fn read_channel(path: &Path, channel: usize) -> (Vec<i16>, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.len() >= 44 && &bytes[..4] == b"RIFF",
        "{} is no WAV",
        path.display()
    );
    let mut at = 12;
    let (mut channels, mut rate) = (1usize, 8000u32);
    while at + 8 <= bytes.len() {
        let mut len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if &bytes[at..at + 4] == b"data" && (len == 0 || len == u32::MAX as usize) {
            // A file still being written: its sizes are filled in when it is closed.
            len = bytes.len() - at - 8;
        }
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if &bytes[at..at + 4] == b"fmt " {
            channels = u16::from_le_bytes([body[2], body[3]]) as usize;
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if &bytes[at..at + 4] == b"data" {
            let samples = body
                .chunks_exact(2 * channels)
                .map(|f| i16::from_le_bytes([f[2 * channel], f[2 * channel + 1]]))
                .collect();
            return (samples, rate);
        }
        at += 8 + len + (len & 1);
    }
    panic!("{} has no data", path.display());
}

/// How many 100 ms blocks of `samples` are dominated by `hz` (Goertzel power against the
/// block's energy), ignoring near-silent blocks.
pub(crate) fn tone_blocks(samples: &[i16], rate: u32, hz: f64) -> usize {
    let n = (rate / 10) as usize;
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / f64::from(rate)).cos();
    samples
        .chunks_exact(n)
        .filter(|block| {
            let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
            for &x in *block {
                let x = f64::from(x);
                energy += x * x;
                let s0 = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
            // A pure tone gives power = energy * n / 2.
            energy > 1e6 * n as f64 / 8000.0 && power / (energy * n as f64 / 2.0) > 0.25
        })
        .count()
}

/// Asserts a recording channel holds at least half a second of `hz`.
pub(crate) fn assert_tone(path: &Path, channel: usize, hz: f64, what: &str) {
    let (samples, rate) = read_channel(path, channel);
    let blocks = tone_blocks(&samples, rate, hz);
    assert!(
        blocks >= 5,
        "{what}: {hz} Hz found in only {blocks} blocks of 100 ms of {} ({} samples)",
        path.display(),
        samples.len()
    );
}

// ----- baresip ---------------------------------------------------------------------------------

/// A baresip user agent with its own configuration, playing a tone and recording what it hears
/// (`sndfile` writes `dump-*-dec.wav` per call), answering calls at once.
pub(crate) struct Baresip {
    child: Child,
    dir: tempfile::TempDir,
    name: String,
    port: u16,
    ctrl: u16,
}

impl Baresip {
    pub(crate) fn start(name: &str, hz: f64) -> Self {
        Self::start_account(name, hz, &format!("<sip:{name}@127.0.0.1>;regint=0"))
    }

    /// A baresip registered at `registrar` (`host:port`) as `user` with digest `password`: an
    /// agent's SIP phone.
    pub(crate) fn registered(user: &str, hz: f64, registrar: &str, password: &str) -> Self {
        Self::start_account(
            user,
            hz,
            &format!("<sip:{user}@{registrar}>;auth_pass={password};regint=60"),
        )
    }

    /// Whether its registration is up (ctrl_tcp `reginfo`).
    pub(crate) fn is_registered(&self) -> bool {
        self.cmd("reginfo", "").contains("OK")
    }

    fn start_account(name: &str, hz: f64, account: &str) -> Self {
        let program = tool("baresip", "baresip-core");
        let dir = tempfile::tempdir().expect("baresip dir");
        let port = free_pair();
        let ctrl = free_pair();
        let d = dir.path().display();
        write_tone(&dir.path().join("tone.wav"), hz, 60);
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\n\
             audio_source aufile,{d}/tone.wav\naudio_player aubridge,{name}\n\
             audio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\n\
             module account.so\nmodule g711.so\nmodule aubridge.so\nmodule aufile.so\n\
             module sndfile.so\nmodule ctrl_tcp.so\nmodule_app menu.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl}\nsnd_path {d}\nrtp_timeout 0\n"
        );
        std::fs::write(dir.path().join("config"), config).expect("config");
        std::fs::write(
            dir.path().join("accounts"),
            format!("{account};answermode=auto\n"),
        )
        .expect("accounts");
        let log = std::fs::File::create(dir.path().join("log")).expect("log");
        let child = Command::new(program)
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("baresip starts");
        let b = Baresip {
            child,
            dir,
            name: name.into(),
            port,
            ctrl,
        };
        until("baresip's control port", || {
            TcpStream::connect(("127.0.0.1", ctrl)).ok()
        });
        b
    }

    pub(crate) fn uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.name, self.port)
    }

    /// Runs a ctrl_tcp command; returns its data.
    pub(crate) fn cmd(&self, command: &str, params: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.ctrl)).expect("ctrl_tcp");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let body =
            serde_json::json!({"command": command, "params": params, "token": "t"}).to_string();
        s.write_all(format!("{}:{body},", body.len()).as_bytes())
            .expect("send");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            // Netstrings: events may come before the response.
            while let Some(colon) = buf.iter().position(|b| *b == b':') {
                let len: usize = std::str::from_utf8(&buf[..colon])
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .expect("netstring length");
                if buf.len() < colon + 1 + len + 1 {
                    break;
                }
                let msg: Value = serde_json::from_slice(&buf[colon + 1..colon + 1 + len])
                    .expect("ctrl_tcp json");
                buf.drain(..colon + 1 + len + 1);
                if msg["response"] == Value::Bool(true) {
                    assert_eq!(msg["ok"], Value::Bool(true), "baresip {command}: {msg}");
                    return msg["data"].as_str().unwrap_or_default().to_string();
                }
            }
            let n = s.read(&mut chunk).expect("ctrl_tcp read");
            assert!(n > 0, "ctrl_tcp closed");
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The call list as baresip prints it.
    pub(crate) fn calls(&self) -> String {
        self.cmd("listcalls", "")
    }

    pub(crate) fn established(&self) -> bool {
        self.calls().contains("ESTABLISHED")
    }

    /// What baresip heard, per call (oldest first).
    pub(crate) fn heard(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        files.sort();
        files
    }

    /// Asserts baresip heard at least half a second of `hz` (over all its recordings: a
    /// re-INVITE may start a new one).
    pub(crate) fn assert_heard(&self, hz: f64, what: &str) {
        let files = self.heard();
        let blocks: usize = files
            .iter()
            .map(|f| {
                let (samples, rate) = read_channel(f, 0);
                tone_blocks(&samples, rate, hz)
            })
            .sum();
        assert!(
            blocks >= 5,
            "{what}: {hz} Hz found in only {blocks} blocks of 100 ms in {files:?}"
        );
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- baresip {} log:\n{}", self.name, self.log());
            // To look at what it heard: VOICE_KEEP=<dir> keeps its recordings there.
            if let Some(keep) = std::env::var_os("VOICE_KEEP") {
                let to = PathBuf::from(keep).join(&self.name);
                let _ = std::fs::create_dir_all(&to);
                for file in self.heard() {
                    let _ = std::fs::copy(&file, to.join(file.file_name().unwrap_or_default()));
                }
            }
        }
    }
}

// ----- SIPp ------------------------------------------------------------------------------------

/// Runs a SIPp scenario against `target` (or as a server when `target` is empty) and returns
/// its exit status and its error trace.
/// A running SIPp; its traces are printed and it is stopped if the test fails first.
struct Sipp {
    child: Option<Child>,
    dir: PathBuf,
    name: String,
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("--- sipp {}:\n{}", self.name, traces(&self.dir, &self.name));
            }
        }
    }
}

fn sipp(dir: &Path, name: &str, xml: &str, target: &str, args: &[&str]) -> Sipp {
    let program = tool("sipp", "sip-tester");
    let file = dir.join(format!("{name}.xml"));
    std::fs::write(&file, xml).expect("scenario");
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .arg("-sf")
        .arg(&file)
        .args(["-i", "127.0.0.1", "-timeout", "30", "-timeout_error"])
        .args(["-trace_err", "-trace_msg", "-nostdin"])
        .args(args)
        // One call unless the test asks for more.
        .args(if args.contains(&"-m") {
            &[][..]
        } else {
            &["-m", "1"][..]
        })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if !target.is_empty() {
        command.arg(target);
    }
    let mut child = command.spawn().expect("sipp starts");
    std::thread::sleep(Duration::from_millis(200));
    if let Ok(Some(status)) = child.try_wait()
        && !status.success()
    {
        panic!(
            "sipp {name} ended at once ({status}):\n{}",
            traces(dir, name)
        );
    }
    Sipp {
        child: Some(child),
        dir: dir.to_path_buf(),
        name: name.to_string(),
    }
}

/// SIPp's error and message traces of a scenario.
fn traces(dir: &Path, name: &str) -> String {
    let mut traces = String::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        let file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if file.starts_with(name)
            && (file.ends_with("errors.log") || file.ends_with("messages.log"))
        {
            traces.push_str(&format!(
                "--- {file}\n{}\n",
                std::fs::read_to_string(&path).unwrap_or_default()
            ));
        }
    }
    traces
}

/// Waits for SIPp and asserts every call of the scenario succeeded.
fn sipp_passed(mut run: Sipp, dir: &Path, name: &str) {
    let Some(mut child) = run.child.take() else {
        return;
    };
    let status = child.wait().expect("sipp ends");
    if !status.success() {
        panic!(
            "sipp scenario {name} failed ({status}):\n{}",
            traces(dir, name)
        );
    }
}

pub(crate) const SDP: &str = "v=0\r\no=sipp 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
    m=audio [media_port] RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

/// A request from SIPp in its call's dialog (`to_tag`: with the plugin's tag).
fn request(method: &str, cseq: &str, to_tag: bool, extra: &str, body: &str) -> String {
    let len = if body.is_empty() { "0" } else { "[len]" };
    format!(
        "<send retrans=\"500\"><![CDATA[\n{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n\
         Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n\
         From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]\n\
         To: <sip:[service]@[remote_ip]:[remote_port]>{}\n\
         Call-ID: [call_id]\nCSeq: {cseq} {method}\nContact: <sip:sipp@[local_ip]:[local_port]>\n\
         Max-Forwards: 70\n{extra}Content-Length: {len}\n\n{body}]]></send>\n",
        if to_tag { "[peer_tag_param]" } else { "" }
    )
}

fn invite() -> String {
    request(
        "INVITE",
        "1",
        false,
        "Content-Type: application/sdp\n",
        &SDP.replace("\r\n", "\n"),
    )
}

fn ack() -> String {
    request("ACK", "1", true, "", "").replace(" retrans=\"500\"", "")
}

fn scenario(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<scenario name=\"t\">\n{body}</scenario>\n"
    )
}

/// An answer from SIPp to a request the plugin sent, with an SDP direction.
fn answer_200(direction: &str) -> String {
    format!(
        "<send><![CDATA[\nSIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n\
         [last_CSeq:]\nContact: <sip:sipp@[local_ip]:[local_port]>\nContent-Type: application/sdp\n\
         Content-Length: [len]\n\n{}a={direction}\n]]></send>\n",
        SDP.replace("\r\n", "\n")
    )
}

// ----- the rig ---------------------------------------------------------------------------------

/// A host with the packaged voice plugin, the core, and agents Ann (2001) and Bob (2002).
pub(crate) struct Rig {
    install: Install,
    pub(crate) plugins: Arc<PluginHost>,
    service: Option<CoreService>,
    pub(crate) core: CoreHandle,
    port: u16,
}

impl Rig {
    /// `settings`: extra lines of the plugin's section; `agent_extra`: extra keys for Ann.
    pub(crate) fn new(settings: &str, ann_extra: &str) -> Self {
        Self::with_timeout(settings, ann_extra, 20)
    }

    /// As [`Rig::new`], with the voice channel's answer timeout.
    fn with_timeout(settings: &str, ann_extra: &str, answer_timeout_secs: u32) -> Self {
        Self::with_lines(settings, "", ann_extra, answer_timeout_secs)
    }

    /// As [`Rig::with_timeout`], with extra keys for Ann's line in the plugin's settings.
    pub(crate) fn with_lines(
        settings: &str,
        ann_line: &str,
        ann_extra: &str,
        answer_timeout_secs: u32,
    ) -> Self {
        let install = Install::new();
        package(&first_party_library("agentdesk_voice"), &install.plugins).expect("package voice");
        let voice = install.dir.path().join("agent.wav");
        write_tone(&voice, AGENT_HZ, 5);
        let recordings = install.dir.path().join("recordings");
        let extra = format!(
            "[plugins.settings.\"{VOICE}\"]\nport = 0\nplay = \"{}\"\nrecordings = \"{}\"\n{settings}\n\
             [plugins.settings.\"{VOICE}\".agents.ann]\nextension = \"2001\"\n{ann_line}\n\
             [channels.voice]\nanswer_timeout_secs = {answer_timeout_secs}\ncapacity = 50\n\
             [[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"voice\"]\nextension = \"2001\"\n{ann_extra}\n\
             [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"voice\"]\nextension = \"2002\"\n",
            voice.display(),
            recordings.display()
        );
        let config = AdminConfig::load(&install.write_config(&[VOICE], &extra)).expect("config");
        let policy = Policy::from_config(&config, &["voice".to_string()]);
        let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
        assert_eq!(
            plugins.running_ids(),
            vec![VOICE.to_string()],
            "{:#?}",
            plugins.reports()
        );
        let service =
            agentdesk_tests::start_core(&install.data, policy.clone(), Some(plugins.clone()));
        let core = service.handle();
        let endpoint = install
            .data
            .join("plugins")
            .join(VOICE)
            .join("endpoint.json");
        let endpoint: Value =
            serde_json::from_str(&std::fs::read_to_string(endpoint).expect("endpoint.json"))
                .expect("endpoint json");
        let port = endpoint["port"].as_u64().expect("port") as u16;
        assert!(port > 0);
        Rig {
            install,
            plugins,
            service: Some(service),
            core,
            port,
        }
    }

    pub(crate) fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn uri(&self, user: &str) -> String {
        format!("sip:{user}@127.0.0.1:{}", self.port)
    }

    pub(crate) fn dir(&self) -> &Path {
        self.install.dir.path()
    }

    pub(crate) fn ready(&self, agent: &str) {
        let session = self.core.login(agent).expect("log in");
        for command in [
            AgentCommand::LogOnChannel {
                channel: "voice".into(),
            },
            AgentCommand::SetReady {
                channel: "voice".into(),
            },
        ] {
            session.send(command).expect("ready");
        }
    }

    pub(crate) fn snapshot(&self, agent: &str) -> AgentSnapshot {
        self.core.snapshot(agent).expect("snapshot").expect("agent")
    }

    pub(crate) fn find(
        &self,
        agent: &str,
        test: impl Fn(&InteractionView) -> bool,
    ) -> Option<InteractionView> {
        self.snapshot(agent)
            .interactions
            .into_iter()
            .find(|i| test(i))
    }

    pub(crate) fn wait_offer(&self, agent: &str) -> u64 {
        until("an offer", || {
            self.find(agent, |i| {
                matches!(i.state, InteractionState::Offered { .. })
            })
            .map(|i| i.key)
        })
    }

    pub(crate) fn wait_media(&self, agent: &str, key: u64, state: MediaState) {
        until(&format!("{state:?} on {key}"), || {
            self.find(agent, |i| {
                i.key == key && i.detail.media_state == Some(state)
            })
            .map(|_| ())
        });
    }

    pub(crate) fn wait_state(
        &self,
        agent: &str,
        key: u64,
        state: InteractionState,
    ) -> InteractionView {
        until(&format!("{key} {state:?}"), || {
            self.find(agent, |i| i.key == key && i.state == state)
        })
    }

    pub(crate) fn exec(&self, agent: &str, command: AgentCommand) {
        self.core.execute(agent, command).expect("command");
    }

    /// Resumes a held call once the core has the channel's answer to the hold (the plugin's
    /// media-state event can arrive before that answer: meanwhile a resume is refused).
    pub(crate) fn resume(&self, agent: &str, key: u64) {
        until("the resume accepted", || {
            match self.core.execute(agent, AgentCommand::Resume { key }) {
                Ok(()) => Some(()),
                Err(e) if e.to_string().contains("has not answered") => None,
                Err(e) => panic!("resume: {e}"),
            }
        });
    }

    /// The plugin's recordings (one per call).
    pub(crate) fn recordings(&self) -> Vec<PathBuf> {
        let dir = self.dir().join("recordings");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            service.stop();
        }
    }
}

/// A customer on baresip calls Ann's extension; Ann accepts; both hear each other.
fn connected_call(rig: &Rig, customer: &Baresip) -> u64 {
    rig.ready("ann");
    customer.cmd("dial", &rig.uri("2001"));
    let key = rig.wait_offer("ann");
    rig.exec("ann", AgentCommand::Accept { key });
    rig.wait_media("ann", key, MediaState::Connected);
    until("baresip connected", || customer.established().then_some(()));
    key
}

// ----- tests -----------------------------------------------------------------------------------

#[test]
fn voice_inbound_call_rings_until_accepted_and_audio_flows_both_ways() {
    let rig = Rig::new("", "");
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    rig.ready("ann");
    customer.cmd("dial", &rig.uri("2001"));
    let key = rig.wait_offer("ann");
    let offered = rig.find("ann", |i| i.key == key).expect("offer");
    assert_eq!(offered.channel, "voice");
    assert_eq!(offered.detail.media_state, Some(MediaState::Ringing));
    assert!(
        offered
            .contact
            .addresses
            .iter()
            .any(|a| a.value.contains("customer@127.0.0.1")),
        "{:?}",
        offered.contact
    );
    assert!(
        !customer.established(),
        "no answer before the agent accepts"
    );
    rig.exec("ann", AgentCommand::Accept { key });
    rig.wait_media("ann", key, MediaState::Connected);
    until("baresip connected", || customer.established().then_some(()));
    std::thread::sleep(Duration::from_secs(2));
    customer.cmd("hangup", "");
    let ended = rig.wait_state("ann", key, InteractionState::Ended);
    let case: Vec<(&str, &str)> = ended
        .detail
        .case_data
        .iter()
        .map(|f| (f.key.as_str(), f.value.as_str()))
        .collect();
    assert!(case.iter().any(|(k, _)| *k == "recording"), "{case:?}");
    let recording = rig.recordings().pop().expect("a recording");
    assert_tone(&recording, 0, CUSTOMER_HZ, "the agent heard the customer");
    customer.assert_heard(AGENT_HZ, "the customer heard the agent");
    let (samples, rate) = read_channel(&recording, 0);
    assert!(
        tone_blocks(&samples, rate, COLLEAGUE_HZ) == 0,
        "a tone nobody played is not found"
    );
}

#[test]
fn voice_outbound_call_connects_and_the_agent_hangs_up() {
    let rig = Rig::new("", "");
    let callee = Baresip::start("callee", CUSTOMER_HZ);
    rig.ready("ann");
    rig.exec(
        "ann",
        AgentCommand::StartOutbound {
            channel: "voice".into(),
            to: Address::new(Address::SIP, callee.uri()),
            from: None,
        },
    );
    let key = until("the outbound call", || {
        rig.find("ann", |i| {
            i.detail.media_state == Some(MediaState::Connected)
        })
        .map(|i| i.key)
    });
    until("baresip connected", || callee.established().then_some(()));
    std::thread::sleep(Duration::from_secs(2));
    rig.exec("ann", AgentCommand::End { key });
    until("baresip hung up", || (!callee.established()).then_some(()));
    callee.assert_heard(AGENT_HZ, "the callee heard the agent");
    let recording = until("the recording", || rig.recordings().pop());
    assert_tone(&recording, 0, CUSTOMER_HZ, "the agent heard the callee");
}

#[test]
fn voice_hold_and_resume_both_ways_and_dtmf() {
    let rig = Rig::new("", "");
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    let key = connected_call(&rig, &customer);
    // The agent holds: re-INVITE sendonly, answered by baresip.
    rig.exec("ann", AgentCommand::Hold { key });
    rig.wait_media("ann", key, MediaState::Held);
    rig.resume("ann", key);
    rig.wait_media("ann", key, MediaState::Connected);
    // The customer holds, then resumes.
    customer.cmd("hold", "");
    rig.wait_media("ann", key, MediaState::Held);
    customer.cmd("resume", "");
    rig.wait_media("ann", key, MediaState::Connected);
    // DTMF from the agent's keypad reaches baresip as RFC 4733 events (once baresip has
    // settled after its own re-INVITE).
    std::thread::sleep(Duration::from_millis(500));
    for digit in ["4", "2", "#"] {
        rig.core
            .interact("ann", key, Interact::Dtmf(digit.into()))
            .expect("dtmf");
    }
    until("baresip received the digits in order", || {
        let log = customer.log();
        let mut ends: Vec<&str> = log
            .lines()
            // The status line is rewritten in place with `\r`: events follow it on one line.
            .filter_map(|l| l.find("received event:").map(|at| l[at..].trim_end()))
            .filter(|l| l.ends_with("(end=1)"))
            .collect();
        ends.dedup();
        (ends
            == [
                "received event: '4' (end=1)",
                "received event: '2' (end=1)",
                "received event: '#' (end=1)",
            ])
        .then_some(())
    });
    customer.cmd("hangup", "");
    let ended = rig.wait_state("ann", key, InteractionState::Ended);
    let hold: u64 = ended
        .detail
        .case_data
        .iter()
        .find(|f| f.key == "hold_secs")
        .map(|f| f.value.parse().expect("number"))
        .expect("hold time in the call record");
    let total: u64 = ended
        .detail
        .case_data
        .iter()
        .find(|f| f.key == "duration_secs")
        .map(|f| f.value.parse().expect("number"))
        .expect("duration");
    assert!(hold <= total);
}

#[test]
fn voice_agent_hold_sends_sendonly_and_resume_sendrecv_to_sipp() {
    let rig = Rig::new("", "auto_answer = [\"voice\"]");
    rig.ready("ann");
    let xml = scenario(&format!(
        "{}<recv response=\"100\" optional=\"true\"/>\n<recv response=\"180\" optional=\"true\"/>\n\
         <recv response=\"200\"/>\n{}\
         <recv request=\"INVITE\"><action><ereg regexp=\"a=sendonly\" search_in=\"body\" check_it=\"true\" assign_to=\"h\"/></action></recv>\n\
         {}<recv request=\"ACK\"/>\n\
         <recv request=\"INVITE\"><action><ereg regexp=\"a=sendrecv\" search_in=\"body\" check_it=\"true\" assign_to=\"r\"/></action></recv>\n\
         {}<recv request=\"ACK\"/>\n<recv request=\"BYE\"/>\n\
         <send><![CDATA[\nSIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n\n]]></send>\n<Reference variables=\"h,r\"/>\n",
        invite(),
        ack(),
        answer_200("recvonly"),
        answer_200("sendrecv"),
    ));
    let child = sipp(
        rig.dir(),
        "hold",
        &xml,
        &rig.target(),
        &["-s", "2001", "-p", &free_udp().to_string()],
    );
    let key = until("the answered call", || {
        rig.find("ann", |i| {
            i.detail.media_state == Some(MediaState::Connected)
        })
        .map(|i| i.key)
    });
    rig.exec("ann", AgentCommand::Hold { key });
    rig.wait_media("ann", key, MediaState::Held);
    rig.resume("ann", key);
    rig.wait_media("ann", key, MediaState::Connected);
    rig.exec("ann", AgentCommand::End { key });
    sipp_passed(child, rig.dir(), "hold");
}

#[test]
fn voice_rejected_unanswered_and_cancelled_calls_get_the_right_sip_answers() {
    // Extension 2009 is the plugin's but no agent of the core has it: 404 from the core's reason.
    let rig = Rig::new(
        &format!("[plugins.settings.\"{VOICE}\".agents.carol]\nextension = \"2009\"\n"),
        "",
    );
    rig.ready("ann");
    let rejected = scenario(&format!(
        "{}<recv response=\"100\" optional=\"true\"/>\n<recv response=\"180\" optional=\"true\"/>\n\
         <recv response=\"404\"/>\n{}",
        invite(),
        ack()
    ));
    let child = sipp(
        rig.dir(),
        "rejected",
        &rejected,
        &rig.target(),
        &["-s", "2009", "-p", &free_udp().to_string()],
    );
    sipp_passed(child, rig.dir(), "rejected");
    // Ann does not answer; the caller gives up: CANCEL, 200, 487, and the core abandons it.
    let fixed = invite().replace("branch=[branch]", "branch=z9hG4bK-c-[call_number]");
    let cancelled = scenario(&format!(
        "{fixed}<recv response=\"100\" optional=\"true\"/>\n<recv response=\"180\"/>\n\
         <pause milliseconds=\"1500\"/>\n\
         <send><![CDATA[\nCANCEL sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n\
         Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-c-[call_number]\n\
         From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]\n\
         To: <sip:[service]@[remote_ip]:[remote_port]>\nCall-ID: [call_id]\nCSeq: 1 CANCEL\n\
         Max-Forwards: 70\nContent-Length: 0\n\n]]></send>\n\
         <recv response=\"200\"/>\n<recv response=\"487\"/>\n{}",
        ack().replace("branch=[branch]", "branch=z9hG4bK-c-[call_number]")
    ));
    let child = sipp(
        rig.dir(),
        "cancel",
        &cancelled,
        &rig.target(),
        &["-s", "2001", "-p", &free_udp().to_string()],
    );
    let key = rig.wait_offer("ann");
    sipp_passed(child, rig.dir(), "cancel");
    until("the offer withdrawn", || {
        rig.find("ann", |i| i.key == key).is_none().then_some(())
    });
    assert!(
        rig.snapshot("ann").interactions.is_empty(),
        "nothing left for Ann"
    );
}

#[test]
fn voice_unanswered_offer_times_out_in_the_core_while_the_call_keeps_ringing() {
    let rig = Rig::with_timeout("", "", 2);
    rig.ready("ann");
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    // Not an extension: the call goes to the plugin's queue.
    customer.cmd("dial", &rig.uri("sales"));
    let key = rig.wait_offer("ann");
    // Ann does not answer: the core takes the offer back and makes her Not Ready; the call
    // keeps ringing (no SIP answer yet).
    until("ann's offer withdrawn", || {
        rig.find("ann", |i| i.key == key).is_none().then_some(())
    });
    let voice = rig
        .snapshot("ann")
        .channels
        .into_iter()
        .find(|c| c.channel == "voice")
        .expect("voice");
    assert!(
        matches!(voice.state, ChannelState::NotReady { .. }),
        "{:?}",
        voice.state
    );
    assert!(!customer.established());
    assert!(customer.calls().contains("2001") || customer.calls().contains("sales"));
    // Bob gets it and answers.
    rig.ready("bob");
    let key = rig.wait_offer("bob");
    rig.exec("bob", AgentCommand::Accept { key });
    rig.wait_media("bob", key, MediaState::Connected);
    until("baresip connected", || customer.established().then_some(()));
    customer.cmd("hangup", "");
    rig.wait_state("bob", key, InteractionState::Ended);
}

#[test]
fn voice_malformed_unknown_and_out_of_dialog_requests_get_sip_errors_never_a_crash() {
    let rig = Rig::new("", "auto_answer = [\"voice\"]");
    rig.ready("ann");
    let send = |method: &str, cseq: &str, extra: &str, body: &str| {
        request(method, cseq, false, extra, body)
    };
    let mut body = String::new();
    // Content-Length larger than the body.
    body.push_str(&send("INVITE", "1", "", "").replace("Content-Length: 0", "Content-Length: 500"));
    body.push_str("<recv response=\"400\"/>\n");
    body.push_str(&send("FROBNICATE", "2", "", ""));
    body.push_str("<recv response=\"501\"/>\n");
    body.push_str(&send("OPTIONS", "3", "", ""));
    body.push_str("<recv response=\"200\"/>\n");
    body.push_str(&request("BYE", "4", false, "", "").replace(
        "To: <sip:[service]@[remote_ip]:[remote_port]>",
        "To: <sip:[service]@[remote_ip]:[remote_port]>;tag=nosuchdialog",
    ));
    body.push_str("<recv response=\"481\"/>\n");
    body.push_str(&send("SUBSCRIBE", "5", "Event: presence\n", ""));
    body.push_str("<recv response=\"405\"/>\n");
    // No From header.
    body.push_str(&send("OPTIONS", "6", "", "").replace(
        "From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]\n",
        "",
    ));
    body.push_str("<recv response=\"400\"/>\n");
    // An INVITE with SDP we cannot use.
    body.push_str(&send(
        "INVITE",
        "7",
        "Content-Type: application/sdp\n",
        "v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 18\n",
    ));
    body.push_str("<recv response=\"100\" optional=\"true\"/>\n<recv response=\"488\"/>\n");
    body.push_str(
        &ack()
            .replace("[peer_tag_param]", "")
            .replace("CSeq: 1 ACK", "CSeq: 7 ACK"),
    );
    let xml = scenario(&body);
    let child = sipp(
        rig.dir(),
        "robust",
        &xml,
        &rig.target(),
        &["-s", "2001", "-p", &free_udp().to_string()],
    );
    // Raw garbage at the same time: no answer is due, and nothing breaks.
    let raw = UdpSocket::bind("127.0.0.1:0").expect("socket");
    for junk in [
        &b"\x00\x01\x02garbage"[..],
        b"SIP/2.0 200 OK\r\n\r\n",
        b"INVITE\r\n\r\n",
        &[0xff; 1400],
    ] {
        raw.send_to(junk, rig.target()).expect("send");
    }
    sipp_passed(child, rig.dir(), "robust");
    // Still serving: a normal call goes through.
    let xml = scenario(&format!(
        "{}<recv response=\"100\" optional=\"true\"/>\n<recv response=\"180\" optional=\"true\"/>\n\
         <recv response=\"200\"/>\n{}<pause milliseconds=\"300\"/>\n{}<recv response=\"200\"/>\n",
        invite(),
        ack(),
        request("BYE", "2", true, "", "")
    ));
    let child = sipp(
        rig.dir(),
        "after",
        &xml,
        &rig.target(),
        &["-s", "2001", "-p", &free_udp().to_string()],
    );
    sipp_passed(child, rig.dir(), "after");
    assert_eq!(rig.plugins.running_ids(), vec![VOICE.to_string()]);
}

/// A bare SIP client on a UDP socket, to send exactly the same bytes twice.
pub(crate) struct Raw {
    socket: UdpSocket,
    target: String,
}

impl Raw {
    pub(crate) fn new(target: String) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        Raw { socket, target }
    }

    pub(crate) fn port(&self) -> u16 {
        self.socket.local_addr().expect("addr").port()
    }

    pub(crate) fn send(&self, text: &str) {
        let text = text.replace('\n', "\r\n");
        self.socket
            .send_to(text.as_bytes(), &self.target)
            .expect("send");
    }

    /// The next response with this status (100 Trying is skipped).
    pub(crate) fn expect(&self, code: u16) -> String {
        let mut buf = [0u8; 4096];
        loop {
            let (n, _) = self
                .socket
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("no {code} from the plugin: {e}"));
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("SIP/2.0 100 ") && code != 100 {
                continue;
            }
            assert!(
                text.starts_with(&format!("SIP/2.0 {code} ")),
                "expected {code}, got:\n{text}"
            );
            return text;
        }
    }

    /// The next datagram within `within`, if one comes.
    pub(crate) fn next_within(&self, within: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(within)).expect("timeout");
        let mut buf = [0u8; 4096];
        let got = self.socket.recv_from(&mut buf).ok();
        self.socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        got.map(|(n, _)| String::from_utf8_lossy(&buf[..n]).to_string())
    }

    /// A request outside any dialog to extension 2001, with its own Call-ID (`branch` and this
    /// socket's port), `extra` header lines and a body.
    pub(crate) fn plain(&self, method: &str, branch: &str, extra: &str, body: &str) -> String {
        let port = self.port();
        let target = &self.target;
        format!(
            "{method} sip:2001@{target} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}\n\
             From: <sip:raw@127.0.0.1:{port}>;tag=raw{port}\nTo: <sip:2001@{target}>\n\
             Call-ID: {branch}-{port}\nCSeq: 1 {method}\nContact: <sip:raw@127.0.0.1:{port}>\n\
             Max-Forwards: 70\n{extra}Content-Length: {}\n\n{body}",
            // `send` turns every line end into CRLF, the body's too.
            body.replace('\n', "\r\n").len()
        )
    }

    pub(crate) fn request(&self, method: &str, cseq: u32, to_tag: &str, body: &str) -> String {
        let port = self.port();
        let target = &self.target;
        let to_tag = if to_tag.is_empty() {
            String::new()
        } else {
            format!(";tag={to_tag}")
        };
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\n"
        };
        format!(
            "{method} sip:2001@{target} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{method}-{cseq}\n\
             From: <sip:raw@127.0.0.1:{port}>;tag=raw1\nTo: <sip:2001@{target}>{to_tag}\n\
             Call-ID: raw-call-1\nCSeq: {cseq} {method}\nContact: <sip:raw@127.0.0.1:{port}>\n\
             Max-Forwards: 70\n{content_type}Content-Length: {}\n\n{body}",
            body.replace('\n', "\r\n").len()
        )
    }
}

pub(crate) fn to_tag(response: &str) -> String {
    response
        .lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split(";tag=").nth(1))
        .map(|t| t.trim().to_string())
        .expect("a To tag")
}

#[test]
fn voice_retransmissions_are_answered_from_the_transaction_and_order_is_enforced() {
    let rig = Rig::new("", "");
    rig.ready("ann");
    let raw = Raw::new(rig.target());
    let sdp = SDP.replace("[media_port]", "7000").replace("\r\n", "\n");
    let invite = raw.request("INVITE", 1, "", &sdp);
    raw.send(&invite);
    let ringing = raw.expect(180);
    let key = rig.wait_offer("ann");
    // The same INVITE again: the same 180 again, and still one call in the core.
    raw.send(&invite);
    assert_eq!(
        raw.expect(180),
        ringing,
        "a retransmission gets the same answer"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.snapshot("ann").interactions.len(),
        1,
        "a retransmitted INVITE is not a second call"
    );
    rig.exec("ann", AgentCommand::Accept { key });
    let ok = raw.expect(200);
    // No ACK yet: the 200 OK is retransmitted (RFC 3261 section 13.3.1.4).
    assert_eq!(
        raw.expect(200),
        ok,
        "the 2xx is retransmitted until the ACK"
    );
    let tag = to_tag(&ok);
    raw.send(&raw.request("ACK", 1, &tag, ""));
    raw.send(&raw.request("INFO", 5, &tag, ""));
    raw.expect(200);
    // An in-dialog request older than the last one: 500 (RFC 3261 section 12.2.2).
    raw.send(&raw.request("BYE", 3, &tag, ""));
    raw.expect(500);
    // A BYE in order ends the call.
    raw.send(&raw.request("BYE", 6, &tag, ""));
    raw.expect(200);
    rig.wait_state("ann", key, InteractionState::Ended);
    // A request in a dialog that no longer exists: 481.
    raw.send(&raw.request("BYE", 7, &tag, ""));
    raw.expect(481);
}

#[test]
fn voice_registers_with_digest_authentication() {
    let sipp_port = free_udp();
    let dir = tempfile::tempdir().expect("dir");
    let xml = scenario(
        "<recv request=\"REGISTER\"/>\n<send><![CDATA[\nSIP/2.0 401 Unauthorized\n[last_Via:]\n[last_From:]\n\
         [last_To:];tag=reg[call_number]\n[last_Call-ID:]\n[last_CSeq:]\n\
         WWW-Authenticate: Digest realm=\"agentdesk.test\", nonce=\"n[pid][call_number]\", qop=\"auth\"\n\
         Content-Length: 0\n\n]]></send>\n\
         <recv request=\"REGISTER\"><action><verifyauth assign_to=\"ok\" username=\"agentdesk\" password=\"agentdesk-tests\"/></action></recv>\n\
         <nop hide=\"true\" test=\"ok\" next=\"good\"/>\n\
         <send><![CDATA[\nSIP/2.0 403 Forbidden\n[last_Via:]\n[last_From:]\n[last_To:];tag=reg[call_number]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n\n]]></send>\n\
         <recv request=\"NEVER\" timeout=\"500\"/>\n\
         <label id=\"good\"/>\n\
         <send><![CDATA[\nSIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:];tag=reg[call_number]\n[last_Call-ID:]\n[last_CSeq:]\n\
         [last_Contact:];expires=3600\nContent-Length: 0\n\n]]></send>\n",
    );
    let child = sipp(
        dir.path(),
        "registrar",
        &xml,
        "",
        &["-p", &sipp_port.to_string()],
    );
    std::thread::sleep(Duration::from_millis(300));
    // The password comes from an environment variable: cargo sets CARGO_PKG_NAME for tests.
    let _rig = Rig::new(
        &format!(
            "[plugins.settings.\"{VOICE}\".registrar]\nuri = \"sip:127.0.0.1:{sipp_port}\"\n\
             user = \"agentdesk\"\npassword_env = \"CARGO_PKG_NAME\"\n"
        ),
        "",
    );
    sipp_passed(child, dir.path(), "registrar");
}

#[test]
fn voice_forwarding_redirects_new_calls_with_302() {
    let rig = Rig::new("", "");
    rig.ready("ann");
    rig.exec(
        "ann",
        AgentCommand::SetForwarding {
            to: Some(Address::phone("+15550100")),
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    let xml = scenario(&format!(
        "{}<recv response=\"100\" optional=\"true\"/>\n\
         <recv response=\"302\"><action><ereg regexp=\"sip:[+]15550100@127[.]0[.]0[.]1\" search_in=\"msg\" check_it=\"true\" assign_to=\"c\"/></action></recv>\n{}<Reference variables=\"c\"/>\n",
        invite(),
        ack()
    ));
    let child = sipp(
        rig.dir(),
        "forward",
        &xml,
        &rig.target(),
        &["-s", "2001", "-p", &free_udp().to_string()],
    );
    sipp_passed(child, rig.dir(), "forward");
    assert!(
        rig.snapshot("ann").interactions.is_empty(),
        "a forwarded call is not offered to Ann"
    );
    // Forwarding off: the next call rings Ann again.
    rig.exec("ann", AgentCommand::SetForwarding { to: None });
    std::thread::sleep(Duration::from_millis(300));
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    customer.cmd("dial", &rig.uri("2001"));
    rig.wait_offer("ann");
}

#[test]
fn voice_forwarding_in_reroute_mode_offers_the_call_to_the_colleague_extension() {
    let rig = Rig::new(
        &format!(
            "forwarding = \"reroute\"\n[plugins.settings.\"{VOICE}\".agents.bob]\nextension = \"2002\"\n"
        ),
        "",
    );
    rig.ready("ann");
    rig.ready("bob");
    rig.exec(
        "ann",
        AgentCommand::SetForwarding {
            to: Some(Address::phone("2002")),
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    customer.cmd("dial", &rig.uri("2001"));
    let key = rig.wait_offer("bob");
    assert!(rig.snapshot("ann").interactions.is_empty());
    rig.exec("bob", AgentCommand::Accept { key });
    until("baresip connected", || customer.established().then_some(()));
}

#[test]
fn voice_blind_transfer_hands_the_customer_to_another_phone() {
    let rig = Rig::new("", "");
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    let target = Baresip::start("target", COLLEAGUE_HZ);
    let key = connected_call(&rig, &customer);
    // As the desk sends it: a blind transfer to an address no agent has as an extension is
    // dialled out by the channel (REFER); the call stays Ann's until the plugin reports it gone.
    rig.exec(
        "ann",
        AgentCommand::Transfer {
            key,
            to: Route::extension(target.uri()),
        },
    );
    let ended = rig.wait_state("ann", key, InteractionState::Ended);
    assert!(
        ended
            .detail
            .case_data
            .iter()
            .any(|f| f.key == "transfers" && f.value == "1")
    );
    until("the target talks to the customer", || {
        target.calls().contains("customer@127.0.0.1").then_some(())
    });
    until("the target connected", || {
        target.established().then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    target.assert_heard(CUSTOMER_HZ, "the target hears the customer directly");
}

/// Ann consults Bob, whose phone is a second baresip; returns (call, consultation).
fn consult_bob(rig: &Rig, customer: &Baresip) -> (u64, u64) {
    let key = connected_call(rig, customer);
    std::thread::sleep(Duration::from_millis(1500));
    rig.ready("bob");
    rig.exec(
        "ann",
        AgentCommand::Consult {
            key,
            colleague: "bob".into(),
        },
    );
    rig.wait_media("ann", key, MediaState::Held);
    let consultation = until("the consultation", || {
        rig.find("bob", |i| i.consult_about == Some(key))
            .map(|i| i.key)
    });
    if rig
        .find("bob", |i| {
            i.key == consultation && matches!(i.state, InteractionState::Offered { .. })
        })
        .is_some()
    {
        rig.exec("bob", AgentCommand::Accept { key: consultation });
    }
    (key, consultation)
}

fn bob_phone(rig_settings: &mut String) -> Baresip {
    let bob = Baresip::start("bob", COLLEAGUE_HZ);
    rig_settings.push_str(&format!(
        "[plugins.settings.\"{VOICE}\".agents.bob]\nextension = \"2002\"\nuri = \"{}\"\n",
        bob.uri()
    ));
    bob
}

#[test]
fn voice_consultation_then_transfer_joins_customer_and_colleague() {
    let mut settings = String::new();
    let bob = bob_phone(&mut settings);
    let rig = Rig::new(&settings, "");
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    let (key, consultation) = consult_bob(&rig, &customer);
    until("bob's phone answered", || bob.established().then_some(()));
    rig.exec(
        "ann",
        AgentCommand::TransferAfterConsultation { consultation },
    );
    until("the call no longer active for ann", || {
        rig.find("ann", |i| {
            i.key == key && i.state == InteractionState::Active
        })
        .is_none()
        .then_some(())
    });
    until("bob talks to the customer", || {
        let calls = bob.calls();
        (calls.contains("customer@127.0.0.1") && calls.contains("ESTABLISHED")).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    bob.assert_heard(CUSTOMER_HZ, "bob hears the customer after the transfer");
}

#[test]
fn voice_conference_of_three_mixes_every_party() {
    let mut settings = String::new();
    let bob = bob_phone(&mut settings);
    let rig = Rig::new(&settings, "");
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    let (key, consultation) = consult_bob(&rig, &customer);
    until("bob's phone answered", || bob.established().then_some(()));
    rig.exec("ann", AgentCommand::Conference { consultation });
    rig.wait_media("ann", key, MediaState::Connected);
    std::thread::sleep(Duration::from_secs(3));
    customer.cmd("hangup", "");
    rig.wait_state("ann", key, InteractionState::Ended);
    bob.assert_heard(CUSTOMER_HZ, "bob hears the customer through the mixer");
    bob.assert_heard(AGENT_HZ, "bob hears the agent");
    customer.assert_heard(COLLEAGUE_HZ, "the customer hears bob through the mixer");
    let recording = rig
        .recordings()
        .into_iter()
        .find(|p| tone_blocks(&read_channel(p, 0).0, 8000, CUSTOMER_HZ) >= 5)
        .expect("the customer call's recording");
    assert_tone(
        &recording,
        0,
        COLLEAGUE_HZ,
        "the agent hears bob in the conference",
    );
    let ann = rig.snapshot("ann");
    assert!(
        ann.channels
            .iter()
            .all(|c| c.state != ChannelState::LoggedOff)
    );
}

#[test]
fn voice_ending_a_consultation_hangs_up_the_colleague_and_gives_the_caller_back() {
    let mut settings = String::new();
    let bob = bob_phone(&mut settings);
    let rig = Rig::new(&settings, "");
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    let (key, consultation) = consult_bob(&rig, &customer);
    until("bob's phone answered", || bob.established().then_some(()));
    rig.exec("ann", AgentCommand::EndConsultation { consultation });
    until("bob's phone hung up", || (!bob.established()).then_some(()));
    rig.wait_media("ann", key, MediaState::Connected);
    assert!(customer.established(), "the caller is still there");
    customer.cmd("hangup", "");
    rig.wait_state("ann", key, InteractionState::Ended);
}

#[test]
fn voice_a_call_whose_peer_vanishes_is_ended_by_the_media_timer() {
    let rig = Rig::new("media_timeout_secs = 2", "");
    let customer = Baresip::start("customer", CUSTOMER_HZ);
    let key = connected_call(&rig, &customer);
    // The customer's phone dies without a BYE: its RTP stops.
    drop(customer);
    let ended = rig.wait_state("ann", key, InteractionState::Ended);
    assert!(
        ended
            .detail
            .case_data
            .iter()
            .any(|f| f.key == "duration_secs"),
        "{:?}",
        ended.detail.case_data
    );
}

#[test]
fn voice_twenty_simultaneous_calls_from_sipp_all_succeed() {
    let rig = Rig::new("", "auto_answer = [\"voice\"]");
    rig.ready("ann");
    let xml = scenario(&format!(
        "{}<recv response=\"100\" optional=\"true\"/>\n<recv response=\"180\" optional=\"true\"/>\n\
         <recv response=\"200\"/>\n{}<pause milliseconds=\"2000\"/>\n{}<recv response=\"200\"/>\n",
        invite(),
        ack(),
        request("BYE", "2", true, "", "")
    ));
    let child = sipp(
        rig.dir(),
        "load",
        &xml,
        &rig.target(),
        &[
            "-s",
            "2001",
            "-p",
            &free_udp().to_string(),
            "-m",
            "20",
            "-l",
            "20",
            "-r",
            "50",
        ],
    );
    sipp_passed(child, rig.dir(), "load");
    until("every call ended in the core", || {
        rig.snapshot("ann")
            .interactions
            .iter()
            .all(|i| i.state != InteractionState::Active)
            .then_some(())
    });
}

#[test]
fn voice_an_outbound_call_that_is_challenged_is_sent_again_with_credentials() {
    let sipp_port = free_udp();
    let dir = tempfile::tempdir().expect("dir");
    let reply = |status: &str, extra: &str| {
        format!(
            "<send><![CDATA[\nSIP/2.0 {status}\n[last_Via:]\n[last_From:]\n[last_To:];tag=uas[call_number]\n\
             [last_Call-ID:]\n[last_CSeq:]\nContact: <sip:uas@[local_ip]:[local_port]>\n{extra}]]></send>\n"
        )
    };
    let xml = scenario(&format!(
        "<recv request=\"INVITE\"/>\n{}<recv request=\"ACK\"/>\n\
         <recv request=\"INVITE\"><action><verifyauth assign_to=\"ok\" username=\"agentdesk\" password=\"agentdesk-tests\"/></action></recv>\n\
         <nop hide=\"true\" test=\"ok\" next=\"good\"/>\n{}<recv request=\"NEVER\" timeout=\"500\"/>\n\
         <label id=\"good\"/>\n{}<recv request=\"ACK\"/>\n<recv request=\"BYE\"/>\n{}",
        reply(
            "401 Unauthorized",
            "WWW-Authenticate: Digest realm=\"agentdesk.test\", nonce=\"p[pid][call_number]\", qop=\"auth\"\nContent-Length: 0\n\n"
        ),
        reply("403 Forbidden", "Content-Length: 0\n\n"),
        reply(
            "200 OK",
            &format!(
                "Content-Type: application/sdp\nContent-Length: [len]\n\n{}",
                SDP.replace("\r\n", "\n")
            )
        ),
        reply("200 OK", "Content-Length: 0\n\n"),
    ));
    let child = sipp(dir.path(), "uas", &xml, "", &["-p", &sipp_port.to_string()]);
    // The credentials are the registrar account's; nothing listens at the registrar here.
    let rig = Rig::new(
        &format!(
            "[plugins.settings.\"{VOICE}\".registrar]\nuri = \"sip:127.0.0.1:{}\"\n\
             user = \"agentdesk\"\npassword_env = \"CARGO_PKG_NAME\"\n",
            free_udp()
        ),
        "",
    );
    rig.ready("ann");
    rig.exec(
        "ann",
        AgentCommand::StartOutbound {
            channel: "voice".into(),
            to: Address::new(Address::SIP, format!("sip:uas@127.0.0.1:{sipp_port}")),
            from: None,
        },
    );
    let key = until("the outbound call", || {
        rig.find("ann", |i| {
            i.detail.media_state == Some(MediaState::Connected)
        })
        .map(|i| i.key)
    });
    rig.exec("ann", AgentCommand::End { key });
    sipp_passed(child, dir.path(), "uas");
}

#[test]
fn voice_an_outbound_call_ended_while_ringing_is_cancelled() {
    let sipp_port = free_udp();
    let dir = tempfile::tempdir().expect("dir");
    let reply = |status: &str| {
        format!(
            "<send><![CDATA[\nSIP/2.0 {status}\n[last_Via:]\n[last_From:]\n[last_To:];tag=uas[call_number]\n\
             [last_Call-ID:]\n[last_CSeq:]\nContact: <sip:uas@[local_ip]:[local_port]>\nContent-Length: 0\n\n]]></send>\n"
        )
    };
    let xml = scenario(&format!(
        "<recv request=\"INVITE\"/>\n{}<recv request=\"CANCEL\"/>\n{}{}<recv request=\"ACK\"/>\n",
        reply("180 Ringing"),
        reply("200 OK"),
        reply("487 Request Terminated").replace("[last_CSeq:]", "CSeq: 1 INVITE"),
    ));
    let child = sipp(
        dir.path(),
        "ringing",
        &xml,
        "",
        &["-p", &sipp_port.to_string()],
    );
    let rig = Rig::new("", "");
    rig.ready("ann");
    rig.exec(
        "ann",
        AgentCommand::StartOutbound {
            channel: "voice".into(),
            to: Address::new(Address::SIP, format!("sip:uas@127.0.0.1:{sipp_port}")),
            from: None,
        },
    );
    let key = until("the outbound call dialing", || {
        rig.find("ann", |i| i.detail.media_state == Some(MediaState::Dialing))
            .map(|i| i.key)
    });
    std::thread::sleep(Duration::from_millis(300));
    rig.exec("ann", AgentCommand::End { key });
    sipp_passed(child, dir.path(), "ringing");
}

#[test]
fn voice_a_late_offer_is_answered_with_our_offer_and_audio_starts_after_the_ack() {
    let rig = Rig::new("", "auto_answer = [\"voice\"]");
    rig.ready("ann");
    let sdp = SDP.replace("\r\n", "\n");
    let xml = scenario(&format!(
        "{}<recv response=\"100\" optional=\"true\"/>\n<recv response=\"180\" optional=\"true\"/>\n\
         <recv response=\"200\"><action><ereg regexp=\"m=audio [0-9]+ RTP/AVP 0 8 101\" search_in=\"body\" check_it=\"true\" assign_to=\"o\"/></action></recv>\n\
         {}<pause milliseconds=\"1500\"/>\n{}<recv response=\"200\"/>\n<Reference variables=\"o\"/>\n",
        request("INVITE", "1", false, "", ""),
        request("ACK", "1", true, "Content-Type: application/sdp\n", &sdp)
            .replace(" retrans=\"500\"", ""),
        request("BYE", "2", true, "", ""),
    ));
    let child = sipp(
        rig.dir(),
        "late",
        &xml,
        &rig.target(),
        &["-s", "2001", "-p", &free_udp().to_string()],
    );
    sipp_passed(child, rig.dir(), "late");
    let ended = until("the call ended", || {
        rig.find("ann", |i| i.state == InteractionState::Ended)
    });
    let sent: u64 = ended
        .detail
        .case_data
        .iter()
        .find(|f| f.key == "rtp_sent")
        .map(|f| f.value.parse().expect("a number"))
        .expect("RTP counters in the call record");
    assert!(sent > 0, "audio was sent once the ACK answered");
}

#[test]
fn voice_in_dialog_requests_follow_the_record_route_of_a_proxy() {
    let rig = Rig::new("", "auto_answer = [\"voice\"]");
    rig.ready("ann");
    let invite = invite().replace(
        "Max-Forwards: 70\n",
        "Max-Forwards: 70\nRecord-Route: <sip:127.0.0.1:[local_port];lr;proxy=one>\n",
    );
    let xml = scenario(&format!(
        "{invite}<recv response=\"100\" optional=\"true\"/>\n<recv response=\"180\" optional=\"true\"/>\n\
         <recv response=\"200\"><action><ereg regexp=\"Record-Route: &lt;sip:127.0.0.1:[0-9]+;lr;proxy=one&gt;\" search_in=\"msg\" check_it=\"true\" assign_to=\"rr\"/></action></recv>\n\
         {}<recv request=\"BYE\"><action><ereg regexp=\"\\nRoute: &lt;sip:127.0.0.1:[0-9]+;lr;proxy=one&gt;\" search_in=\"msg\" check_it=\"true\" assign_to=\"r\"/></action></recv>\n\
         <send><![CDATA[\nSIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n\n]]></send>\n\
         <Reference variables=\"rr,r\"/>\n",
        ack()
    ));
    let child = sipp(
        rig.dir(),
        "route",
        &xml,
        &rig.target(),
        &["-s", "2001", "-p", &free_udp().to_string()],
    );
    let key = until("the answered call", || {
        rig.find("ann", |i| {
            i.detail.media_state == Some(MediaState::Connected)
        })
        .map(|i| i.key)
    });
    rig.exec("ann", AgentCommand::End { key });
    sipp_passed(child, rig.dir(), "route");
}

#[test]
fn voice_a_bye_while_ringing_ends_the_invite_and_withdraws_the_offer() {
    let rig = Rig::new("", "");
    rig.ready("ann");
    let raw = Raw::new(rig.target());
    let sdp = SDP.replace("[media_port]", "7000").replace("\r\n", "\n");
    raw.send(&raw.request("INVITE", 1, "", &sdp));
    let ringing = raw.expect(180);
    let key = rig.wait_offer("ann");
    raw.send(&raw.request("BYE", 2, &to_tag(&ringing), ""));
    raw.expect(200);
    raw.expect(487);
    until("the offer withdrawn", || {
        rig.find("ann", |i| i.key == key).is_none().then_some(())
    });
}
