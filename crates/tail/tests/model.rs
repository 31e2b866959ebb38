//! Adversarial model test: random interleavings of writes, partial lines,
//! rename rotations (inside and outside the glob), copytruncate, truncation,
//! deletion, delete-and-create (the inode is often reused at once), symlink
//! swaps, consumer stalls, clean stops, crashes and reloads, against the real
//! file system and an in-memory model of what was written.
//!
//! Nothing waits for the tailer to catch up before acting: every action
//! happens while it may be behind, stalled, or stopped. At the end the
//! consumer takes everything and the model checks:
//! - every required line arrived (a line is optional only where no agent
//!   could have read it: truncated or deleted before it was read, or in a
//!   file that came and went while hydra was stopped and no positions file
//!   named);
//! - nothing arrived that was not written (no partial line as a line);
//! - no line twice within one run of a tailer, and across runs only lines
//!   received by a run that crashed;
//! - each file's lines in order.
//!
//! Configurations cover the defaults (`read_from_head: false`, a positions
//! file) and the others. 256 cases in all; `HYDRA_SOAK=1` runs 10,000. A
//! failing case prints its actions; proptest saves it in
//! `model.proptest-regressions` and replays it first.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a panic is how a test fails

mod common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fast;
use hydra_tail::{Handoff, Source, TailConfig, Tailer};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    /// `app.log` itself.
    Literal,
    /// `*.log`: `app-N.log` is inside, `app.log.N` outside.
    StarLog,
    /// `app.log*`: `app.log.N` is inside.
    Prefix,
}

#[derive(Debug, Clone, Copy)]
struct Setup {
    pattern: Pattern,
    read_from_head: bool,
    positions: bool,
    /// `app.log` is a symlink to the file written; rotations swap it.
    symlink: bool,
}

#[derive(Debug, Clone)]
enum Action {
    /// Append whole lines.
    Write(u8),
    /// Append a line in two writes with a pause between them.
    Partial,
    /// Rename to `app.log.N`, create a new `app.log`.
    Rotate,
    /// Rename to `app-N.log`, create a new `app.log`.
    RotateDash,
    /// Copy to `app.N.old` (outside every pattern), then empty the file.
    CopyTruncate,
    /// Empty the file in place.
    Truncate,
    /// Remove the file; the next write creates it.
    Delete,
    /// Remove the file and create it again at once (inode reuse).
    DeleteCreate,
    /// The consumer stops taking batches.
    Stall,
    /// It takes them again.
    Unstall,
    /// Stop hydra cleanly; the next actions happen while it is down.
    Stop,
    /// Kill hydra: no final save; the next actions happen while it is down.
    Crash,
    /// Start hydra again after a stop or crash.
    Start,
    /// Hand over to a new tailer, as a SIGHUP does.
    Reload,
    /// Let time pass (× 5 ms).
    Pause(u8),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (1u8..20).prop_map(Action::Write),
        1 => Just(Action::Partial),
        2 => Just(Action::Rotate),
        1 => Just(Action::RotateDash),
        2 => Just(Action::CopyTruncate),
        1 => Just(Action::Truncate),
        1 => Just(Action::Delete),
        2 => Just(Action::DeleteCreate),
        2 => Just(Action::Stall),
        1 => Just(Action::Unstall),
        2 => Just(Action::Stop),
        2 => Just(Action::Crash),
        3 => Just(Action::Start),
        2 => Just(Action::Reload),
        2 => (0u8..10).prop_map(Action::Pause),
    ]
}

fn setup(pattern: Pattern) -> impl Strategy<Value = Setup> {
    // The defaults operators run (from the end, with positions) weigh most.
    (
        prop_oneof![3 => Just(false), 1 => Just(true)],
        prop_oneof![3 => Just(true), 1 => Just(false)],
        prop_oneof![3 => Just(false), 1 => Just(true)],
    )
        .prop_map(move |(read_from_head, positions, symlink)| Setup {
            pattern,
            read_from_head,
            positions,
            symlink,
        })
}

/// One file's contents as the model knows them: a generation starts when a
/// file is created or emptied.
#[derive(Debug, Default)]
struct Generation {
    lines: Vec<u64>,
    /// No agent could have read all of it: its unread lines may be lost.
    optional: bool,
    /// Its inode, to ask the tailer and the positions file about it.
    ino: u64,
    /// Its unread rest is in this file, outside every pattern (renamed
    /// away, a symlink's old target, or a copytruncate's copy): after a
    /// crash only a positions file that names that file leads to it.
    away: Option<u64>,
    /// A tailer ran while it existed. One made and changed while hydra was
    /// down is unknown to every positions file, even one that names its
    /// inode: that inode was another file's, freed and reused.
    seen_up: bool,
}

/// One run of a tailer with its consumer.
struct Run {
    tailer: Option<Tailer>,
    consumer: Option<std::thread::JoinHandle<()>>,
    stalled: Arc<AtomicBool>,
    /// Lines received, with the file generation (`FileId`) they came from.
    got: Arc<Mutex<Vec<(String, u64)>>>,
}

impl Run {
    fn start(config: TailConfig, handoff: Option<Handoff>, stalled: bool) -> Run {
        let mut handoff = handoff;
        let (tailer, mut rx) = Tailer::start_after(config, &mut handoff).expect("tailer starts");
        let committer = tailer.committer();
        let stall = Arc::new(AtomicBool::new(stalled));
        let got: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
        let (s, g) = (stall.clone(), got.clone());
        let consumer = std::thread::spawn(move || {
            loop {
                // A stalled consumer takes nothing: the channel fills and
                // reading waits (bounded: a stall is lifted before a stop).
                while s.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(2));
                }
                let Some(batch) = rx.blocking_recv() else {
                    return;
                };
                {
                    let mut g = g.lock().unwrap();
                    for line in batch.lines.iter() {
                        let text = String::from_utf8_lossy(line).into_owned();
                        g.push((format!("{:?}", batch.file), number(&text)));
                    }
                }
                committer.commit(batch.file, batch.end_offset);
            }
        });
        Run {
            tailer: Some(tailer),
            consumer: Some(consumer),
            stalled: stall,
            got,
        }
    }

    /// Stops reading and lets the consumer take what was read, then saves
    /// (clean), hands over (reload), or writes nothing more (crash).
    fn end(mut self, how: End) -> (Vec<(String, u64)>, Option<Handoff>) {
        self.stalled.store(false, Ordering::Release);
        let mut tailer = self.tailer.take().unwrap();
        let handoff = match how {
            End::Crash => {
                tailer.crash();
                self.consumer.take().unwrap().join().unwrap();
                None
            }
            End::Clean | End::Reload => {
                tailer.stop();
                self.consumer.take().unwrap().join().unwrap();
                let h = tailer.handoff();
                (how == End::Reload).then_some(h)
            }
        };
        (std::mem::take(&mut *self.got.lock().unwrap()), handoff)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Clean,
    Crash,
    Reload,
}

/// `line N` → N; anything else (a partial line, garbage) → `u64::MAX`.
fn number(text: &str) -> u64 {
    text.strip_prefix("line ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

struct World {
    dir: tempfile::TempDir,
    setup: Setup,
    next_line: u64,
    next_name: usize,
    gens: Vec<Generation>,
    /// The generation written through `app.log`, if the file exists.
    live: Option<usize>,
    /// For a symlink: the target written now.
    target: Option<PathBuf>,
    run: Option<Run>,
    /// Stopped by a crash (not a clean stop) and not started since.
    crashed: bool,
    /// The consumer is stalled (kept across a stop).
    stalled: bool,
    /// Finished runs: their lines, and whether the run crashed.
    runs: Vec<(Vec<(String, u64)>, bool)>,
    /// Truncations of the live file since it was created or the tailer
    /// started, whichever came last.
    truncations: u64,
}

impl World {
    fn new(setup: Setup) -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut w = World {
            dir,
            setup,
            next_line: 0,
            next_name: 0,
            gens: Vec::new(),
            live: None,
            target: None,
            run: None,
            crashed: false,
            stalled: false,
            runs: Vec::new(),
            truncations: 0,
        };
        w.create_live();
        w.start(None);
        // A first run from the end reads nothing before it opened the
        // file: let it open the (empty) file before anything is written.
        w.wait_tracked();
        w
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("app.log")
    }

    fn name(&mut self, f: impl FnOnce(usize) -> String) -> PathBuf {
        self.next_name += 1;
        self.dir.path().join(f(self.next_name))
    }

    fn config(&self) -> TailConfig {
        let pattern = match self.setup.pattern {
            Pattern::Literal => "app.log",
            Pattern::StarLog => "*.log",
            Pattern::Prefix => "app.log*",
        };
        let path = self.dir.path().join(pattern);
        TailConfig {
            positions: self
                .setup
                .positions
                .then(|| self.dir.path().join("pos.json")),
            ..fast(vec![
                Source::new(path.to_str().unwrap()).read_from_head(self.setup.read_from_head),
            ])
        }
    }

    fn up(&self) -> bool {
        self.run.is_some()
    }

    fn start(&mut self, handoff: Option<Handoff>) {
        self.run = Some(Run::start(self.config(), handoff, self.stalled));
        for g in &mut self.gens {
            g.seen_up = true;
        }
        self.crashed = false;
        // A start reads positions, finds truncated files and their copies.
        self.truncations = 0;
    }

    /// Waits (bounded) until the tailer follows the live file.
    fn wait_tracked(&self) {
        let Some(g) = self.live else { return };
        let ino = self.gens[g].ino;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.tailer_has(ino) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn tailer_has(&self, ino: u64) -> bool {
        self.tailer_knows(|s| s.inode == ino)
    }

    /// Whether the running tailer reports a file for which `f` holds.
    fn tailer_knows(&self, f: impl Fn(&hydra_tail::FileStats) -> bool) -> bool {
        self.run
            .as_ref()
            .is_some_and(|r| r.tailer.as_ref().unwrap().stats().iter().any(f))
    }

    /// A new empty file at `app.log` (through the symlink: a new target).
    fn create_live(&mut self) {
        let file = if self.setup.symlink {
            let target = self.name(|n| format!("t-{n}.txt"));
            fs::write(&target, "").unwrap();
            let tmp = self.dir.path().join("link.tmp");
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&target, &tmp).unwrap();
            fs::rename(&tmp, self.log()).unwrap();
            self.target = Some(target.clone());
            target
        } else {
            fs::write(self.log(), "").unwrap();
            self.log()
        };
        let ino = fs::metadata(&file).unwrap().ino();
        self.gens.push(Generation {
            ino,
            seen_up: self.up(),
            ..Default::default()
        });
        self.live = Some(self.gens.len() - 1);
        self.truncations = 0;
    }

    fn live_file(&self) -> PathBuf {
        self.target.clone().unwrap_or_else(|| self.log())
    }

    fn append(&mut self, text: &str) {
        if self.live.is_none() {
            self.create_live();
        }
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(self.live_file())
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn write_lines(&mut self, n: u8) {
        if self.live.is_none() {
            self.create_live();
        }
        let mut text = String::new();
        let g = self.live.unwrap();
        for _ in 0..n {
            text.push_str(&format!("line {}\n", self.next_line));
            self.gens[g].lines.push(self.next_line);
            self.next_line += 1;
        }
        self.append(&text);
    }

    /// The saved position of inode `ino`, if the positions file names it.
    fn saved(&self, ino: u64) -> Option<serde_json::Value> {
        if !self.setup.positions {
            return None;
        }
        let text = fs::read_to_string(self.dir.path().join("pos.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["files"]
            .as_array()?
            .iter()
            .find(|p| p["ino"] == ino)
            .cloned()
    }

    /// The live generation left every followed path while hydra was down:
    /// only a positions file that names it lets the next run find it.
    fn left_while_down(&mut self, g: usize) {
        if !self.up() && (!self.gens[g].seen_up || self.saved(self.gens[g].ino).is_none()) {
            self.gens[g].optional = true;
        }
    }

    /// Whether the copy a copytruncate is about to make can be found as
    /// the copy of what the tailer read: it must know the contents it
    /// copies by a whole line at least (a part of one, `lin`, is also how
    /// the next contents start), and must have seen every earlier
    /// truncation of the file.
    fn copy_findable(&self, g: usize) -> bool {
        let ino = self.gens[g].ino;
        if self.up() {
            // An earlier truncation the tailer may not have seen yet: the
            // lines since are only in a copy it has no reason to look for.
            self.tailer_knows(|s| {
                s.inode == ino && s.truncations >= self.truncations && s.position > 0
            })
        } else {
            // While down, a start will look for one copy only.
            self.truncations == 0
                && self.gens[g].seen_up
                && self
                    .saved(ino)
                    .is_some_and(|p| p["offset"].as_u64().unwrap_or(0) > 0)
        }
    }

    fn inside(&self, name: &Path) -> bool {
        let n = name.file_name().unwrap().to_str().unwrap();
        match self.setup.pattern {
            Pattern::Literal => false,
            Pattern::StarLog => n.ends_with(".log"),
            Pattern::Prefix => n.starts_with("app.log"),
        }
    }

    fn rotate(&mut self, to: &Path) {
        let Some(g) = self.live else {
            self.create_live();
            return;
        };
        if self.setup.symlink {
            // The old target stays where it is, outside every pattern, and
            // nothing says where it went: only a tailer that opened it, or
            // a positions file that names it, still finds it.
            if self.up() && !self.tailer_has(self.gens[g].ino) {
                self.gens[g].optional = true;
            }
            self.left_while_down(g);
            self.gens[g].away = Some(self.gens[g].ino);
            self.create_live();
            return;
        }
        if !self.inside(to) {
            self.left_while_down(g);
            self.gens[g].away = Some(self.gens[g].ino);
        }
        fs::rename(self.log(), to).unwrap();
        self.create_live();
    }

    /// Empties the live file; `copy` first copies it beside (outside every
    /// pattern).
    fn truncate(&mut self, copy: bool) {
        let Some(g) = self.live else { return };
        if self.setup.symlink && copy {
            return self.rotate(Path::new(""));
        }
        if copy {
            if !self.copy_findable(g) {
                self.gens[g].optional = true;
            }
            let to = self.name(|n| format!("app.{n}.old"));
            fs::copy(self.live_file(), &to).unwrap();
            self.gens[g].away = Some(fs::metadata(&to).unwrap().ino());
        } else {
            // Lines not read yet are gone: no agent reads them.
            self.gens[g].optional = true;
        }
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.live_file())
            .unwrap();
        self.truncations += 1;
        let ino = self.gens[g].ino;
        self.gens.push(Generation {
            ino,
            ..Default::default()
        });
        self.live = Some(self.gens.len() - 1);
    }

    fn delete(&mut self) {
        let Some(g) = self.live.take() else { return };
        // Not read yet, perhaps never opened: may be lost.
        self.gens[g].optional = true;
        let _ = fs::remove_file(self.live_file());
        if self.setup.symlink {
            let _ = fs::remove_file(self.log());
            self.target = None;
        }
    }

    fn stop(&mut self, how: End) {
        let Some(run) = self.run.take() else { return };
        let (got, handoff) = run.end(how);
        self.runs.push((got, how == End::Crash));
        self.crashed = how == End::Crash;
        if self.crashed {
            for g in 0..self.gens.len() {
                if let Some(ino) = self.gens[g].away
                    && (!self.gens[g].seen_up || self.saved(ino).is_none())
                {
                    self.gens[g].optional = true;
                }
            }
        }
        if how == End::Reload {
            self.start(handoff);
        }
    }

    fn apply(&mut self, a: &Action) {
        // Without a positions file a stop forgets everything, by design: a
        // stop there is a reload.
        let a = match a {
            Action::Stop | Action::Crash if !self.setup.positions => &Action::Reload,
            other => other,
        };
        match a {
            Action::Write(n) => self.write_lines(*n),
            Action::Partial => {
                if self.live.is_none() {
                    self.create_live();
                }
                let n = self.next_line;
                self.next_line += 1;
                let g = self.live.unwrap();
                self.append("lin");
                std::thread::sleep(Duration::from_millis(15));
                self.append(&format!("e {n}\n"));
                self.gens[g].lines.push(n);
            }
            Action::Rotate => {
                let to = self.name(|n| format!("app.log.{n}"));
                self.rotate(&to);
            }
            Action::RotateDash => {
                let to = self.name(|n| format!("app-{n}.log"));
                self.rotate(&to);
            }
            Action::CopyTruncate => self.truncate(true),
            Action::Truncate => self.truncate(false),
            Action::Delete => self.delete(),
            Action::DeleteCreate => {
                self.delete();
                self.create_live();
            }
            Action::Stall => {
                self.stalled = true;
                if let Some(r) = &self.run {
                    r.stalled.store(true, Ordering::Release);
                }
            }
            Action::Unstall => {
                self.stalled = false;
                if let Some(r) = &self.run {
                    r.stalled.store(false, Ordering::Release);
                }
            }
            Action::Stop => self.stop(End::Clean),
            Action::Crash => self.stop(End::Crash),
            Action::Start => {
                if !self.up() {
                    self.start(None);
                }
            }
            Action::Reload => {
                if self.up() {
                    self.stop(End::Reload);
                } else {
                    self.start(None);
                }
            }
            Action::Pause(n) => std::thread::sleep(Duration::from_millis(u64::from(*n) * 5)),
        }
    }

    /// Unstalls, starts if stopped, waits (bounded) for every required
    /// line, stops cleanly and checks the invariants.
    fn finish(mut self) -> Result<(), String> {
        self.stalled = false;
        if let Some(r) = &self.run {
            r.stalled.store(false, Ordering::Release);
        }
        if !self.up() {
            self.start(None);
        }
        let required: HashSet<u64> = self
            .gens
            .iter()
            .filter(|g| !g.optional)
            .flat_map(|g| g.lines.iter().copied())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut have: HashSet<u64> = self
                .runs
                .iter()
                .flat_map(|(r, _)| r.iter().map(|(_, n)| *n))
                .collect();
            have.extend(
                self.run
                    .as_ref()
                    .unwrap()
                    .got
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(_, n)| *n),
            );
            if required.is_subset(&have) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Whatever should not come has a moment to come.
        std::thread::sleep(Duration::from_millis(30));
        self.stop(End::Clean);
        self.check(&required)
    }

    fn check(&self, required: &HashSet<u64>) -> Result<(), String> {
        let written: HashMap<u64, usize> = self
            .gens
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.lines.iter().map(move |n| (*n, i)))
            .collect();
        let mut seen: HashMap<u64, (usize, usize)> = HashMap::new(); // n -> (count, in crashed runs)
        for (i, (lines, crashed)) in self.runs.iter().enumerate() {
            let mut in_run = HashSet::new();
            let mut last: HashMap<&str, u64> = HashMap::new();
            for (file, n) in lines {
                if !written.contains_key(n) {
                    return Err(format!("run {i}: a line that was never written: {n}"));
                }
                if !in_run.insert(*n) {
                    return Err(format!("run {i}: line {n} twice in one run"));
                }
                if let Some(prev) = last.insert(file, *n)
                    && *n <= prev
                {
                    return Err(format!("run {i}: {file}: line {n} after line {prev}"));
                }
                let e = seen.entry(*n).or_default();
                e.0 += 1;
                e.1 += usize::from(*crashed);
            }
        }
        for (n, (count, crashed)) in &seen {
            // Every copy but one must come from a run that crashed.
            if count - 1 > *crashed {
                return Err(format!(
                    "line {n} arrived {count} times, {crashed} of them in runs that crashed"
                ));
            }
        }
        let mut lost: Vec<u64> = required
            .iter()
            .filter(|n| !seen.contains_key(n))
            .copied()
            .collect();
        lost.sort_unstable();
        if !lost.is_empty() {
            return Err(format!(
                "{} required lines lost, first {:?} (generation {})",
                lost.len(),
                &lost[..lost.len().min(5)],
                written[&lost[0]],
            ));
        }
        Ok(())
    }
}

fn run_case(setup: Setup, actions: &[Action]) -> Result<(), TestCaseError> {
    let mut world = World::new(setup);
    for a in actions {
        world.apply(a);
    }
    world.finish().map_err(TestCaseError::fail)
}

fn cases() -> u32 {
    // Four tests share the total.
    if std::env::var_os("HYDRA_SOAK").is_some() {
        2500
    } else {
        64
    }
}

fn actions() -> impl Strategy<Value = Vec<Action>> {
    proptest::collection::vec(action(), 1..24)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Each step of shrinking replays a case against the file system:
        // bounded, so a failure is reported in seconds, not minutes.
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn literal_path(setup in setup(Pattern::Literal), actions in actions()) {
        run_case(setup, &actions)?;
    }

    #[test]
    fn star_glob(setup in setup(Pattern::StarLog), actions in actions()) {
        run_case(setup, &actions)?;
    }

    #[test]
    fn prefix_glob(setup in setup(Pattern::Prefix), actions in actions()) {
        run_case(setup, &actions)?;
    }

    #[test]
    fn defaults_only(
        pattern in prop_oneof![Just(Pattern::Literal), Just(Pattern::StarLog), Just(Pattern::Prefix)],
        actions in actions(),
    ) {
        run_case(Setup { pattern, read_from_head: false, positions: true, symlink: false }, &actions)?;
    }
}

/// The case proptest saved when the polite model test failed under load,
/// replayed with the defaults operators run and with `read_from_head`.
#[test]
fn regression_rotate_delete_truncate_storm() {
    use Action::*;
    let actions = [
        Rotate,
        Delete,
        Rotate,
        Write(7),
        Truncate,
        Write(8),
        Write(10),
        Write(7),
        Rotate,
        Delete,
        Write(7),
        Truncate,
    ];
    for read_from_head in [false, true] {
        for pattern in [Pattern::Literal, Pattern::StarLog, Pattern::Prefix] {
            let setup = Setup {
                pattern,
                read_from_head,
                positions: true,
                symlink: false,
            };
            run_case(setup, &actions).unwrap();
        }
    }
}

/// Replays a case the model found, several times: the races it caught
/// do not happen on every run.
fn replay(setup: Setup, actions: &[Action]) {
    for _ in 0..5 {
        run_case(setup, actions).unwrap();
    }
}

const DEFAULTS: Setup = Setup {
    pattern: Pattern::Literal,
    read_from_head: false,
    positions: true,
    symlink: false,
};

/// A tailer stopped before its thread first ran knew no file; a start now
/// returns only once every file present is open.
#[test]
fn regression_a_stop_right_after_a_start_keeps_every_file() {
    use Action::*;
    replay(
        DEFAULTS,
        &[
            RotateDash,
            Stall,
            Partial,
            Reload,
            Start,
            Write(8),
            Reload,
            Reload,
            Crash,
            Start,
            Rotate,
            DeleteCreate,
            Unstall,
        ],
    );
}

/// A file created and rotated away just before a stop: the stop takes in
/// the file events still queued in the kernel before it saves.
#[test]
fn regression_a_file_rotated_away_just_before_a_stop_is_saved() {
    use Action::*;
    replay(
        DEFAULTS,
        &[
            Write(17),
            Rotate,
            Write(14),
            Rotate,
            CopyTruncate,
            Write(4),
            DeleteCreate,
            Start,
            Reload,
            CopyTruncate,
            RotateDash,
            Stop,
            Reload,
            Write(8),
            Stall,
            Stall,
            Reload,
            Crash,
        ],
    );
}

/// Copytruncated, then handed over by a reload (or a restart), then
/// written: the copy beside the file holds only what was read before the
/// truncation. The tailer that took over knew none of the file's new first
/// bytes, took that copy for one made since its first look, and read it
/// again. The first bytes of the contents a truncation replaced now go
/// with the file's position.
#[test]
fn regression_the_copy_of_contents_read_before_a_handover_is_not_read_again() {
    use Action::*;
    for positions in [false, true] {
        let setup = Setup {
            pattern: Pattern::StarLog,
            positions,
            ..DEFAULTS
        };
        replay(setup, &[Write(18), CopyTruncate, Reload, Write(1)]);
        replay(setup, &[Write(1), Reload, CopyTruncate, Reload, Write(1)]);
        replay(
            setup,
            &[Write(1), Reload, CopyTruncate, Stop, Start, Write(1)],
        );
    }
}

/// Emptied and then renamed away: no path check sees the truncation, so
/// the handle's size is checked.
#[test]
fn regression_a_file_emptied_then_rotated_away_is_read_again() {
    use Action::*;
    replay(
        DEFAULTS,
        &[Write(1), Reload, Pause(1), CopyTruncate, Write(1), Rotate],
    );
}

/// Copytruncated and deleted before the next tailer looked: the handed-over
/// file changed, and its copy holds the rest.
#[test]
fn regression_the_copy_of_a_handed_over_file_is_drained() {
    use Action::*;
    replay(
        Setup {
            positions: false,
            ..DEFAULTS
        },
        &[
            Truncate,
            Write(18),
            Write(7),
            Crash,
            CopyTruncate,
            DeleteCreate,
            Start,
            Crash,
            Delete,
            Start,
            Write(13),
            Start,
            Start,
            Write(18),
            Rotate,
            Reload,
            Reload,
            Start,
            DeleteCreate,
        ],
    );
}

/// Killed before the first periodic save: the positions file is written
/// at start, so the next start is not taken for a first run.
#[test]
fn regression_a_crash_before_the_first_save_is_not_a_first_run() {
    use Action::*;
    replay(
        Setup {
            pattern: Pattern::StarLog,
            ..DEFAULTS
        },
        &[
            Write(5),
            RotateDash,
            Rotate,
            Rotate,
            Crash,
            Rotate,
            RotateDash,
            Write(15),
            Rotate,
            CopyTruncate,
            Start,
            Partial,
            Pause(0),
            DeleteCreate,
            RotateDash,
            Truncate,
            CopyTruncate,
            Write(6),
            Write(4),
        ],
    );
}

/// Copytruncated, then deleted, then a clean stop: the stop checks the
/// files it drains and finds the copy before it saves.
#[test]
fn regression_copytruncate_then_delete_before_a_stop() {
    use Action::*;
    replay(
        DEFAULTS,
        &[
            Stall,
            Unstall,
            Pause(2),
            CopyTruncate,
            Stall,
            Start,
            DeleteCreate,
            Stop,
            Write(16),
            Write(11),
            Stop,
            Start,
            CopyTruncate,
            DeleteCreate,
            Stop,
            Pause(0),
            Stop,
        ],
    );
}

/// A file last seen empty has a fingerprint of no bytes: it matches every
/// file, so it names no copy (the positions file was once read as one).
#[test]
fn regression_a_fingerprint_of_nothing_is_no_copy() {
    use Action::*;
    for pattern in [Pattern::Literal, Pattern::StarLog, Pattern::Prefix] {
        replay(
            Setup {
                pattern,
                ..DEFAULTS
            },
            &[Delete, Write(1), Stop],
        );
        replay(
            Setup {
                pattern,
                ..DEFAULTS
            },
            &[CopyTruncate, Start, Delete, Stop],
        );
    }
}

/// Created and rotated away within one gathering window under a glob: the
/// rename is caught though the path was not followed yet.
#[test]
fn regression_created_and_rotated_within_one_gathering_window() {
    use Action::*;
    replay(
        Setup {
            pattern: Pattern::StarLog,
            ..DEFAULTS
        },
        &[
            CopyTruncate,
            Start,
            Delete,
            Reload,
            Pause(6),
            Stall,
            Reload,
            Pause(2),
            Partial,
            Write(11),
            Write(16),
            Rotate,
            Start,
            Write(8),
        ],
    );
}

/// A file deleted while hydra ran; once hydra stops, its inode is free,
/// and a copy made while it is down gets it. The deleted file's saved
/// position must not take the copy for itself: the birth time tells them
/// apart.
#[test]
fn regression_a_reused_inode_is_not_the_saved_file() {
    use Action::*;
    for _ in 0..4 {
        replay(DEFAULTS, &[Delete, Write(1), Pause(5), Stop, CopyTruncate]);
    }
}

/// A fingerprint of part of a first line (`lin`) is how the next contents
/// start too: it names no copy.
#[test]
fn regression_a_partial_first_line_names_no_copy() {
    use Action::*;
    replay(
        DEFAULTS,
        &[
            Pause(3),
            Write(1),
            Pause(2),
            Pause(7),
            CopyTruncate,
            Partial,
            Truncate,
        ],
    );
}

/// The saved position of a file deleted while hydra was down, whose inode
/// a new file got, still leads to the deleted file's copy.
#[test]
fn regression_a_reused_inode_leaves_the_old_position_its_copy() {
    use Action::*;
    let actions = [
        Reload,
        Write(2),
        Pause(6),
        Write(6),
        Pause(2),
        Partial,
        Stop,
        CopyTruncate,
        DeleteCreate,
        Write(13),
        Crash,
        Stall,
        Delete,
        Pause(5),
        DeleteCreate,
        Reload,
        Write(19),
        Reload,
        Reload,
        Rotate,
        Truncate,
        Partial,
    ];
    replay(DEFAULTS, &actions);
    replay(
        Setup {
            pattern: Pattern::Prefix,
            ..DEFAULTS
        },
        &actions,
    );
}

/// A file shrinks only by truncation: emptied and written past the read
/// offset before a reload's tailer looked, its new lines were read once as
/// the old contents' rest and once more when the truncation was seen.
#[test]
fn regression_a_file_that_shrank_is_truncated_even_past_the_offset() {
    use Action::*;
    let actions = [
        Start,
        Partial,
        Start,
        Stall,
        Write(17),
        Rotate,
        Crash,
        Write(17),
        Write(5),
        Write(16),
        Truncate,
        Write(6),
    ];
    for _ in 0..8 {
        replay(
            Setup {
                read_from_head: true,
                positions: false,
                ..DEFAULTS
            },
            &actions,
        );
    }
}

/// Emptied and written past the read offset between two reads of one
/// reading pass: the second read went on at the old offset in the new
/// contents (an empty line, then repeats). A size that changed while the
/// pass read is checked before reading on. Found by the soak; failed in
/// about 1 replay of 40 before the fix.
#[test]
fn regression_a_file_rewritten_between_two_reads_is_not_read_at_the_old_offset() {
    use Action::*;
    let actions = [
        Reload,
        Rotate,
        Reload,
        DeleteCreate,
        Partial,
        Pause(1),
        Stall,
        Start,
        Write(12),
        CopyTruncate,
        Write(8),
        Partial,
        Write(15),
        Pause(3),
        Pause(4),
        Delete,
        Write(7),
        Stop,
        Write(3),
    ];
    let setup = Setup {
        pattern: Pattern::StarLog,
        ..DEFAULTS
    };
    for _ in 0..60 {
        run_case(setup, &actions).unwrap();
    }
}
