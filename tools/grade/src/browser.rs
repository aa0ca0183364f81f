//! Finding the Chromium the driver launches.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Where Chromium-family browsers are looked for, in order. The Debian package's real
/// binary comes first: its `/usr/bin/chromium` wrapper script fails a shared-memory check
/// in some containers.
pub const CANDIDATES: [&str; 6] = [
    "/usr/lib/chromium/chromium",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "/opt/google/chrome/chrome",
];

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// The browser to drive: `explicit` when given (it must be an executable file), else the
/// first of [`CANDIDATES`] found.
pub fn find_browser(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if is_executable(path) {
            return Ok(path.to_path_buf());
        }
        bail!(
            "--browser {} is not an executable file: give the path of a Chromium or Chrome binary (on Debian: apt-get install chromium, then /usr/lib/chromium/chromium)",
            path.display()
        );
    }
    for candidate in CANDIDATES {
        let path = Path::new(candidate);
        let found = if path.is_absolute() {
            is_executable(path).then(|| path.to_path_buf())
        } else {
            on_path(candidate)
        };
        if let Some(found) = found {
            return Ok(found);
        }
    }
    bail!(
        "no Chromium browser found (looked for {}): install one (Debian/Ubuntu: apt-get install chromium) or pass --browser PATH",
        CANDIDATES.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_browser_must_be_an_executable_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("not-a-browser.txt");
        std::fs::write(&text, "x").unwrap();
        for bad in [text, dir.path().join("missing")] {
            let e = find_browser(Some(&bad)).unwrap_err().to_string();
            assert!(e.contains("apt-get install chromium"), "{e}");
            assert!(e.contains(&bad.display().to_string()), "{e}");
        }
    }
}
