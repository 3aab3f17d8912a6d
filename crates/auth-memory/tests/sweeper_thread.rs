//! The sweeper is a plain OS thread that ends with the store. Alone in its test binary, so no
//! other test's store starts or stops sweeper threads meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use auth_memory::{MemorySettings, MemoryStore};

/// Threads of this process named like the sweeper (Linux: `/proc/self/task/*/comm`).
fn sweepers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "auth-mem-sweep")
        .count()
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc")]
fn the_sweeper_thread_ends_when_the_last_clone_is_dropped() {
    assert_eq!(sweepers(), 0);
    // A long interval: the thread must end on the drop, not at its next tick.
    let store = MemoryStore::with_settings(&MemorySettings {
        sweep_interval: Duration::from_secs(3600),
        ..MemorySettings::default()
    })
    .unwrap();
    let clone = store.clone();
    // The thread names itself once it runs.
    wait_for(|| sweepers() == 1, "the sweeper thread to start");
    assert_eq!(sweepers(), 1, "one sweeper thread per store, not per clone");
    drop(store);
    assert_eq!(sweepers(), 1, "a live clone keeps the sweeper");
    drop(clone);
    wait_for(|| sweepers() == 0, "the sweeper to end with its store");
}

fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
