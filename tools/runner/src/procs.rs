//! The agent's process tree. The agent CLI runs its tool commands in process groups of
//! their own, so stopping the agent's group does not reach them; once the agent is gone they
//! are re-parented and can no longer be found from it. The tracker therefore notes every
//! descendant while the agent runs, and stops the ones still alive when the session ends
//! (dev servers and watchers left behind would hold the app's ports for the next session).

use std::collections::HashMap;
use std::time::Duration;

/// `(ppid, start time in clock ticks)` of a process, from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold anything: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3), so field N is fields[N - 3].
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start))
}

/// Every process's parent, from `/proc`.
fn parents() -> HashMap<i32, i32> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some((ppid, _)) = stat(pid) {
            out.insert(pid, ppid);
        }
    }
    out
}

/// Notes the descendants of one process, and stops them at the end.
#[derive(Debug)]
pub struct Tracker {
    root: i32,
    /// pid → start time, so a recycled pid is never mistaken for a noted process.
    known: HashMap<i32, u64>,
}

impl Tracker {
    pub fn new(root: i32) -> Tracker {
        Tracker {
            root,
            known: HashMap::new(),
        }
    }

    /// Notes the root's current descendants.
    pub fn scan(&mut self) {
        let parents = parents();
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for (&pid, &ppid) in &parents {
            children.entry(ppid).or_default().push(pid);
        }
        let mut stack = vec![self.root];
        while let Some(p) = stack.pop() {
            for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some((_, start)) = stat(c) {
                    self.known.entry(c).or_insert(start);
                }
                stack.push(c);
            }
        }
    }

    /// Noted processes that still run (same pid, same start time).
    pub fn alive(&self) -> Vec<i32> {
        let mut out: Vec<i32> = self
            .known
            .iter()
            .filter(|(pid, start)| stat(**pid).is_some_and(|(_, s)| s == **start))
            .map(|(pid, _)| *pid)
            .collect();
        out.sort_unstable();
        out
    }

    /// SIGTERM to every noted process still alive, SIGKILL to those alive after `grace`.
    /// Returns how many were still running.
    pub async fn stop_leftovers(&self, grace: Duration) -> usize {
        let alive = self.alive();
        for &pid in &alive {
            // SAFETY: kill(2) on a pid this tracker saw descend from the agent, checked
            // against its start time just above.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if alive.is_empty() {
            return 0;
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline && !self.alive().is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for pid in self.alive() {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
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
        let root = child.id().unwrap() as i32;
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
