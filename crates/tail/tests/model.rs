//! Model-based test: random sequences of writes, partial lines, rotations,
//! truncations, deletions and restarts against the real file system, checked
//! against an in-memory model of the lines that must arrive.
#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod common;

use std::fs;
use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use hydra_tail::TailConfig;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    /// Append whole lines.
    Write(u8),
    /// Append a line in two parts, pausing between them: the first part
    /// must not come out as a line.
    Partial,
    /// logrotate `create`: rename, then a new empty file.
    Rotate,
    /// Empty the file in place.
    Truncate,
    /// Remove the file; the next write creates it.
    Delete,
    /// Stop hydra cleanly and start it again from its positions.
    Restart,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (1u8..20).prop_map(Action::Write),
        1 => Just(Action::Partial),
        2 => Just(Action::Rotate),
        1 => Just(Action::Truncate),
        1 => Just(Action::Delete),
        1 => Just(Action::Restart),
    ]
}

struct World {
    dir: tempfile::TempDir,
    next: usize,
    rotations: usize,
    /// Every line that must have arrived, in order.
    expected: Vec<String>,
    /// Lines that arrived under earlier tailers.
    earlier: Vec<String>,
    collector: Option<Collector>,
}

impl World {
    fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("app.log")
    }

    fn config(&self) -> TailConfig {
        TailConfig {
            positions: Some(self.dir.path().join("pos.json")),
            ..fast(vec![src(&self.log())])
        }
    }

    fn received(&self) -> Vec<String> {
        let mut all = self.earlier.clone();
        all.extend(self.collector.as_ref().unwrap().texts());
        all
    }

    /// Waits until everything expected so far arrived, then checks it came
    /// exactly once and in order.
    fn sync(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.received().len() < self.expected.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_lines(&self.received(), &self.expected);
    }

    fn write_line(&mut self, f: &mut fs::File) {
        let line = format!("line {}", self.next);
        self.next += 1;
        writeln!(f, "{line}").unwrap();
        self.expected.push(line);
    }

    fn apply(&mut self, a: &Action) {
        let open = |p: &std::path::Path| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap()
        };
        match a {
            Action::Write(n) => {
                let mut f = open(&self.log());
                for _ in 0..*n {
                    self.write_line(&mut f);
                }
            }
            Action::Partial => {
                let mut f = open(&self.log());
                let line = format!("line {}", self.next);
                self.next += 1;
                let (head, tail) = line.split_at(3);
                f.write_all(head.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(60));
                assert_lines(&self.received(), &self.expected);
                writeln!(f, "{tail}").unwrap();
                self.expected.push(line);
            }
            Action::Rotate => {
                self.sync();
                self.rotations += 1;
                if self.log().exists() {
                    fs::rename(
                        self.log(),
                        self.dir.path().join(format!("app.log.{}", self.rotations)),
                    )
                    .unwrap();
                }
                open(&self.log());
            }
            Action::Truncate => {
                self.sync();
                if self.log().exists() {
                    fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(self.log())
                        .unwrap();
                }
            }
            Action::Delete => {
                self.sync();
                let _ = fs::remove_file(self.log());
            }
            Action::Restart => {
                self.sync();
                let c = self.collector.take().unwrap();
                self.earlier.extend(c.stop());
                self.collector = Some(Collector::start(self.config()));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn every_line_arrives_once_in_order(actions in proptest::collection::vec(action(), 1..14)) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("app.log"), "").unwrap();
        let mut world = World { dir, next: 0, rotations: 0, expected: vec![], earlier: vec![], collector: None };
        world.collector = Some(Collector::start(world.config()));
        // Let the tailer open the file before the first action.
        world.collector.as_ref().unwrap().wait_stats(|s| s.len() == 1);
        for a in &actions {
            world.apply(a);
        }
        world.sync();
    }
}
