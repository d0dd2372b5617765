//! The workitem channel as shipped: the packaged plugin in a real host, fed with PDFs and G3/G4
//! faxes made by Debian's own tools (Ghostscript, img2pdf, libtiff-tools, qpdf), bad files, a slow
//! writer, Mark Done, a workbin, and a restart in the middle.

use crate::support::{Install, status};
use agentdesk_host::core::{AgentCommand, InteractionState, Policy};
use agentdesk_host::plugins::package::package;
use agentdesk_host::service::clock::SystemClock;
use agentdesk_host::service::{AgentSession, Answer, CoreHandle, CoreService, Query};
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::first_party_library;
use plugin_api::{Event, MessageReceived, Offer};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKITEM: &str = "agentdesk.workitem";

/// Runs a tool the test needs, failing with the Debian package to install when it is missing.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run `{program}` ({e}): install ghostscript poppler-utils libtiff-tools img2pdf qpdf tesseract-ocr (see .ci/run)")
    });
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn postscript(dir: &Path, pages: &[&str]) -> PathBuf {
    let path = dir.join(format!("doc-{}.ps", pages.join("-").len()));
    let mut ps = String::from("%!PS\n/Helvetica findfont 28 scalefont setfont\n");
    for page in pages {
        ps.push_str(&format!("72 700 moveto ({page}) show showpage\n"));
    }
    std::fs::write(&path, ps).expect("postscript");
    path
}

/// A PDF with a title, an author and one text line per page (Ghostscript's pdfwrite).
pub(crate) fn make_pdf(out: &Path, title: &str, author: &str, pages: &[&str]) {
    let dir = out.parent().expect("dir");
    let ps = postscript(dir, pages);
    let docinfo = format!("[ /Title ({title}) /Author ({author}) /DOCINFO pdfmark");
    run(
        "gs",
        &[
            "-q",
            "-dNOPAUSE",
            "-dBATCH",
            "-sDEVICE=pdfwrite",
            &format!("-sOutputFile={}", out.display()),
            "-c",
            &docinfo,
            "-f",
            &ps.to_string_lossy(),
        ],
    );
}

/// A multi-page fax (`tiffg3` or `tiffg4`), optionally with the sender's station id.
fn make_fax(out: &Path, device: &str, pages: &[&str], sender: Option<&str>) {
    let dir = out.parent().expect("dir");
    let ps = postscript(dir, pages);
    run(
        "gs",
        &[
            "-q",
            "-dNOPAUSE",
            "-dBATCH",
            &format!("-sDEVICE={device}"),
            "-r204x196",
            &format!("-sOutputFile={}", out.display()),
            &ps.to_string_lossy(),
        ],
    );
    if let Some(sender) = sender {
        run("tiffset", &["-s", "270", sender, &out.to_string_lossy()]);
    }
}

/// Staging, then an atomic rename into the watched folder (as a fax server delivers).
pub(crate) struct Files {
    staging: PathBuf,
    inbound: PathBuf,
}

impl Files {
    pub(crate) fn deliver(&self, name: &str, make: impl FnOnce(&Path)) -> PathBuf {
        let staged = self.staging.join(name);
        make(&staged);
        let target = self.inbound.join(name);
        std::fs::rename(&staged, &target).expect("deliver");
        target
    }
}

/// The test config; `extra` adds keys to the plugin's settings (a generous tool deadline unless
/// it sets its own).
fn settings(extra: &str) -> String {
    let timeout = if extra.contains("tool_timeout_ms") {
        ""
    } else {
        "tool_timeout_ms = 20000\n"
    };
    format!(
        "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"workitem\"]\n\
         [channels.workitem]\ncapacity = 20\nanswer_timeout_secs = 600\n\
         [plugins.settings.\"{WORKITEM}\"]\nstable_ms = 300\nrescan_ms = 400\npreview_pages = 2\n\
         {timeout}{extra}"
    )
}

/// An installation with the workitem plugin packaged; its data directory and folders.
pub(crate) fn install() -> (Install, PathBuf, Files) {
    let install = Install::new();
    package(&first_party_library("agentdesk_workitem"), &install.plugins).expect("package");
    let plugin_data = install.data.join("plugins").join(WORKITEM);
    let inbound = plugin_data.join("inbound");
    let staging = install.dir.path().join("staging");
    for dir in [&inbound, &staging] {
        std::fs::create_dir_all(dir).expect("dir");
    }
    (install, plugin_data, Files { staging, inbound })
}

/// Offers and their document messages by file name, until `count` of each arrived.
fn collect(host: &PluginHost, count: usize) -> BTreeMap<String, (Offer, MessageReceived)> {
    let mut offers: Vec<Offer> = Vec::new();
    let mut messages: Vec<MessageReceived> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while offers.len() < count || messages.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} offers: {:#?}",
            offers.len(),
            offers.iter().map(|o| &o.subject).collect::<Vec<_>>()
        );
        match host.recv_event(Duration::from_millis(200)).map(|e| e.event) {
            Some(Event::Offer(offer)) => offers.push(offer),
            Some(Event::MessageReceived(message)) => messages.push(message),
            _ => {}
        }
    }
    let mut by_name = BTreeMap::new();
    for offer in offers {
        let message = messages
            .iter()
            .find(|m| m.interaction == offer.interaction)
            .cloned()
            .expect("every offer has its document message");
        let name = field(&offer, "file").expect("file field");
        assert!(
            by_name.insert(name.clone(), (offer, message)).is_none(),
            "{name} offered twice"
        );
    }
    by_name
}

fn field(offer: &Offer, key: &str) -> Option<String> {
    offer
        .case_data
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.value.clone())
}

#[test]
fn faxes_and_pdfs_become_workitems_with_text_metadata_previews_and_flagged_problems() {
    let (install, plugin_data, files) = install();
    // Two files wait from "before the host was started": the scan at start takes them.
    files.deliver("claim_prio7_due2026-12-01.pdf", |p| {
        make_pdf(
            p,
            "Invoice 4711",
            "Ann Smith",
            &["INVOICE NUMBER 4711", "Second page"],
        )
    });
    files.deliver("fax-g3.tif", |p| {
        make_fax(
            p,
            "tiffg3",
            &["URGENT CLAIM FORM", "PAGE TWO"],
            Some("+1 555 0100 ACME"),
        )
    });
    let host = install.start(&[WORKITEM], &settings(""));
    assert_eq!(host.running_ids(), vec![WORKITEM.to_string()]);
    // A sidecar is delivered before its document (see the admin guide).
    std::fs::write(
        files.inbound.join("fax-g4.tif.json"),
        r#"{"priority": 3, "queue": "claims", "due": "2026-12-24"}"#,
    )
    .expect("sidecar");
    files.deliver("fax-g4.tif", |p| {
        make_fax(p, "tiffg4", &["POLICY RENEWAL"], None)
    });
    files.deliver("scan.pdf", |p| {
        let png = p.with_extension("png");
        run(
            "gs",
            &[
                "-q",
                "-dNOPAUSE",
                "-dBATCH",
                "-sDEVICE=pnggray",
                "-r72",
                &format!("-sOutputFile={}", png.display()),
                &postscript(p.parent().expect("dir"), &["SCANNED LETTER"]).to_string_lossy(),
            ],
        );
        run(
            "img2pdf",
            &[&png.to_string_lossy(), "-o", &p.to_string_lossy()],
        );
    });
    // Bad input: each becomes a flagged workitem.
    files.deliver("encrypted.pdf", |p| {
        let plain = p.with_extension("plain");
        make_pdf(&plain, "Secret", "X", &["SECRET"]);
        run(
            "qpdf",
            &[
                "--encrypt",
                "userpw",
                "ownerpw",
                "256",
                "--",
                &plain.to_string_lossy(),
                &p.to_string_lossy(),
            ],
        );
    });
    files.deliver("truncated.pdf", |p| {
        let whole = p.with_extension("whole");
        make_pdf(&whole, "Cut", "X", &["CUT SHORT"]);
        let bytes = std::fs::read(&whole).expect("pdf");
        std::fs::write(p, &bytes[..bytes.len() / 2]).expect("truncated");
    });
    files.deliver("empty.pdf", |p| std::fs::write(p, b"").expect("empty"));
    files.deliver("strange.tif", |p| {
        make_fax(p, "tiffg4", &["STRANGE"], None);
        run("tiffset", &["-s", "259", "12345", &p.to_string_lossy()]);
    });
    files.deliver("letter.pdf", |p| {
        std::fs::write(p, "Dear Sir, this is not a PDF.\n").expect("text")
    });
    files.deliver("really-a-pdf.tif", |p| {
        make_pdf(p, "Misnamed", "X", &["MISNAMED DOCUMENT"])
    });
    // A slow writer: the file grows for 1.5 s in its final place; it must not be taken half-way.
    let slow_pdf = files.staging.join("slow.source");
    make_pdf(&slow_pdf, "Slow", "X", &["WRITTEN SLOWLY"]);
    let slow_bytes = std::fs::read(&slow_pdf).expect("slow pdf");
    let mut slow = std::fs::File::create(files.inbound.join("slow.pdf")).expect("slow");
    for chunk in slow_bytes.chunks(slow_bytes.len().div_ceil(10)) {
        slow.write_all(chunk).expect("write");
        slow.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(150));
    }
    drop(slow);

    let items = collect(&host, 11);
    let (pdf, pdf_text) = &items["claim_prio7_due2026-12-01.pdf"];
    assert_eq!(pdf.channel.as_str(), "workitem");
    assert_eq!(pdf.media, plugin_api::Media::Document);
    assert_eq!(pdf.subject.as_deref(), Some("Invoice 4711"));
    assert_eq!(pdf.priority, 7, "priority from the file name");
    assert_eq!(field(pdf, "due").as_deref(), Some("2026-12-01"));
    assert_eq!(field(pdf, "author").as_deref(), Some("Ann Smith"));
    assert_eq!(field(pdf, "pages").as_deref(), Some("2"));
    assert_eq!(field(pdf, "problem"), None);
    assert!(pdf_text.message.text.contains("INVOICE NUMBER 4711"));
    assert!(pdf_text.message.text.contains("Second page"));
    let attachments = &pdf_text.message.attachments;
    assert_eq!(attachments.len(), 3, "the original and two page previews");
    assert_eq!(attachments[0].content_type, "application/pdf");
    for preview in &attachments[1..] {
        let bytes = std::fs::read(plugin_data.join(&preview.path)).expect("preview exists");
        assert!(bytes.starts_with(b"\x89PNG"), "{} is a PNG", preview.path);
    }

    let (g3, g3_text) = &items["fax-g3.tif"];
    assert_eq!(field(g3, "compression").as_deref(), Some("CCITT Group 3"));
    assert_eq!(field(g3, "pages").as_deref(), Some("2"));
    assert!(field(g3, "resolution").is_some_and(|r| r.starts_with("204, 196")));
    assert_eq!(field(g3, "sender").as_deref(), Some("+1 555 0100 ACME"));
    assert_eq!(
        g3.contact.addresses,
        vec![plugin_api::Address::phone("+1 555 0100")]
    );
    let ocr = g3_text.message.text.to_uppercase();
    assert!(ocr.contains("CLAIM FORM"), "OCR text: {ocr}");
    assert!(ocr.contains("PAGE TWO"), "both pages recognised: {ocr}");
    assert!(field(g3, "text").is_some_and(|t| t.contains("OCR")));
    assert_eq!(g3_text.message.attachments.len(), 3);

    let (g4, g4_text) = &items["fax-g4.tif"];
    assert_eq!(field(g4, "compression").as_deref(), Some("CCITT Group 4"));
    assert_eq!(g4.priority, 3, "priority from the sidecar");
    assert_eq!(g4.route.name, "claims", "queue from the sidecar");
    assert_eq!(field(g4, "due").as_deref(), Some("2026-12-24"));
    assert!(g4_text.message.text.to_uppercase().contains("RENEWAL"));

    let (scan, scan_text) = &items["scan.pdf"];
    assert_eq!(field(scan, "problem"), None);
    assert!(scan_text.message.text.contains("no text layer"));

    let problem = |name: &str| {
        let (offer, _) = &items[name];
        assert!(
            offer
                .subject
                .as_deref()
                .is_some_and(|s| s.starts_with("[problem]")),
            "{name}: {:?}",
            offer.subject
        );
        field(offer, "problem").unwrap_or_else(|| panic!("{name} is flagged"))
    };
    assert!(problem("encrypted.pdf").contains("encrypted"));
    assert!(problem("truncated.pdf").contains("truncated"));
    assert!(problem("empty.pdf").contains("empty"));
    assert!(problem("strange.tif").contains("unsupported compression"));
    assert!(problem("letter.pdf").contains("not a PDF or TIFF"));
    assert!(problem("really-a-pdf.tif").contains("the name says"));
    assert!(
        items["really-a-pdf.tif"]
            .1
            .message
            .text
            .contains("MISNAMED DOCUMENT"),
        "read as what it is"
    );
    let (slow, slow_text) = &items["slow.pdf"];
    assert_eq!(field(slow, "problem"), None, "taken whole, not half-way");
    assert!(slow_text.message.text.contains("WRITTEN SLOWLY"));
    assert!(
        items.values().all(|(o, _)| o.external_id.len() == 32),
        "a stable external id per file"
    );
    // Nothing more: every file was offered exactly once.
    std::thread::sleep(Duration::from_millis(1200));
    while let Some(e) = host.recv_event(Duration::from_millis(100)) {
        assert!(!matches!(e.event, Event::Offer(_)), "a second offer: {e:?}");
    }
}

#[test]
fn with_no_settings_the_channel_watches_folders_under_its_data_directory() {
    let install = Install::new();
    package(&first_party_library("agentdesk_workitem"), &install.plugins).expect("package");
    let agents = "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"workitem\"]\n";
    let host = install.start(&[WORKITEM], agents);
    let plugin_data = install.data.join("plugins").join(WORKITEM);
    for folder in ["inbound", "done", "rejected"] {
        assert!(plugin_data.join(folder).is_dir(), "{folder} created");
    }
    let staging = install.dir.path().join("staging");
    std::fs::create_dir_all(&staging).expect("staging");
    let files = Files {
        staging,
        inbound: plugin_data.join("inbound"),
    };
    files.deliver("note.pdf", |p| make_pdf(p, "Note", "X", &["HELLO"]));
    let items = collect(&host, 1);
    let (offer, _) = &items["note.pdf"];
    assert_eq!(offer.route.name, "default");
    assert_eq!(offer.priority, 0);
}

#[test]
fn problem_files_go_to_the_rejected_folder_with_their_reason_when_the_admin_prefers() {
    let (install, plugin_data, files) = install();
    files.deliver("empty.pdf", |p| std::fs::write(p, b"").expect("empty"));
    files.deliver("good.pdf", |p| make_pdf(p, "Good", "X", &["FINE"]));
    let host = install.start(&[WORKITEM], &settings("on_problem = \"reject\"\n"));
    let items = collect(&host, 1);
    assert!(items.contains_key("good.pdf"));
    let rejected = plugin_data.join("rejected");
    assert!(rejected.join("empty.pdf").exists(), "moved, not lost");
    let reason = std::fs::read_to_string(rejected.join("empty.pdf.reason.txt")).expect("reason");
    assert!(reason.contains("empty"), "{reason}");
    assert!(!files.inbound.join("empty.pdf").exists());
}

struct Running {
    service: CoreService,
    plugins: Arc<PluginHost>,
}

fn start(install: &Install) -> Running {
    let config =
        AdminConfig::load(&install.write_config(&[WORKITEM], &settings(""))).expect("config");
    let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
    let policy = Policy::from_config(&config, &["workitem".to_string()]);
    let service = agentdesk_tests::start_core(&install.data, policy, Some(plugins.clone()));
    Running { service, plugins }
}

/// Ann's interactions by subject, once `done(...)` holds for them.
/// With `accept`, offers are accepted as they come (an offer left ringing times out and sets the
/// agent Not Ready).
fn wait_for_subjects(
    core: &CoreHandle,
    accept: Option<&AgentSession>,
    what: &str,
    done: impl Fn(&BTreeMap<String, Vec<(u64, InteractionState)>>) -> bool,
) -> BTreeMap<String, Vec<(u64, InteractionState)>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        core.tick().expect("tick");
        let snapshot = core.snapshot("ann").expect("snapshot").expect("ann");
        let mut by_subject: BTreeMap<String, Vec<(u64, InteractionState)>> = BTreeMap::new();
        for i in &snapshot.interactions {
            if let Some(session) = accept
                && matches!(i.state, InteractionState::Offered { .. })
            {
                let _ = session.send(AgentCommand::Accept { key: i.key });
            }
            by_subject
                .entry(i.subject.clone().unwrap_or_default())
                .or_default()
                .push((i.key, i.state.clone()));
        }
        if done(&by_subject) {
            return by_subject;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {by_subject:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the plugin's ledger records the file `name` as offered.
fn recorded_as_offered(ledger: &Path, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(ledger) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let record: serde_json::Value = std::fs::read(entry.path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        record["status"] == "offered"
            && record["found_at"]
                .as_str()
                .is_some_and(|p| p.ends_with(&format!("/{name}")))
    })
}

fn search(core: &CoreHandle, word: &str) -> Vec<u64> {
    let Answer::Entries(found) = core
        .query(Query::Search {
            contact: None,
            text: Some(word.into()),
            limit: 10,
        })
        .expect("search")
    else {
        panic!("entries")
    };
    found.iter().map(|e| e.key).collect()
}

#[test]
fn workitems_are_routed_by_the_core_done_moves_the_file_and_a_restart_offers_nothing_twice() {
    let (install, plugin_data, files) = install();
    let invoice = files.deliver("invoice.pdf", |p| {
        make_pdf(p, "Invoice 4711", "Ann Smith", &["INVOICE NUMBER 4711"])
    });
    let invoice_bytes = std::fs::read(&invoice).expect("bytes");
    let fax = files.deliver("fax.tif", |p| {
        make_fax(p, "tiffg4", &["WATERLOGGED BASEMENT"], Some("+1 555 0199"))
    });
    let running = start(&install);
    let core = running.service.handle();
    let ann = core.login("ann").expect("login");
    for command in [
        AgentCommand::LogOnChannel {
            channel: "workitem".into(),
        },
        AgentCommand::SetReady {
            channel: "workitem".into(),
        },
    ] {
        ann.send(command).expect("ready");
    }
    let offered = wait_for_subjects(&core, None, "two offers", |s| {
        s.len() == 2
            && s.values()
                .all(|v| matches!(v[0].1, InteractionState::Offered { .. }))
    });
    let invoice_key = offered["Invoice 4711"][0].0;
    let fax_key = offered["fax.tif"][0].0;
    for key in [invoice_key, fax_key] {
        ann.send(AgentCommand::Accept { key }).expect("accept");
    }
    assert_eq!(
        search(&core, "4711"),
        vec![invoice_key],
        "PDF text in the history"
    );
    let ocr_found = search(&core, "basement");
    assert_eq!(
        ocr_found,
        vec![fax_key],
        "the fax is searchable by its OCR text"
    );
    ann.send(AgentCommand::Park {
        key: fax_key,
        workbin: "later".into(),
    })
    .expect("to the workbin");
    ann.send(AgentCommand::MarkDone {
        key: invoice_key,
        wrap_up: None,
        next: None,
    })
    .expect("done");
    let done_copy = plugin_data.join("done").join("invoice.pdf");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done_copy.exists() {
        assert!(Instant::now() < deadline, "Mark Done never moved the file");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read(&done_copy).expect("done"),
        invoice_bytes,
        "the original bytes"
    );
    assert!(!invoice.exists());
    assert!(fax.exists(), "a workbin leaves the file where it is");

    // A restart in the middle of a batch: stop as soon as the first of eight new files is offered.
    let names: Vec<String> = (1..=8).map(|n| format!("batch-{n}.tif")).collect();
    for (n, name) in names.iter().enumerate() {
        files.deliver(name, |p| {
            make_fax(
                p,
                if n % 2 == 0 { "tiffg3" } else { "tiffg4" },
                &[&format!("BATCH PAGE {n}")],
                None,
            )
        });
    }
    wait_for_subjects(&core, None, "the first of the batch", |s| {
        s.keys().any(|k| k.starts_with("batch-"))
    });
    running.service.stop();
    let ledger = plugin_data.join("ledger");
    let recorded = std::fs::read_dir(&ledger).expect("ledger").count();
    assert!(
        recorded < 2 + names.len(),
        "the restart must come in the middle of the batch ({recorded} files recorded)"
    );
    // The host stops its core before its plugins (as the desktop does): a file offered in
    // between reaches no core, though the plugin recorded it as offered.
    files.deliver("late.pdf", |p| make_pdf(p, "Late", "X", &["ARRIVED LATE"]));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !recorded_as_offered(&ledger, "late.pdf") {
        assert!(Instant::now() < deadline, "late.pdf was never offered");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(running.plugins);

    let running = start(&install);
    let core = running.service.handle();
    let ann = core.login("ann").expect("login again");
    for command in [
        AgentCommand::LogOnChannel {
            channel: "workitem".into(),
        },
        AgentCommand::SetReady {
            channel: "workitem".into(),
        },
    ] {
        // Already logged on and Ready from before the restart, unless an offer rang out meanwhile.
        let _ = ann.send(command);
    }
    let all = wait_for_subjects(
        &core,
        Some(&ann),
        "the whole batch after the restart",
        |s| names.iter().all(|n| s.contains_key(n)) && s.contains_key("Late"),
    );
    assert_eq!(
        all["Late"].len(),
        1,
        "the unconfirmed offer was sent again, once"
    );
    for name in &names {
        assert_eq!(all[name].len(), 1, "{name} offered exactly once: {all:#?}");
        // A workitem offered before the restart is offered again with its text; the stored
        // transcript keeps that text once.
        let transcript = || {
            let Answer::Lines(lines) = core
                .query(Query::Transcript {
                    key: all[name][0].0,
                    offset: 0,
                    limit: 10,
                })
                .expect("transcript")
            else {
                panic!("transcript lines")
            };
            lines
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while transcript().is_empty() {
            assert!(Instant::now() < deadline, "{name}'s text never stored");
            std::thread::sleep(Duration::from_millis(50));
        }
        let lines = transcript();
        assert_eq!(lines.len(), 1, "{name}'s text stored once: {lines:?}");
    }
    assert_eq!(
        all["fax.tif"].len(),
        1,
        "the parked fax was not offered again"
    );
    assert!(matches!(
        all["fax.tif"][0].1,
        InteractionState::InWorkbin { .. }
    ));
    // Mark Done after the restart still finds the file: the ledger is durable.
    ann.send(AgentCommand::Unpark { key: fax_key })
        .expect("back");
    ann.send(AgentCommand::MarkDone {
        key: fax_key,
        wrap_up: None,
        next: None,
    })
    .expect("done");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !plugin_data.join("done").join("fax.tif").exists() {
        assert!(Instant::now() < deadline, "the fax was never moved");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!fax.exists());
    running.service.stop();
}

#[test]
fn a_workitem_the_core_refuses_goes_to_the_rejected_folder_with_the_reason() {
    let (install, plugin_data, files) = install();
    files.deliver("orphan.pdf", |p| make_pdf(p, "Orphan", "X", &["NOBODY"]));
    // The plugin runs (someone has the channel in its config), but the core serves no agent on
    // it, so the core refuses the offer.
    let config =
        AdminConfig::load(&install.write_config(&[WORKITEM], &settings(""))).expect("config");
    let plugins = Arc::new(PluginHost::start(&config, StartMode::Run));
    let chat_only = AdminConfig::load(&install.write_config(
        &[WORKITEM],
        "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"chat\"]\n",
    ))
    .expect("config");
    let service = CoreService::start(
        Policy::from_config(&chat_only, &[]),
        None,
        None,
        Some(plugins.clone()),
        Arc::new(SystemClock),
    )
    .expect("service");
    let rejected = plugin_data.join("rejected");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !rejected.join("orphan.pdf.reason.txt").exists() {
        assert!(
            Instant::now() < deadline,
            "the refused workitem was never moved"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let reason = std::fs::read_to_string(rejected.join("orphan.pdf.reason.txt")).expect("reason");
    assert!(reason.contains("refused by the core"), "{reason}");
    assert!(reason.contains("workitem"), "the core's reason: {reason}");
    assert!(rejected.join("orphan.pdf").exists());
    assert!(!files.inbound.join("orphan.pdf").exists());
    service.stop();
}

#[test]
fn without_tesseract_and_pdftoppm_a_fax_still_arrives_with_clear_notes() {
    let (install, _plugin_data, files) = install();
    let tools = install.dir.path().join("tools");
    std::fs::create_dir_all(&tools).expect("tools");
    for tool in ["pdfinfo", "pdftotext", "tiffinfo", "tiff2pdf"] {
        std::os::unix::fs::symlink(Path::new("/usr/bin").join(tool), tools.join(tool))
            .expect("symlink");
    }
    files.deliver("fax.tif", |p| make_fax(p, "tiffg4", &["NO OCR HERE"], None));
    let extra = format!("tool_dirs = [\"{}\"]\n", tools.display());
    let host = install.start(&[WORKITEM], &settings(&extra));
    let mut status = None;
    let mut offer = None;
    let mut document = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while offer.is_none() || document.is_none() || status.is_none() {
        assert!(Instant::now() < deadline, "no offer: {offer:?} {status:?}");
        match host.recv_event(Duration::from_millis(200)).map(|e| e.event) {
            Some(Event::ChannelStatus(s)) => status = Some(s),
            Some(Event::Offer(o)) => offer = Some(o),
            Some(Event::MessageReceived(m)) => document = Some(m),
            _ => {}
        }
    }
    let status = status.expect("status").detail;
    assert!(
        status.contains("`tesseract` is missing (install tesseract-ocr)"),
        "{status}"
    );
    assert!(
        status.contains("`pdftoppm` is missing (install poppler-utils)"),
        "{status}"
    );
    let offer = offer.expect("offer");
    assert_eq!(
        field(&offer, "problem"),
        None,
        "a missing tool is not the file's problem"
    );
    assert_eq!(field(&offer, "pages").as_deref(), Some("1"));
    assert!(
        field(&offer, "previews").is_some_and(|p| p.contains("`pdftoppm` is not installed")),
        "{:?}",
        offer.case_data
    );
    let text = document.expect("document").message.text;
    assert!(
        text.contains("OCR") && text.contains("tesseract-ocr"),
        "the agent reads why there is no text: {text}"
    );
}

#[test]
fn a_decoder_that_hangs_or_crashes_costs_one_file_its_text_never_the_channel() {
    let (install, _plugin_data, files) = install();
    let tools = install.dir.path().join("tools");
    std::fs::create_dir_all(&tools).expect("tools");
    for tool in ["pdftotext", "pdftoppm", "tiff2pdf", "tesseract"] {
        std::os::unix::fs::symlink(Path::new("/usr/bin").join(tool), tools.join(tool))
            .expect("symlink");
    }
    // pdfinfo hangs (its child keeps the pipes open too); tiffinfo dies of a segfault.
    let fake = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = tools.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    };
    fake("pdfinfo", "sleep 60");
    fake("tiffinfo", "kill -SEGV $$");
    files.deliver("hangs.pdf", |p| make_pdf(p, "Hangs", "X", &["HANG"]));
    files.deliver("crashes.tif", |p| make_fax(p, "tiffg4", &["CRASH"], None));
    let extra = format!(
        "tool_dirs = [\"{}\"]\ntool_timeout_ms = 1000\n",
        tools.display()
    );
    let started = Instant::now();
    let host = install.start(&[WORKITEM], &settings(&extra));
    let items = collect(&host, 2);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the hang was cut at its deadline"
    );
    let hangs = field(&items["hangs.pdf"].0, "problem").expect("flagged");
    assert!(hangs.contains("did not finish within 1.0 s"), "{hangs}");
    let crashes = field(&items["crashes.tif"].0, "problem").expect("flagged");
    assert!(crashes.contains("`tiffinfo` failed"), "{crashes}");
    // The channel goes on: the next file arrives as usual.
    files.deliver("after.tif", |p| {
        make_fax(p, "tiffg4", &["STILL HERE"], None)
    });
    let after = collect(&host, 1);
    assert!(after.contains_key("after.tif"));
    assert_eq!(status(&host, WORKITEM).0, "loaded");
}
