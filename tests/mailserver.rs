//! Real mail peers for the email tests: Debian's Dovecot (IMAP, IMAPS, LMTP) in the foreground
//! with a test-only configuration under a temporary directory, and an SMTP server (Debian's
//! python3-aiosmtpd) that keeps every message it receives and relays it to Dovecot over LMTP, so
//! replies land in the recipients' mailboxes. Ports are chosen at run time; Drop stops both.

use agentdesk_email::imap::Imap;
use agentdesk_email::settings::{Security, Settings};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password of every test account except `support`, whose password is the value of
/// [`PASSWORD_ENV`] (the plugin reads its password from an environment variable; a test cannot
/// set one safely in a multi-threaded process, so it uses one cargo sets for every test run).
pub const PASSWORD: &str = "secret";
/// The environment variable holding the support account's password.
pub const PASSWORD_ENV: &str = "CARGO_PKG_NAME";
/// The accounts: the channel's mailbox and three people outside.
pub const USERS: [&str; 4] = ["support", "customer", "boss", "carol"];

/// The support account's password.
pub fn support_password() -> String {
    std::env::var(PASSWORD_ENV)
        .unwrap_or_else(|_| panic!("{PASSWORD_ENV} is not set: run the tests through cargo"))
}

/// A free TCP port on loopback, chosen now. Ports come from below Linux's ephemeral range (where
/// outgoing connections take theirs) and from a counter, so two servers of this process never get
/// the same one while both are starting.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 400) * 25;
    for _ in 0..2000 {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (base + n % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000")
}

/// Runs a program and fails with the Debian package to install when it is missing.
fn run(program: &str, args: &[&str], package: &str) -> std::process::Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): install the Debian package {package} (see .ci/run)"
            )
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Dovecot's master binary (in /usr/sbin, which not every PATH has).
fn dovecot() -> &'static str {
    if Path::new("/usr/sbin/dovecot").exists() {
        "/usr/sbin/dovecot"
    } else {
        "dovecot"
    }
}

/// A certificate authority made by the test, and a server certificate for 127.0.0.1 it signed.
pub struct Tls {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
}

/// Makes a CA named `name` and a server certificate for 127.0.0.1/localhost in `dir` (openssl).
pub fn make_ca(dir: &Path, name: &str) -> Tls {
    let p = |f: &str| dir.join(format!("{name}-{f}"));
    let s = |p: &PathBuf| p.to_string_lossy().into_owned();
    let (ca_key, ca, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.pem"),
        p("server.key"),
        p("server.csr"),
        p("server.pem"),
        p("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("ext");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let subject = format!("/CN=agentdesk test CA {name}");
    let mut args = vec!["req", "-x509", "-nodes", "-days", "2", "-subj", &subject];
    args.extend(ec);
    let (ca_key_s, ca_s) = (s(&ca_key), s(&ca));
    args.extend(["-keyout", &ca_key_s, "-out", &ca_s]);
    run("openssl", &args, "openssl");
    let (key_s, csr_s) = (s(&key), s(&csr));
    let mut args = vec!["req", "-nodes", "-subj", "/CN=localhost"];
    args.extend(ec);
    args.extend(["-keyout", &key_s, "-out", &csr_s]);
    run("openssl", &args, "openssl");
    let (cert_s, ext_s) = (s(&cert), s(&ext));
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr_s,
            "-CA",
            &ca_s,
            "-CAkey",
            &ca_key_s,
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &cert_s,
            "-extfile",
            &ext_s,
        ],
        "openssl",
    );
    Tls { ca, cert, key }
}

/// The SMTP server: keeps each message as `<n>.eml` and relays it to Dovecot over LMTP.
const SMTP_SERVER: &str = r#"
import os, smtplib, ssl, sys, time, warnings
from aiosmtpd.controller import Controller

# aiosmtpd 1.4 warns about its own use of a deprecated attribute on every login.
warnings.filterwarnings("ignore", category=DeprecationWarning)

out, port, lmtp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cert = sys.argv[4] if len(sys.argv) > 5 else None
key = sys.argv[5] if len(sys.argv) > 5 else None

class Relay:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        Relay.count += 1
        # The recipients first: the test reads a message once its .eml is there.
        with open(os.path.join(out, "%05d.rcpt" % Relay.count), "w") as f:
            f.write("\n".join(envelope.rcpt_tos))
        tmp = os.path.join(out, ".incoming")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(out, "%05d.eml" % Relay.count))
        # One LMTP transaction per recipient: smtplib reads only one reply after DATA.
        for rcpt in envelope.rcpt_tos:
            try:
                with smtplib.LMTP("127.0.0.1", lmtp_port) as lmtp:
                    lmtp.sendmail(envelope.mail_from, [rcpt], data)
            except smtplib.SMTPRecipientsRefused:
                pass  # not one of the test's accounts: kept above, not relayed
            except Exception as e:
                print("relay to", rcpt, "failed:", e, file=sys.stderr, flush=True)
        return "250 OK"

context = None
if cert:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
if len(sys.argv) > 6 and sys.argv[6] == "starttls":
    from aiosmtpd.smtp import AuthResult, LoginPassword
    password = sys.argv[7].encode()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"support"
              and auth_data.password == password)
        return AuthResult(success=ok)

    controller = Controller(Relay(), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=authenticate,
                            auth_required=True, auth_require_tls=True)
else:
    controller = Controller(Relay(), hostname="127.0.0.1", port=port, ssl_context=context)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
"#;

/// Dovecot and the SMTP server, on ports chosen at run time.
pub struct MailServer {
    /// Everything lives here (configuration, mail, logs); removed on drop.
    pub dir: tempfile::TempDir,
    /// IMAP (plain).
    pub imap: u16,
    /// IMAPS (only with TLS).
    pub imaps: u16,
    /// LMTP.
    pub lmtp: u16,
    /// SMTP (implicit TLS when the server has TLS).
    pub smtp: u16,
    /// The test CA and server certificate, when TLS is on.
    pub tls: Option<Tls>,
    /// Where the SMTP server keeps what it received.
    pub outgoing: PathBuf,
    /// The uid/gid owning the mail (nobody when the test runs as root).
    owner: (u32, u32),
    dovecot: Option<Child>,
    smtp_server: Option<Child>,
    extra: Vec<Child>,
}

impl MailServer {
    /// Starts Dovecot and the SMTP server (both with TLS when `tls`).
    pub fn start(tls: bool) -> MailServer {
        let dir = tempfile::tempdir().expect("temp dir");
        // Dovecot's unprivileged processes must reach the mail and sockets under it.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let tls = tls.then(|| make_ca(dir.path(), "test"));
        let outgoing = dir.path().join("outgoing");
        std::fs::create_dir_all(&outgoing).expect("outgoing");
        let me = std::fs::metadata(dir.path()).expect("meta");
        // As root (CI), Dovecot runs mail processes as `nobody` (first_valid_uid = 100 refuses
        // uid 0); as a user, everything runs as that user.
        let owner = if me.uid() == 0 {
            (65534, 65534)
        } else {
            (me.uid(), me.gid())
        };
        let mut server = MailServer {
            dir,
            imap: free_port(),
            imaps: free_port(),
            lmtp: free_port(),
            smtp: free_port(),
            tls,
            outgoing,
            owner,
            dovecot: None,
            smtp_server: None,
            extra: Vec::new(),
        };
        server.configure();
        server.start_dovecot();
        server.start_smtp();
        server
    }

    fn configure(&self) {
        let d = self.dir.path();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(d.join(sub)).expect("dir");
        }
        let mail = d.join("mail");
        std::os::unix::fs::chown(&mail, Some(self.owner.0), Some(self.owner.1)).expect("chown");
        let mut users = String::new();
        for user in USERS {
            let password = if user == "support" {
                support_password()
            } else {
                PASSWORD.to_string()
            };
            users.push_str(&format!(
                "{user}:{{PLAIN}}{password}::::{}/{user}\n",
                mail.display()
            ));
        }
        std::fs::write(d.join("users"), users).expect("users");
        let root = self.owner.0 == 65534;
        let whoami = String::from_utf8_lossy(&run("id", &["-un"], "coreutils").stdout)
            .trim()
            .to_string();
        let (internal, login) = if root {
            ("dovecot".to_string(), "dovenull".to_string())
        } else {
            (whoami.clone(), whoami)
        };
        let ssl = match &self.tls {
            Some(tls) => format!(
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
                tls.cert.display(),
                tls.key.display()
            ),
            None => "ssl = no\n".into(),
        };
        let imaps = if self.tls.is_some() { self.imaps } else { 0 };
        let conf = format!(
            r#"base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 100
mail_uid = {uid}
mail_gid = {gid}
default_internal_user = {internal}
default_login_user = {login}
auth_username_format = %n
mail_location = maildir:{d}/mail/%n
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \Sent
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
  unix_listener lmtp {{
    mode = 0
  }}
}}
service anvil {{
  chroot =
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"#,
            d = d.display(),
            uid = self.owner.0,
            gid = self.owner.1,
            imap = self.imap,
            lmtp = self.lmtp,
        );
        std::fs::write(d.join("dovecot.conf"), conf).expect("conf");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Starts Dovecot in the foreground and waits until its IMAP port answers.
    pub fn start_dovecot(&mut self) {
        let conf = self.dir.path().join("dovecot.conf");
        let child = Command::new(dovecot())
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `dovecot` ({e}): install the Debian packages dovecot-imapd \
                     dovecot-lmtpd (see .ci/run)"
                )
            });
        self.dovecot = Some(child);
        self.wait_for(self.imap, "Dovecot's IMAP port");
        self.wait_for(self.lmtp, "Dovecot's LMTP port");
        if let Some(child) = &mut self.dovecot
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("Dovecot exited ({status}); dovecot.log:\n{}", self.log());
        }
    }

    /// Stops Dovecot (SIGTERM to its master, which ends every process it started).
    pub fn stop_dovecot(&mut self) {
        if let Some(mut child) = self.dovecot.take() {
            // `dovecot stop` sends SIGTERM to the master named in its pid file (no procps needed).
            let _ = Command::new(dovecot())
                .arg("-c")
                .arg(self.dir.path().join("dovecot.conf"))
                .arg("stop")
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            // The IMAP processes end when the master does; wait for the port to close.
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", self.imap)).is_ok() && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts the SMTP server.
    pub fn start_smtp(&mut self) {
        let child = self.spawn_smtp(&self.outgoing, self.smtp, false);
        self.smtp_server = Some(child);
    }

    /// Starts a second SMTP server that requires STARTTLS and AUTH (TLS only); returns its port and the
    /// directory where it keeps what it receives. It stops with the server.
    pub fn start_starttls_smtp(&mut self) -> (u16, PathBuf) {
        let port = free_port();
        let out = self.dir.path().join("outgoing-starttls");
        std::fs::create_dir_all(&out).expect("dir");
        let child = self.spawn_smtp(&out, port, true);
        self.extra.push(child);
        (port, out)
    }

    fn spawn_smtp(&self, out: &Path, port: u16, starttls: bool) -> Child {
        let script = self.dir.path().join("smtp_server.py");
        std::fs::write(&script, SMTP_SERVER).expect("script");
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(&script)
            .arg(out)
            .arg(port.to_string())
            .arg(self.lmtp.to_string());
        if let Some(tls) = &self.tls {
            command.arg(&tls.cert).arg(&tls.key);
            if starttls {
                // This one also requires SMTP AUTH as `support`.
                command.arg("starttls").arg(support_password());
            }
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot run /usr/bin/python3: install the Debian package python3-aiosmtpd");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        assert!(
            first.trim() == "ready",
            "the SMTP server did not start (is the Debian package python3-aiosmtpd installed?)"
        );
        child
    }

    /// Stops the SMTP server.
    pub fn stop_smtp(&mut self) {
        if let Some(mut child) = self.smtp_server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_for(&self, port: u16, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{what} never opened; dovecot.log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Delivers a message to local recipients over LMTP (as an MTA would).
    pub fn deliver(&self, recipients: &[&str], raw: &[u8]) {
        let stream = TcpStream::connect(("127.0.0.1", self.lmtp)).expect("LMTP connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        let expect = |want: char, reader: &mut BufReader<TcpStream>| loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("LMTP read");
            assert!(line.starts_with(want), "LMTP said: {line}\n{}", self.log());
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        };
        expect('2', &mut reader);
        let mut say = |line: &str, want: char, reader: &mut BufReader<TcpStream>| {
            writer
                .write_all(format!("{line}\r\n").as_bytes())
                .expect("LMTP write");
            expect(want, reader);
        };
        say("LHLO test", '2', &mut reader);
        say("MAIL FROM:<sender@example.com>", '2', &mut reader);
        for r in recipients {
            say(&format!("RCPT TO:<{r}>"), '2', &mut reader);
        }
        say("DATA", '3', &mut reader);
        let mut writer = reader.get_ref().try_clone().expect("clone");
        writer
            .write_all(&agentdesk_email::smtp::dot_stuffed(raw))
            .expect("LMTP data");
        for _ in recipients {
            let mut line = String::new();
            reader.read_line(&mut line).expect("LMTP read");
            assert!(line.starts_with('2'), "LMTP refused the message: {line}");
        }
        let _ = writer.write_all(b"QUIT\r\n");
    }

    /// Writes a message straight into a user's Maildir `new/` (as a delivery agent does while
    /// the IMAP server is down).
    pub fn drop_into_maildir(&self, user: &str, name: &str, raw: &[u8]) {
        let maildir = self.dir.path().join("mail").join(user);
        for dir in [
            maildir.clone(),
            maildir.join("tmp"),
            maildir.join("new"),
            maildir.join("cur"),
        ] {
            if !dir.exists() {
                std::fs::create_dir_all(&dir).expect("maildir");
                std::os::unix::fs::chown(&dir, Some(self.owner.0), Some(self.owner.1))
                    .expect("chown");
            }
        }
        let tmp = maildir.join("tmp").join(name);
        std::fs::write(&tmp, raw).expect("write maildir file");
        std::os::unix::fs::chown(&tmp, Some(self.owner.0), Some(self.owner.1)).expect("chown");
        std::fs::rename(&tmp, maildir.join("new").join(name)).expect("deliver");
    }

    /// Forgets a user's UIDs (Dovecot stopped): at the next start the mailbox gets a new
    /// UIDVALIDITY and its messages new UIDs, as after a mailbox rebuild or restore.
    pub fn forget_uids(&self, user: &str) {
        let maildir = self.dir.path().join("mail").join(user);
        for entry in std::fs::read_dir(&maildir).expect("maildir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("dovecot-uid") || name.starts_with("dovecot.index") {
                std::fs::remove_file(entry.path()).expect("remove");
            }
        }
    }

    /// A folder's UIDVALIDITY.
    pub fn uidvalidity(&self, user: &str, folder: &str) -> u32 {
        let out = self.imap(user, &[&format!("SELECT {folder}")]);
        out[0]
            .iter()
            .find_map(|l| agentdesk_email::imap::number_after(l, "[UIDVALIDITY"))
            .expect("UIDVALIDITY")
    }

    /// The messages the SMTP server received, in order, with their envelope recipients.
    pub fn sent(&self) -> Vec<(Vec<u8>, Vec<String>)> {
        sent_in(&self.outgoing)
    }

    /// The plugin settings for this server (extra lines appended as they are).
    pub fn plugin_settings(&self, extra: &str) -> String {
        let (imap_port, security, ca) = match &self.tls {
            Some(tls) => (
                self.imaps,
                "tls",
                format!("ca_file = \"{}\"\n", tls.ca.display()),
            ),
            None => (self.imap, "none", String::new()),
        };
        format!(
            "imap_port = {imap_port}\nimap_security = \"{security}\"\nsmtp_port = {}\n\
             smtp_security = \"{security}\"\n{ca}account = \"support\"\n\
             password_env = \"{PASSWORD_ENV}\"\naddress = \"support@example.com\"\n\
             display_name = \"Example Support\"\nsignature = \"Example Support Team\"\n\
             reconnect_secs = 1\npoll_interval_secs = 20\n\
             folders = [{{ name = \"INBOX\", queue = \"email\" }}]\n{extra}",
            self.smtp
        )
    }

    /// Runs IMAP commands as `user` (plain IMAP) and returns each command's untagged lines.
    pub fn imap(&self, user: &str, commands: &[&str]) -> Vec<Vec<String>> {
        let settings = Settings {
            imap_port: self.imap,
            imap_security: Security::None,
            account: user.into(),
            ..Settings::default()
        };
        let password = if user == "support" {
            support_password()
        } else {
            PASSWORD.to_string()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut imap = Imap::open(&settings, None, &password)
                .await
                .unwrap_or_else(|e| panic!("IMAP login as {user}: {e}\n{}", self.log()));
            let mut out = Vec::new();
            for command in commands {
                let untagged = imap
                    .command(command)
                    .await
                    .unwrap_or_else(|e| panic!("{command}: {e}"));
                out.push(
                    untagged
                        .into_iter()
                        .map(|u| {
                            let mut text = u.text;
                            for literal in u.literals {
                                text.push_str(&String::from_utf8_lossy(&literal));
                            }
                            text
                        })
                        .collect(),
                );
            }
            imap.logout().await;
            out
        })
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        for mut child in self.extra.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stop_smtp();
        self.stop_dovecot();
    }
}

/// The messages an SMTP server of the test kept in `dir`, in order, with their recipients.
pub fn sent_in(dir: &Path) -> Vec<(Vec<u8>, Vec<String>)> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("outgoing")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let rcpt = std::fs::read_to_string(p.with_extension("rcpt")).unwrap_or_default();
            (
                std::fs::read(&p).expect("eml"),
                rcpt.lines().map(str::to_string).collect(),
            )
        })
        .collect()
}
