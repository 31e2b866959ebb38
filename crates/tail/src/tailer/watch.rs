//! File events: a thread of its own reads the inotify descriptor, at most
//! once per [`PACE`], and hands each event to the reading thread's
//! callback.
//!
//! A thread that woke for every event (as a general-purpose watcher does)
//! woke for every write: a file written a thousand times a second cost a
//! thousand wakeups, most of hydra's CPU at a steady rate. Paced, one
//! wakeup takes every event queued meanwhile (the kernel merges a file's
//! repeated writes while they wait). The queue is still drained by a
//! thread that does nothing else, so it never fills while the reading
//! thread reads or waits on its consumer: a lost rename is a file never
//! read.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{debug, warn};

use super::live::lock;

/// The least time between two reads of the descriptor. The kernel queues
/// 16,384 events by default: at this pace that is 1.6 M events a second
/// before one is lost.
const PACE: Duration = Duration::from_millis(10);

/// Renames whose second half (`IN_MOVED_TO`) may still come.
const MOVES_KEPT: usize = 256;

const INOTIFY: Token = Token(0);
const STOP: Token = Token(1);

/// What is watched in each directory: its entries' writes, creations,
/// removals, renames and attribute changes (the directory's own removal
/// ends its watch).
fn mask() -> WatchMask {
    WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
}

/// One file event, as the reading thread needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FileEvent {
    /// A file's contents changed: written, or closed after writing.
    Written(PathBuf),
    /// Which file is at these paths may have changed: created, removed,
    /// its attributes changed, or renamed (`[from, to]` for a rename
    /// between watched directories, once both halves are in).
    Changed(Vec<PathBuf>),
    /// The kernel's queue overflowed: events were lost, every path must be
    /// looked at.
    Lost,
}

/// The watched directories, by descriptor and by path.
#[derive(Default)]
struct Dirs {
    by_wd: HashMap<WatchDescriptor, (PathBuf, bool)>,
    by_path: HashMap<PathBuf, WatchDescriptor>,
}

impl Dirs {
    fn add(&mut self, watches: &mut Watches, dir: &Path, recursive: bool) -> std::io::Result<()> {
        let wd = watches.add(dir, mask())?;
        // The kernel gives the same descriptor to a directory watched
        // twice (under two names): the last name is the one events get.
        if let Some((old, _)) = self.by_wd.insert(wd.clone(), (dir.to_owned(), recursive))
            && old != dir
        {
            self.by_path.remove(&old);
        }
        self.by_path.insert(dir.to_owned(), wd);
        Ok(())
    }

    /// `dir`, and with `recursive` every directory under it.
    fn add_tree(
        &mut self,
        watches: &mut Watches,
        dir: &Path,
        recursive: bool,
    ) -> std::io::Result<()> {
        self.add(watches, dir, recursive)?;
        if recursive {
            for entry in walkdir::WalkDir::new(dir)
                .min_depth(1)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_dir())
            {
                if let Err(e) = self.add(watches, entry.path(), true) {
                    debug!(dir = %entry.path().display(), error = %e, "Cannot watch directory; polling it.");
                }
            }
        }
        Ok(())
    }

    /// The kernel ended the watch `wd` (its directory was removed).
    fn ended(&mut self, wd: &WatchDescriptor) {
        if let Some((dir, _)) = self.by_wd.remove(wd)
            && self.by_path.get(&dir) == Some(wd)
        {
            self.by_path.remove(&dir);
        }
    }
}

/// Watches directories and reports their file events to a callback, from
/// a thread of its own; stopped when dropped.
pub(crate) struct Watcher {
    watches: Watches,
    dirs: Arc<Mutex<Dirs>>,
    stop: Arc<AtomicBool>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts the thread; `on` gets every event, in the order the kernel
    /// queued them.
    pub(super) fn start(on: impl FnMut(FileEvent) + Send + 'static) -> std::io::Result<Watcher> {
        let inotify = Inotify::init()?;
        let poll = Poll::new()?;
        poll.registry().register(
            &mut SourceFd(&inotify.as_raw_fd()),
            INOTIFY,
            Interest::READABLE,
        )?;
        let waker = Waker::new(poll.registry(), STOP)?;
        let watches = inotify.watches();
        let dirs = Arc::new(Mutex::new(Dirs::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            inotify,
            watches: watches.clone(),
            dirs: dirs.clone(),
            moved_from: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("hydra-inotify".into())
            .spawn({
                let stop = stop.clone();
                move || reader.run(poll, &stop, on)
            })?;
        Ok(Watcher {
            watches,
            dirs,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Whether `dir` is watched now (a removed directory's watch ends).
    pub(super) fn is_watched(&self, dir: &Path) -> bool {
        lock(&self.dirs).by_path.contains_key(dir)
    }

    /// Watches `dir`, and with `recursive` every directory under it, now
    /// and as they are made.
    pub(super) fn watch(&mut self, dir: &Path, recursive: bool) -> std::io::Result<()> {
        lock(&self.dirs).add_tree(&mut self.watches, dir, recursive)
    }

    /// Stops watching `dir`.
    pub(super) fn unwatch(&mut self, dir: &Path) {
        let mut dirs = lock(&self.dirs);
        if let Some(wd) = dirs.by_path.remove(dir) {
            dirs.by_wd.remove(&wd);
            let _ = self.watches.remove(wd);
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The watcher thread's side.
struct Reader {
    inotify: Inotify,
    watches: Watches,
    dirs: Arc<Mutex<Dirs>>,
    /// The first halves of renames, for the second to pair with.
    moved_from: Vec<(u32, PathBuf)>,
}

impl Reader {
    fn run(mut self, mut poll: Poll, stop: &AtomicBool, mut on: impl FnMut(FileEvent)) {
        let mut events = Events::with_capacity(4);
        let mut buf = vec![0u8; 64 << 10];
        while !stop.load(Ordering::Acquire) {
            if let Err(e) = poll.poll(&mut events, None) {
                if e.kind() != ErrorKind::Interrupted {
                    warn!(error = %e, "Waiting for file events failed.");
                    std::thread::sleep(Duration::from_millis(100));
                }
                continue;
            }
            if stop.load(Ordering::Acquire) {
                break;
            }
            // Events that come meanwhile are taken with this one.
            std::thread::sleep(PACE);
            // Edge-triggered: read until nothing is left, or the descriptor
            // would not signal again.
            self.drain(&mut buf, &mut on);
        }
    }

    fn drain(&mut self, buf: &mut [u8], on: &mut impl FnMut(FileEvent)) {
        loop {
            let mut new_dirs: Vec<PathBuf> = Vec::new();
            let events = match self.inotify.read_events(buf) {
                Ok(events) => events,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(error = %e, "Reading file events failed; looking at every path.");
                    on(FileEvent::Lost);
                    return;
                }
            };
            let mut any = false;
            {
                let mut dirs = lock(&self.dirs);
                for ev in events {
                    any = true;
                    if ev.mask.contains(EventMask::Q_OVERFLOW) {
                        on(FileEvent::Lost);
                        continue;
                    }
                    if ev.mask.contains(EventMask::IGNORED) {
                        dirs.ended(&ev.wd);
                        continue;
                    }
                    let Some((dir, recursive)) = dirs.by_wd.get(&ev.wd) else {
                        continue;
                    };
                    let path = match ev.name {
                        Some(name) => dir.join(name),
                        None => dir.clone(),
                    };
                    if *recursive
                        && ev.mask.contains(EventMask::ISDIR)
                        && ev.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
                    {
                        new_dirs.push(path.clone());
                    }
                    if ev
                        .mask
                        .intersects(EventMask::MODIFY | EventMask::CLOSE_WRITE)
                    {
                        on(FileEvent::Written(path));
                    } else if ev.mask.contains(EventMask::MOVED_FROM) {
                        // Out at once: the file left this path whether or
                        // not its new name is watched.
                        if self.moved_from.len() >= MOVES_KEPT {
                            self.moved_from.remove(0);
                        }
                        self.moved_from.push((ev.cookie, path.clone()));
                        on(FileEvent::Changed(vec![path]));
                    } else if ev.mask.contains(EventMask::MOVED_TO) {
                        match self.moved_from.iter().position(|(c, _)| *c == ev.cookie) {
                            Some(i) => {
                                let (_, from) = self.moved_from.remove(i);
                                on(FileEvent::Changed(vec![from, path]));
                            }
                            None => on(FileEvent::Changed(vec![path])),
                        }
                    } else {
                        on(FileEvent::Changed(vec![path]));
                    }
                }
                for dir in new_dirs {
                    // Files made in it before its watch began are found by
                    // the next look at the patterns.
                    if let Err(e) = dirs.add_tree(&mut self.watches, &dir, true) {
                        debug!(dir = %dir.display(), error = %e, "Cannot watch directory; polling it.");
                    }
                }
            }
            if !any {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    /// Every event within `secs`, until `done` says enough.
    fn gather(
        rx: &mpsc::Receiver<FileEvent>,
        secs: u64,
        done: impl Fn(&[FileEvent]) -> bool,
    ) -> Vec<FileEvent> {
        let until = Instant::now() + Duration::from_secs(secs);
        let mut all = Vec::new();
        while !done(&all) {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(e) => all.push(e),
                Err(_) => break,
            }
        }
        all
    }

    fn watcher() -> (Watcher, mpsc::Receiver<FileEvent>) {
        let (tx, rx) = mpsc::channel();
        let w = Watcher::start(move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        (w, rx)
    }

    #[test]
    fn writes_renames_and_new_subdirectories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let (mut w, rx) = watcher();
        w.watch(&root, true).unwrap();
        std::fs::write(root.join("a.log"), b"1\n").unwrap();
        std::fs::rename(root.join("a.log"), root.join("a.log.1")).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        let written = FileEvent::Written(root.join("a.log"));
        let pair = FileEvent::Changed(vec![root.join("a.log"), root.join("a.log.1")]);
        let sub = FileEvent::Changed(vec![root.join("sub")]);
        let events = gather(&rx, 5, |e| {
            e.contains(&written) && e.contains(&pair) && e.contains(&sub)
        });
        assert!(events.contains(&written), "{events:?}");
        assert!(events.contains(&pair), "{events:?}");
        // The write came before the rename, as it happened.
        let at = |x: &FileEvent| events.iter().position(|e| e == x).unwrap();
        assert!(at(&written) < at(&pair), "{events:?}");
        // The directory made after the watch began is watched too.
        let until = Instant::now() + Duration::from_secs(5);
        while !w.is_watched(&root.join("sub")) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::write(root.join("sub/b.log"), b"2\n").unwrap();
        let deep = FileEvent::Written(root.join("sub/b.log"));
        let events = gather(&rx, 5, |e| e.contains(&deep));
        assert!(events.contains(&deep), "{events:?}");
    }

    #[test]
    fn a_removed_directory_is_no_longer_watched() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("logs");
        std::fs::create_dir(&sub).unwrap();
        let (mut w, _rx) = watcher();
        w.watch(&sub, false).unwrap();
        assert!(w.is_watched(&sub));
        std::fs::remove_dir(&sub).unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while w.is_watched(&sub) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!w.is_watched(&sub), "the removed directory's watch is kept");
        // Made again, it can be watched again.
        std::fs::create_dir(&sub).unwrap();
        w.watch(&sub, false).unwrap();
        assert!(w.is_watched(&sub));
    }

    #[test]
    fn many_writes_wake_the_thread_a_few_times() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, rx) = watcher();
        w.watch(dir.path(), false).unwrap();
        let path = dir.path().join("a.log");
        let mut f = std::fs::File::create(&path).unwrap();
        for n in 0..2_000 {
            use std::io::Write;
            writeln!(f, "line {n}").unwrap();
        }
        let last = FileEvent::Written(path);
        let events = gather(&rx, 5, |e| e.contains(&last));
        assert!(events.contains(&last), "{events:?}");
        // Written in a burst: the kernel merged the queued writes, and the
        // paced reads took them together. One event per write would be
        // 2,000.
        std::thread::sleep(PACE * 5);
        let more: Vec<FileEvent> = rx.try_iter().collect();
        let writes = events
            .iter()
            .chain(&more)
            .filter(|e| matches!(e, FileEvent::Written(_)))
            .count();
        assert!(writes < 200, "{writes} write events for 2,000 writes");
    }

    #[test]
    fn dropping_the_watcher_ends_its_thread() {
        let (w, rx) = watcher();
        let started = Instant::now();
        drop(w);
        assert!(started.elapsed() < Duration::from_secs(5));
        // The callback (and its sender) went with the thread.
        assert!(rx.recv_timeout(Duration::from_secs(5)).is_err());
    }
}
