//! plugin-api's `runtime` helper: a plugin-owned tokio runtime that runs tasks, blocks on set-up
//! futures, and refuses work after shutdown instead of hanging.

use plugin_api::ErrorCode;
use plugin_api::runtime::PluginRuntime;
use std::time::Duration;

#[test]
fn plugin_runtime_runs_tasks_and_refuses_work_after_shutdown() {
    let mut runtime = PluginRuntime::new("test.plugin", 1).expect("runtime");
    let handle = runtime.handle().expect("handle while running");
    let (tx, rx) = std::sync::mpsc::channel();
    handle.spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let _ = tx.send(thread_name());
    });
    let worker = rx.recv_timeout(Duration::from_secs(5)).expect("task ran");
    assert_eq!(worker.as_deref(), Some("plugin-test.plugin"));
    let bound = runtime
        .block_on(async {
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map(|l| l.local_addr())
        })
        .expect("block_on while running");
    assert!(bound.is_ok());
    runtime.shutdown(Duration::from_secs(1));
    assert!(runtime.handle().is_none());
    let after = runtime.block_on(async { 1 }).unwrap_err();
    assert_eq!(after.code, ErrorCode::STATE);
}

fn thread_name() -> Option<String> {
    std::thread::current().name().map(str::to_string)
}
