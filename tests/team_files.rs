//! Issue 16, files on remote desks: the `agentdesk hub` process runs the workitem channel (a PDF
//! dropped in its folder) or the email channel (a mail with an attachment in Dovecot); the files
//! reach Ann's desktop over NATS (in pieces) exactly as stored; Bob, who takes no part, is
//! refused, and so is Ann for another interaction's file.

use crate::client_suite::{ok, until};
use crate::nats::NatsServer;
use crate::team::{desk, start_hub};
use crate::workitem::make_pdf;
use agentdesk_client::{AgentCommand, DeskClient, InteractionState, LiveLine};
use std::time::{Duration, Instant};

const WORKITEM: &str = "agentdesk.workitem";
const WAIT: Duration = Duration::from_secs(30);

/// The live lines of `key` once one carries files.
fn lines_with_files(ann: &dyn DeskClient, key: u64) -> Vec<LiveLine> {
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = ann.live_lines(key, 0, 100).wait(WAIT).expect("lines");
        if lines.iter().any(|l| !l.attachments.is_empty()) {
            return lines;
        }
        assert!(Instant::now() < deadline, "no files on {key}: {lines:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_workitems_pages_and_pdf_reach_a_remote_desk_and_only_its_participants() {
    let nats = NatsServer::start();
    let (install, plugin_data, files) = crate::workitem::install();
    for (name, title) in [("invoice.pdf", "Invoice 4711"), ("order.pdf", "Order 815")] {
        files.deliver(name, |p| {
            make_pdf(p, title, "Ann Smith", &[title, "PAGE TWO"])
        });
    }
    let extra = format!(
        "[[agents]]\nid = \"ann\"\nname = \"Ann\"\nchannels = [\"workitem\"]\n\
         [[agents]]\nid = \"bob\"\nname = \"Bob\"\nchannels = [\"workitem\"]\n\
         [channels.workitem]\ncapacity = 20\nanswer_timeout_secs = 600\n\
         [plugins.settings.\"{WORKITEM}\"]\nstable_ms = 300\nrescan_ms = 400\npreview_pages = 2\n\
         tool_timeout_ms = 20000\n"
    );
    let config = install.write_config(&[WORKITEM], &extra);
    let _hub = start_hub(&config, &nats.url);

    let ann = desk(&nats.url, "ann");
    let bob = desk(&nats.url, "bob");
    let ann_sees = ann.watch();
    ok(
        &*ann,
        AgentCommand::LogOnChannel {
            channel: "workitem".into(),
        },
    );
    ok(
        &*ann,
        AgentCommand::SetReady {
            channel: "workitem".into(),
        },
    );
    let offered = until(&ann_sees, "both workitems offered to Ann", |s| {
        s.interactions
            .iter()
            .filter(|i| matches!(i.state, InteractionState::Offered { .. }))
            .count()
            == 2
    });
    let key_of = |title: &str| {
        offered
            .interactions
            .iter()
            .find(|i| i.subject.as_deref() == Some(title))
            .unwrap_or_else(|| panic!("{title}: {:?}", offered.interactions))
            .key
    };
    let (invoice, order) = (key_of("Invoice 4711"), key_of("Order 815"));
    for key in [invoice, order] {
        ok(&*ann, AgentCommand::Accept { key });
    }

    // Every file the invoice carries reaches Ann's desk byte for byte: the page previews and
    // the PDF itself (in pieces, whatever its size).
    let files: Vec<_> = lines_with_files(&*ann, invoice)
        .into_iter()
        .flat_map(|l| l.attachments)
        .collect();
    assert!(
        files.iter().any(|f| f.content_type == "image/png"),
        "page previews: {files:?}"
    );
    for file in &files {
        let fetched = ann.file(invoice, file).wait(WAIT).expect("the file");
        let stored = std::fs::read(plugin_data.join(&file.path))
            .unwrap_or_else(|e| panic!("{}: {e}", file.path));
        assert!(fetched == stored, "{}: {} bytes", file.path, fetched.len());
    }
    // The order's page is not the invoice's: asked for through the invoice, it is refused.
    let order_page = lines_with_files(&*ann, order)
        .into_iter()
        .flat_map(|l| l.attachments)
        .find(|f| f.content_type == "image/png")
        .expect("the order's page");
    let refused = ann
        .file(invoice, &order_page)
        .wait(WAIT)
        .expect_err("another interaction's file");
    assert_eq!(refused.code(), "not-attached");
    // Bob takes no part in Ann's workitems.
    let refused = bob
        .file(invoice, &files[0])
        .wait(WAIT)
        .expect_err("not Bob's");
    assert_eq!(refused.code(), "not-yours");
}

#[test]
fn an_emails_attachment_reaches_a_remote_desk_and_only_its_participants() {
    use crate::email::{ANN, BOB, PDF, html_with_attachment, setup};
    let server = crate::mailserver::MailServer::start(false);
    server.deliver(
        &["support@example.com"],
        &html_with_attachment("team-1@example.com"),
    );
    let nats = NatsServer::start();
    let (install, data, _) = setup(&server.plugin_settings(""), &format!("{ANN}{BOB}"));
    let _hub = start_hub(&install.dir.path().join("agentdesk.toml"), &nats.url);
    let ann = desk(&nats.url, "ann");
    let bob = desk(&nats.url, "bob");
    let ann_sees = ann.watch();
    ok(
        &*ann,
        AgentCommand::LogOnChannel {
            channel: "email".into(),
        },
    );
    ok(
        &*ann,
        AgentCommand::SetReady {
            channel: "email".into(),
        },
    );
    let offered = until(&ann_sees, "the email offered to Ann", |s| {
        s.interactions
            .iter()
            .any(|i| matches!(i.state, InteractionState::Offered { .. }))
    });
    let key = offered.interactions[0].key;
    ok(&*ann, AgentCommand::Accept { key });
    let pdf = lines_with_files(&*ann, key)
        .into_iter()
        .flat_map(|l| l.attachments)
        .find(|a| a.name == "invoice 4711.pdf")
        .expect("the invoice attachment");
    let fetched = ann.file(key, &pdf).wait(WAIT).expect("the attachment");
    assert_eq!(fetched, PDF, "byte for byte");
    assert_eq!(std::fs::read(data.join(&pdf.path)).expect("stored"), PDF);
    let refused = bob.file(key, &pdf).wait(WAIT).expect_err("not Bob's");
    assert_eq!(refused.code(), "not-yours");
}
