//! File events, read from the inotify descriptor on the reading thread
//! itself: no watcher thread to wake for every write, no channel between
//! the two. The same poll also waits for the next timer and for a stop.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{debug, warn};

const INOTIFY: Token = Token(0);
const WAKE: Token = Token(1);

/// What is watched in each directory: its entries' writes, creations,
/// removals and renames (the directory's own removal ends its watch).
fn mask() -> WatchMask {
    WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::ATTRIB
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
}

/// One file event: the path it names, or for a rename within the watched
/// directories, `[from, to]`.
pub(super) type Hint = Vec<PathBuf>;

/// The reading thread's wait: file events (when inotify is on and works),
/// timers and a stop request.
pub(crate) struct Watch {
    inotify: Option<Inotify>,
    poll: Poll,
    events: Events,
    dirs: HashMap<WatchDescriptor, (PathBuf, bool)>,
    by_path: HashMap<PathBuf, WatchDescriptor>,
    buf: Box<[u8]>,
    /// Events left unread by the last bounded take: the descriptor will not
    /// signal them again (mio waits for edges).
    backlog: bool,
    /// The kernel's queue overflowed: events were lost, every path must be
    /// looked at.
    overflowed: bool,
}

impl Watch {
    /// A wait with file events if `use_inotify` (falling back to timers
    /// alone when inotify cannot be had), and the handle that ends a wait
    /// early.
    pub(crate) fn new(use_inotify: bool) -> std::io::Result<(Watch, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let inotify = if use_inotify {
            match Inotify::init() {
                Ok(i) => {
                    let fd = i.as_raw_fd();
                    poll.registry()
                        .register(&mut SourceFd(&fd), INOTIFY, Interest::READABLE)?;
                    Some(i)
                }
                Err(e) => {
                    warn!(error = %e, "Cannot watch for file events; polling only.");
                    None
                }
            }
        } else {
            None
        };
        Ok((
            Watch {
                inotify,
                poll,
                events: Events::with_capacity(4),
                dirs: HashMap::new(),
                by_path: HashMap::new(),
                buf: vec![0u8; 64 << 10].into_boxed_slice(),
                backlog: false,
                overflowed: false,
            },
            waker,
        ))
    }

    /// Whether `dir` is watched now (a removed directory's watch ends).
    pub(super) fn is_watched(&self, dir: &Path) -> bool {
        self.by_path.contains_key(dir)
    }

    /// Watches `dir`, and with `recursive` every directory under it, now
    /// and as they are made.
    pub(super) fn watch(&mut self, dir: &Path, recursive: bool) -> std::io::Result<()> {
        if self.inotify.is_none() {
            return Ok(());
        }
        self.add(dir, recursive)?;
        if recursive {
            for entry in walkdir::WalkDir::new(dir)
                .min_depth(1)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_dir())
            {
                if let Err(e) = self.add(entry.path(), true) {
                    debug!(dir = %entry.path().display(), error = %e, "Cannot watch directory; polling it.");
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, dir: &Path, recursive: bool) -> std::io::Result<()> {
        let Some(inotify) = self.inotify.as_mut() else {
            return Ok(());
        };
        let wd = inotify.watches().add(dir, mask())?;
        // The kernel gives the same descriptor to a directory watched
        // twice (under two names): the last name is the one events get.
        if let Some((old, _)) = self.dirs.insert(wd.clone(), (dir.to_owned(), recursive))
            && old != dir
        {
            self.by_path.remove(&old);
        }
        self.by_path.insert(dir.to_owned(), wd);
        Ok(())
    }

    /// Stops watching `dir`.
    pub(super) fn unwatch(&mut self, dir: &Path) {
        if let (Some(inotify), Some(wd)) = (self.inotify.as_mut(), self.by_path.remove(dir)) {
            self.dirs.remove(&wd);
            let _ = inotify.watches().remove(wd);
        }
    }

    /// Waits up to `timeout` for file events or a wake. True when file
    /// events are there to take.
    pub(super) fn wait(&mut self, timeout: Duration) -> bool {
        if self.backlog || self.overflowed {
            return true;
        }
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            // EINTR: the loop comes back at once.
            if e.kind() != ErrorKind::Interrupted {
                warn!(error = %e, "Waiting for file events failed.");
                std::thread::sleep(timeout.min(Duration::from_millis(100)));
            }
            return false;
        }
        self.events.iter().any(|e| e.token() == INOTIFY)
    }

    /// Takes the events the kernel has queued, at most `max`: writes to a
    /// file into `written` (its path), every other event into `out`, in the
    /// order they happened. Returns false when events were lost (the
    /// kernel's queue overflowed): every path must be looked at.
    pub(super) fn take(
        &mut self,
        max: usize,
        out: &mut Vec<Hint>,
        written: &mut Vec<PathBuf>,
    ) -> bool {
        self.backlog = false;
        let complete = !std::mem::take(&mut self.overflowed);
        let Some(inotify) = self.inotify.as_mut() else {
            return complete;
        };
        let mut complete = complete;
        // Renames are paired by cookie: the two halves come one after the
        // other in one read.
        let mut moved_from: Vec<(u32, PathBuf)> = Vec::new();
        let mut new_dirs: Vec<(PathBuf, bool)> = Vec::new();
        let mut ignored: Vec<WatchDescriptor> = Vec::new();
        let mut taken = 0;
        loop {
            if taken >= max {
                self.backlog = true;
                break;
            }
            let events = match inotify.read_events(&mut self.buf) {
                Ok(events) => events,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!(error = %e, "Reading file events failed; looking at every path.");
                    complete = false;
                    break;
                }
            };
            let mut any = false;
            for ev in events {
                any = true;
                taken += 1;
                if ev.mask.contains(EventMask::Q_OVERFLOW) {
                    complete = false;
                    continue;
                }
                if ev.mask.contains(EventMask::IGNORED) {
                    ignored.push(ev.wd.clone());
                    continue;
                }
                let Some((dir, recursive)) = self.dirs.get(&ev.wd) else {
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
                    new_dirs.push((path.clone(), true));
                }
                if ev
                    .mask
                    .intersects(EventMask::MODIFY | EventMask::CLOSE_WRITE)
                {
                    // A write names the file its path held when written:
                    // a file that took the path since comes with events of
                    // its own (created, moved to).
                    written.push(path);
                } else if ev.mask.contains(EventMask::MOVED_FROM) {
                    moved_from.push((ev.cookie, path));
                } else if ev.mask.contains(EventMask::MOVED_TO) {
                    match moved_from.iter().position(|(c, _)| *c == ev.cookie) {
                        Some(i) => {
                            let (_, from) = moved_from.remove(i);
                            out.push(vec![from, path]);
                        }
                        None => out.push(vec![path]),
                    }
                } else {
                    out.push(vec![path]);
                }
            }
            if !any {
                break;
            }
        }
        // Moved out of the watched directories: gone from where it was.
        out.extend(moved_from.into_iter().map(|(_, p)| vec![p]));
        for wd in ignored {
            if let Some((dir, _)) = self.dirs.remove(&wd)
                && self.by_path.get(&dir) == Some(&wd)
            {
                self.by_path.remove(&dir);
            }
        }
        for (dir, recursive) in new_dirs {
            // Files made in it before its watch began are found by the
            // next look at the patterns.
            if let Err(e) = self.watch(&dir, recursive) {
                debug!(dir = %dir.display(), error = %e, "Cannot watch directory; polling it.");
            }
        }
        complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Every event taken within `secs`, until `done` says enough.
    fn gather(w: &mut Watch, secs: u64, done: impl Fn(&[Hint]) -> bool) -> Vec<Hint> {
        let until = Instant::now() + Duration::from_secs(secs);
        let mut all = Vec::new();
        let mut written = Vec::new();
        while !done(&all) && Instant::now() < until {
            if w.wait(Duration::from_millis(50)) {
                assert!(w.take(1024, &mut all, &mut written));
            }
        }
        all.extend(written.into_iter().map(|p| vec![p]));
        all
    }

    #[test]
    fn renames_come_paired_and_new_subdirectories_are_watched() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let (mut w, _) = Watch::new(true).unwrap();
        w.watch(&root, true).unwrap();
        std::fs::write(root.join("a.log"), b"1\n").unwrap();
        std::fs::rename(root.join("a.log"), root.join("a.log.1")).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        let pair = vec![root.join("a.log"), root.join("a.log.1")];
        let events = gather(&mut w, 5, |e| {
            e.contains(&pair) && w_has(e, &root.join("sub"))
        });
        assert!(events.contains(&pair), "{events:?}");
        // The directory made after the watch began is watched too.
        std::fs::write(root.join("sub/b.log"), b"2\n").unwrap();
        let deep = root.join("sub/b.log");
        let events = gather(&mut w, 5, |e| w_has(e, &deep));
        assert!(w_has(&events, &deep), "{events:?}");
    }

    fn w_has(events: &[Hint], path: &Path) -> bool {
        events.iter().any(|h| h.iter().any(|p| p == path))
    }

    #[test]
    fn a_removed_directory_is_no_longer_watched_and_a_wake_ends_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("logs");
        std::fs::create_dir(&sub).unwrap();
        let (mut w, wake) = Watch::new(true).unwrap();
        w.watch(&sub, false).unwrap();
        assert!(w.is_watched(&sub));
        std::fs::remove_dir(&sub).unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while w.is_watched(&sub) && Instant::now() < until {
            if w.wait(Duration::from_millis(50)) {
                w.take(1024, &mut Vec::new(), &mut Vec::new());
            }
        }
        assert!(!w.is_watched(&sub), "the removed directory's watch is kept");
        // A wake (a stop request) ends a long wait at once.
        let started = Instant::now();
        wake.wake().unwrap();
        assert!(!w.wait(Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_bounded_take_leaves_the_rest_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Watch::new(true).unwrap();
        w.watch(dir.path(), false).unwrap();
        for n in 0..50 {
            std::fs::write(dir.path().join(format!("f{n}")), b"x").unwrap();
        }
        let mut first = Vec::new();
        assert!(w.wait(Duration::from_secs(5)));
        w.take(1, &mut first, &mut Vec::new());
        // A take that stopped at its bound may leave events queued, which
        // the descriptor would not signal again: the next wait returns at
        // once.
        let started = Instant::now();
        assert!(w.wait(Duration::from_secs(10)));
        assert!(started.elapsed() < Duration::from_secs(5));
        let mut rest = Vec::new();
        w.take(100_000, &mut rest, &mut Vec::new());
        let names: std::collections::HashSet<_> = first.iter().chain(&rest).flatten().collect();
        assert_eq!(names.len(), 50);
    }
}
