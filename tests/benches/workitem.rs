//! Throughput of the workitem channel: files per second from the moment a batch of mixed files is
//! dropped into the watched folder to the moment each is an offered workitem with its text
//! extracted (PDF text or OCR) and its first page preview rendered. The release build of the real
//! plugin runs in a real `PluginHost`; documents are made with Ghostscript and img2pdf.
//!
//! `WORKITEM_BENCH_FILES` (default 200) sets the batch size; the figure is for 1,000:
//! `WORKITEM_BENCH_FILES=1000 cargo bench -p agentdesk-tests --bench workitem`; with
//! `WORKITEM_BENCH_ONCE=1` a single batch is timed instead of criterion's ten.

use agentdesk_host::plugins::package::package;
use agentdesk_host::{AdminConfig, PluginHost, StartMode};
use agentdesk_tests::{build_workspace_plugin_release, config_text};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use plugin_api::Event;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const WORKITEM: &str = "agentdesk.workitem";

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (see APT_PACKAGES in .ci/run)"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// The four kinds of the mix: a two-page text PDF, a two-page G3 fax, a one-page G4 fax and a
/// scanned (image-only) PDF.
fn templates(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let ps = dir.join("doc.ps");
    std::fs::write(
        &ps,
        "%!PS\n/Helvetica findfont 24 scalefont setfont\n\
         72 700 moveto (CLAIM 4711 WATER DAMAGE) show 72 660 moveto (Policy AB-1234) show showpage\n\
         72 700 moveto (SECOND PAGE SIGNATURE) show showpage\n",
    )
    .expect("ps");
    let ps = ps.to_string_lossy().into_owned();
    let out = |name: &str| dir.join(name);
    let gs = |device: &str, extra: &[&str], target: &Path| {
        let output = format!("-sOutputFile={}", target.display());
        let mut args = vec!["-q", "-dNOPAUSE", "-dBATCH", device];
        args.extend_from_slice(extra);
        args.push(&output);
        args.push(&ps);
        run("gs", &args);
    };
    gs("-sDEVICE=pdfwrite", &[], &out("text.pdf"));
    gs("-sDEVICE=tiffg3", &["-r204x196"], &out("fax-g3.tif"));
    gs(
        "-sDEVICE=tiffg4",
        &["-r204x196", "-dLastPage=1"],
        &out("fax-g4.tif"),
    );
    gs(
        "-sDEVICE=pnggray",
        &["-r100", "-dLastPage=1"],
        &out("scan.png"),
    );
    run(
        "img2pdf",
        &[
            &out("scan.png").to_string_lossy(),
            "-o",
            &out("scan.pdf").to_string_lossy(),
        ],
    );
    vec![
        (out("text.pdf"), "pdf"),
        (out("fax-g3.tif"), "tif"),
        (out("fax-g4.tif"), "tif"),
        (out("scan.pdf"), "pdf"),
    ]
}

fn files_per_second(c: &mut Criterion) {
    let count: usize = std::env::var("WORKITEM_BENCH_FILES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let library = build_workspace_plugin_release("agentdesk-workitem", "agentdesk_workitem");
    let corpus = tempfile::tempdir().expect("corpus");
    let templates = templates(corpus.path());

    // One batch, outside criterion's ten samples: the 1,000-file figure in minutes, not half an hour.
    if std::env::var_os("WORKITEM_BENCH_ONCE").is_some() {
        let took = one_batch(&library, &templates, count);
        eprintln!(
            "workitem: {count} mixed files dropped to offered in {took:.1?}: {:.1} files/s",
            count as f64 / took.as_secs_f64()
        );
        return;
    }
    let mut group = c.benchmark_group("workitem");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(count as u64));
    group.bench_function(format!("drop_to_offer_{count}_mixed_files"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += one_batch(&library, &templates, count);
            }
            total
        })
    });
    group.finish();
}

/// A fresh installation, `count` files staged on the same file system, renamed into the watched
/// folder at once; the time until the last document message (text and preview) is emitted.
fn one_batch(library: &Path, templates: &[(PathBuf, &str)], count: usize) -> Duration {
    let dir = tempfile::tempdir().expect("install");
    let (plugins, data, staging) = (
        dir.path().join("plugins"),
        dir.path().join("data"),
        dir.path().join("staging"),
    );
    package(library, &plugins).expect("package");
    let inbound = data.join("plugins").join(WORKITEM).join("inbound");
    for d in [&inbound, &staging] {
        std::fs::create_dir_all(d).expect("dir");
    }
    let mut staged = Vec::with_capacity(count);
    for n in 0..count {
        let (template, ext) = &templates[n % templates.len()];
        let name = format!("doc-{n:05}.{ext}");
        std::fs::copy(template, staging.join(&name)).expect("stage");
        staged.push(name);
    }
    let extra = format!(
        "[plugins.settings.\"{WORKITEM}\"]\nstable_ms = 200\nrescan_ms = 1000\n\
         [channels.workitem]\ncapacity = 3\n"
    );
    let config_path = dir.path().join("agentdesk.toml");
    std::fs::write(
        &config_path,
        config_text(&plugins, &data, &[WORKITEM], &extra),
    )
    .expect("config");
    let config = AdminConfig::load(&config_path).expect("config");
    let host = PluginHost::start(&config, StartMode::Run);
    assert_eq!(host.running_ids(), vec![WORKITEM.to_string()]);
    let started = Instant::now();
    for name in &staged {
        std::fs::rename(staging.join(name), inbound.join(name)).expect("drop");
    }
    let mut documents = 0;
    let deadline = started + Duration::from_secs(60 + count as u64 * 5);
    while documents < count {
        assert!(
            Instant::now() < deadline,
            "only {documents} of {count} offered"
        );
        if let Some(event) = host.recv_event(Duration::from_millis(100))
            && let Event::MessageReceived(m) = event.event
        {
            let preview = m
                .message
                .attachments
                .iter()
                .any(|a| a.content_type == "image/png");
            assert!(preview, "every file of the mix has a preview: {m:?}");
            documents += 1;
        }
    }
    started.elapsed()
}

criterion_group!(benches, files_per_second);
criterion_main!(benches);
