//! The site log's store on a disk that fills up: the file size limit of this test
//! process (`RLIMIT_FSIZE`, so writes past it fail with `EFBIG` as on a full disk)
//! makes writes fail part-way; every line is then either written or counted as lost,
//! the file is cut back to whole batches (a query reads every line written, and only
//! those), and the store goes on writing what fits. Alone in its binary: the limit is
//! the process's.

use mware_microservices::logstore::{Counters, LogLine, LogStore, Query};
use mware_microservices::LogConfig;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{signal, SigHandler, Signal};

const LIMIT: u64 = 200_000;

#[tokio::test]
async fn lines_past_a_full_disk_are_counted_lost_and_the_file_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: SIG_IGN installs no handler code; the write then fails with EFBIG.
    unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) }.unwrap();
    setrlimit(Resource::RLIMIT_FSIZE, LIMIT, LIMIT).unwrap();
    let store = LogStore::open(dir.path(), &LogConfig { file_mb: 8, files: 1 }, Counters::default()).unwrap();
    const N: u64 = 5_000;
    for i in 0..N {
        store.push(LogLine::new("i1", "p", "stdout", format!("line {i:06} {}", "y".repeat(90)))).await;
    }
    let c = store.counters.clone();
    while c.written.get() + c.lost.get() < N {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(c.lost.get() > 0, "the limit was reached");
    assert!(c.written.get() > 1_000, "what fitted was written: {}", c.written.get());
    let size = std::fs::metadata(dir.path().join("site.log")).unwrap().len();
    assert!(size <= LIMIT, "{size}");
    let all = store.query(&Query { limit: N as usize, ..Default::default() });
    assert_eq!(all.len() as u64, c.written.get(), "a query reads every line written, and only those");
    assert!(all.iter().all(|l| l.line.starts_with("line ") && l.line.len() == 102));
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
}
