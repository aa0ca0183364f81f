//! The agent's process tree. The agent CLI runs its tool commands in process groups of
//! their own, so stopping the agent's group does not reach them; once the agent is gone they
//! are re-parented and can no longer be found from it. The tracker therefore notes every
//! descendant while the agent runs, and stops the ones still alive when the session ends
//! (dev servers and watchers left behind would hold the app's ports for the next session).
//! Reading and signalling processes is bench-proc's.

use std::collections::HashMap;
use std::time::Duration;

/// Notes the descendants of one process, and stops them at the end.
#[derive(Debug)]
pub struct Tracker {
    root: u32,
    /// pid → start time, so a recycled pid is never mistaken for a noted process.
    known: HashMap<u32, u64>,
}

impl Tracker {
    pub fn new(root: u32) -> Tracker {
        Tracker {
            root,
            known: HashMap::new(),
        }
    }

    /// Notes the root's current descendants.
    pub fn scan(&mut self) {
        for pid in bench_proc::descendants(self.root) {
            if let Some(stat) = bench_proc::stat(pid) {
                self.known.entry(pid).or_insert(stat.start_ticks);
            }
        }
    }

    /// Noted processes that still run (same pid, same start time, not a zombie).
    pub fn alive(&self) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .known
            .iter()
            .filter(|(pid, start)| {
                bench_proc::stat(**pid).is_some_and(|s| s.start_ticks == **start && !s.zombie)
            })
            .map(|(pid, _)| *pid)
            .collect();
        out.sort_unstable();
        out
    }

    /// SIGTERM to every noted process still alive, SIGKILL to those alive after `grace`
    /// (all at once, not one after the other). Returns how many were still running.
    pub async fn stop_leftovers(&self, grace: Duration) -> usize {
        let alive = self.alive();
        if alive.is_empty() {
            return 0;
        }
        let pids = alive.clone();
        let _ = tokio::task::spawn_blocking(move || {
            std::thread::scope(|s| {
                for pid in pids {
                    s.spawn(move || bench_proc::terminate(pid, grace));
                }
            });
        })
        .await;
        alive.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finds_and_stops_a_grandchild_in_its_own_group_after_its_parent_is_gone() {
        // A shell that starts `sleep` in a new session (its own group) and waits.
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", "setsid sleep 60 & wait"])
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let root = child.id().unwrap();
        let mut tracker = Tracker::new(root);
        let start = std::time::Instant::now();
        while tracker.alive().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
            tracker.scan();
        }
        let noted = tracker.alive();
        // The parent goes: the grandchild is re-parented but still noted.
        child.kill().await.unwrap();
        assert!(!noted.is_empty());
        assert!(tracker.alive().iter().all(|p| noted.contains(p)));
        assert!(tracker.stop_leftovers(Duration::from_secs(2)).await >= 1);
        assert!(tracker.alive().is_empty());
    }
}
