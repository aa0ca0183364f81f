//! Native PostgreSQL clusters for the benchmark, driven through the real `initdb`, `pg_ctl`
//! and `psql` binaries.
//!
//! Two kinds of cluster:
//! - [`PgCluster::start_temp`]: a throwaway cluster in a temporary folder on a free loopback
//!   port, tuned for speed (no fsync). It is stopped and deleted when the value is dropped.
//!   Tests start several of these.
//! - [`PgCluster::start_persistent`]: the cluster the benchmark runs use, in a data folder
//!   that survives; it is created when the folder is empty, started when it is not running,
//!   and left running when the value is dropped.
//!
//! PostgreSQL refuses to run as root. When this process is root, the server binaries run as
//! the `postgres` OS user (or `$BENCH_PG_OS_USER`) and the folders they write are handed to
//! that user. When this process is not root, everything runs as the current user.
//!
//! The server listens on 127.0.0.1 only. The database user named in [`Credentials`] is the
//! cluster's superuser and logs in with its password over TCP; administration (creating
//! databases) goes through `psql` with the same credentials.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt as _, chown};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context as _, Result, bail};
/// Loopback port helpers, re-exported from bench-proc for this crate's callers.
pub use bench_proc::{free_port, port_accepts};

/// Name of the settings file this crate writes into the data folder and includes from
/// `postgresql.conf`; rewritten on each start so the port can change between starts.
const SETTINGS_FILE: &str = "bench-pg.conf";
/// Server log written by `pg_ctl -l`, inside the data folder.
const LOG_FILE: &str = "bench-pg.log";
/// Longest path a unix socket may have (`sun_path` is 108 bytes with the terminator).
const MAX_SOCKET_PATH: usize = 100;
/// Attempts at finding a free port for a throwaway cluster (another process may take the
/// port between our probe and the server's bind).
const TEMP_PORT_ATTEMPTS: usize = 5;

/// Login of the database superuser the benchmark's apps connect with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// Database created at start (idempotent).
    pub database: String,
}

impl Default for Credentials {
    /// `spacetime` / `spacetime` / `spacetime`, as in the original harness's compose file.
    fn default() -> Self {
        Credentials {
            user: "spacetime".into(),
            password: "spacetime".into(),
            database: "spacetime".into(),
        }
    }
}

/// Absolute paths of the PostgreSQL programs this crate runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub initdb: PathBuf,
    pub pg_ctl: PathBuf,
    pub psql: PathBuf,
    /// Major version reported by `pg_ctl --version` (e.g. 15).
    pub major_version: u32,
    /// Full `pg_ctl --version` line.
    pub version_line: String,
}

impl Binaries {
    /// Find `initdb`, `pg_ctl` and `psql` on PATH, else in the newest
    /// `/usr/lib/postgresql/<major>/bin`.
    pub fn find() -> Result<Binaries> {
        let fallback_dir = debian_bin_dir();
        let locate = |name: &str| -> Result<PathBuf> {
            if let Some(found) = find_on_path(name) {
                return Ok(found);
            }
            if let Some(dir) = &fallback_dir {
                let candidate = dir.join(name);
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
            bail!(
                "`{name}` not found on PATH: install PostgreSQL 15 (`apt-get install postgresql-15 postgresql-client-15`) \
                 or put its bin folder (e.g. /usr/lib/postgresql/15/bin) on PATH"
            )
        };
        let initdb = locate("initdb")?;
        let pg_ctl = locate("pg_ctl")?;
        let psql = locate("psql")?;
        let out = Command::new(&pg_ctl)
            .arg("--version")
            .output()
            .with_context(|| format!("running {} --version", pg_ctl.display()))?;
        let version_line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let major_version = parse_major_version(&version_line).with_context(|| {
            format!("could not read a version from `pg_ctl --version` output {version_line:?}")
        })?;
        Ok(Binaries {
            initdb,
            pg_ctl,
            psql,
            major_version,
            version_line,
        })
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn debian_bin_dir() -> Option<PathBuf> {
    let entries = fs::read_dir("/usr/lib/postgresql").ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.is_dir())
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}

/// `pg_ctl (PostgreSQL) 15.18 (Debian ...)` → 15.
fn parse_major_version(line: &str) -> Option<u32> {
    line.split_whitespace()
        .find_map(|word| word.split('.').next()?.parse::<u32>().ok())
}

/// The OS account the server programs run as, when it differs from ours.
#[derive(Debug, Clone)]
struct OsUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// `None` when we are not root (run everything as ourselves); else the `postgres` account
/// (or `$BENCH_PG_OS_USER`).
fn server_os_user() -> Result<Option<OsUser>> {
    if !bench_proc::effective_uid_is_root() {
        return Ok(None);
    }
    let name = std::env::var("BENCH_PG_OS_USER").unwrap_or_else(|_| "postgres".to_string());
    let Some(user) = bench_proc::os_user(&name)? else {
        bail!(
            "PostgreSQL refuses to run as root and there is no OS user `{name}` to run it as: \
             create one (`useradd --system --user-group postgres`) or set BENCH_PG_OS_USER to an existing non-root user"
        );
    };
    if user.uid == 0 {
        bail!("BENCH_PG_OS_USER={name} is root; PostgreSQL needs a non-root OS user");
    }
    Ok(Some(OsUser {
        name,
        uid: user.uid,
        gid: user.gid,
    }))
}

/// A PostgreSQL cluster this process started or attached to.
#[derive(Debug)]
pub struct PgCluster {
    bins: Binaries,
    data_dir: PathBuf,
    port: u16,
    creds: Credentials,
    os_user: Option<OsUser>,
    /// Present for a throwaway cluster: it is stopped and this folder deleted on drop.
    temp: Option<tempfile::TempDir>,
}

/// What a data folder's `postmaster.pid` says about a running server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningServer {
    pub pid: u32,
    pub port: u16,
}

impl PgCluster {
    /// Throwaway cluster in a temporary folder on a free loopback port, with fsync off;
    /// stopped and deleted on drop. Login: [`Credentials::default`].
    pub fn start_temp() -> Result<PgCluster> {
        let bins = Binaries::find()?;
        let os_user = server_os_user()?;
        let temp = tempfile::Builder::new()
            .prefix("bench-pg-")
            .tempdir()
            .context("creating a temporary folder for a throwaway PostgreSQL cluster")?;
        let root = temp.path().to_path_buf();
        hand_over(&root, os_user.as_ref())?;
        let data_dir = root.join("data");
        let creds = Credentials::default();
        init_data_dir(&bins, &data_dir, &creds, os_user.as_ref(), true)?;

        let mut temp = Some(temp);
        let mut last_err = None;
        for _ in 0..TEMP_PORT_ATTEMPTS {
            let port = free_port()?;
            let mut cluster = PgCluster {
                bins: bins.clone(),
                data_dir: data_dir.clone(),
                port,
                creds: creds.clone(),
                os_user: os_user.clone(),
                temp: None,
            };
            cluster.write_settings(true, Some(&root))?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.temp = temp.take();
                    cluster.create_database(&cluster.creds.database)?;
                    return Ok(cluster);
                }
                Err(err) => {
                    let port_taken = format!("{err:#}").contains("already in use");
                    last_err = Some(err);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no start attempt was made")))
            .context("starting a throwaway PostgreSQL cluster")
    }

    /// Persistent cluster: creates `data_dir` when it is missing or empty, starts the server
    /// on `port` when it is not running, and makes sure `creds.database` exists. The server
    /// is left running when the value is dropped (stop it with [`PgCluster::stop`]).
    pub fn start_persistent(data_dir: &Path, port: u16, creds: &Credentials) -> Result<PgCluster> {
        let bins = Binaries::find()?;
        let os_user = server_os_user()?;
        let data_dir = absolute(data_dir)?;
        let parent = data_dir
            .parent()
            .context("the PostgreSQL data folder needs a parent folder")?;
        fs::create_dir_all(parent)
            .with_context(|| format!("creating folder {}", parent.display()))?;
        // Parallel benchmark runs may all ask for the cluster at once: one at a time.
        // The lock lasts until `lock_file` drops at the end of this function.
        let lock = lock_path(&data_dir);
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .with_context(|| format!("opening lock file {}", lock.display()))?;
        lock_file
            .lock()
            .with_context(|| format!("locking {}", lock.display()))?;

        let cluster = PgCluster {
            bins,
            data_dir: data_dir.clone(),
            port,
            creds: creds.clone(),
            os_user,
            temp: None,
        };
        if let Some(running) = Self::running(&data_dir)? {
            if running.port != port {
                bail!(
                    "the PostgreSQL cluster in {} is already running on port {} (pid {}), not on the requested port {port}: \
                     use port {}, or stop it first (`pg_ctl -D {} stop`, or `cargo xtask bench-infra down`)",
                    data_dir.display(),
                    running.port,
                    running.pid,
                    running.port,
                    data_dir.display()
                );
            }
        } else {
            if !data_dir.join("PG_VERSION").is_file() {
                ensure_empty_or_missing(&data_dir)?;
                init_data_dir(
                    &cluster.bins,
                    &data_dir,
                    creds,
                    cluster.os_user.as_ref(),
                    false,
                )?;
            } else {
                cluster.check_version()?;
            }
            let socket_dir =
                (data_dir.as_os_str().len() + 20 < MAX_SOCKET_PATH).then_some(&*data_dir);
            cluster.write_settings(false, socket_dir)?;
            cluster.pg_ctl_start()?;
        }
        cluster.create_database(&creds.database).with_context(|| {
            format!(
                "the cluster in {} runs on port {port} but does not accept user `{}` with the given password; \
                 it was probably created with other credentials: use those, or remove the folder to recreate it",
                data_dir.display(),
                creds.user
            )
        })?;
        Ok(cluster)
    }

    /// The server running on `data_dir`, from its `postmaster.pid`, if its process is alive.
    pub fn running(data_dir: &Path) -> Result<Option<RunningServer>> {
        let pid_file = data_dir.join("postmaster.pid");
        let text = match fs::read_to_string(&pid_file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(err).with_context(|| format!("reading {}", pid_file.display()));
            }
        };
        let lines: Vec<&str> = text.lines().collect();
        let pid: u32 = match lines.first().and_then(|l| l.trim().parse().ok()) {
            Some(pid) => pid,
            None => return Ok(None), // being written or stale garbage: treat as not running
        };
        let port: u16 = lines
            .get(3)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        if !bench_proc::alive(pid) {
            return Ok(None);
        }
        Ok(Some(RunningServer { pid, port }))
    }

    /// Whether a server is running on `data_dir`.
    pub fn is_running(data_dir: &Path) -> bool {
        matches!(Self::running(data_dir), Ok(Some(_)))
    }

    /// Stop the server running on `data_dir` (fast shutdown: running sessions are ended).
    /// Returns `false` when nothing was running.
    pub fn stop_data_dir(data_dir: &Path) -> Result<bool> {
        if !Self::is_running(data_dir) {
            return Ok(false);
        }
        let bins = Binaries::find()?;
        let os_user = server_os_user()?;
        pg_ctl_stop(&bins, data_dir, os_user.as_ref(), "fast")?;
        Ok(true)
    }

    /// Stop the server (fast shutdown). A throwaway cluster's folder is still deleted on drop.
    pub fn stop(&self) -> Result<()> {
        if Self::is_running(&self.data_dir) {
            pg_ctl_stop(&self.bins, &self.data_dir, self.os_user.as_ref(), "fast")?;
        }
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    /// Whether this is a throwaway cluster (deleted on drop).
    pub fn is_temp(&self) -> bool {
        self.temp.is_some()
    }

    /// `postgres://user:password@127.0.0.1:port/database`, user and password percent-encoded.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            percent_encode(&self.creds.user),
            percent_encode(&self.creds.password),
            self.port,
            percent_encode(database)
        )
    }

    /// Create database `name` unless it exists.
    pub fn create_database(&self, name: &str) -> Result<()> {
        let script = "SELECT format('CREATE DATABASE %I', :'name') \
                      WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \\gexec\n";
        match self.psql_script("postgres", script, &[("name", name)]) {
            Ok(_) => Ok(()),
            // Another process may have created it between our check and our CREATE.
            Err(_) if self.database_exists(name)? => Ok(()),
            Err(err) => Err(err).with_context(|| format!("creating database {name:?}")),
        }
    }

    /// Drop database `name` if it exists, ending the sessions connected to it.
    pub fn drop_database(&self, name: &str) -> Result<()> {
        let script = "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', :'name') \\gexec\n";
        self.psql_script("postgres", script, &[("name", name)])
            .with_context(|| format!("dropping database {name:?}"))?;
        Ok(())
    }

    pub fn database_exists(&self, name: &str) -> Result<bool> {
        let out = self.psql_script(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = :'name';\n",
            &[("name", name)],
        )?;
        Ok(out.trim() == "1")
    }

    /// Run SQL in `database` with `psql` (stops at the first error) and return its
    /// unaligned, tuples-only output: one row per line, columns separated by `|`.
    pub fn query(&self, database: &str, sql: &str) -> Result<String> {
        self.psql_script(database, sql, &[])
    }

    /// Whether the server accepts a TCP connection on its port right now.
    pub fn is_reachable(&self) -> bool {
        port_accepts(self.port)
    }

    fn psql_script(&self, database: &str, script: &str, vars: &[(&str, &str)]) -> Result<String> {
        let mut cmd = Command::new(&self.bins.psql);
        cmd.args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", &self.creds.user, "-d", database]);
        for (key, value) in vars {
            cmd.arg("-v").arg(format!("{key}={value}"));
        }
        cmd.env("PGPASSWORD", &self.creds.password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGSSLMODE", "disable")
            .env_remove("PGSERVICE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.bins.psql.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .context("sending SQL to psql")?;
        }
        let out = child.wait_with_output().context("waiting for psql")?;
        if !out.status.success() {
            bail!(
                "psql on 127.0.0.1:{} database {database:?} failed ({}): {}",
                self.port,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn check_version(&self) -> Result<()> {
        let file = self.data_dir.join("PG_VERSION");
        let text =
            fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let major: u32 = text
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a PostgreSQL version", file.display()))?;
        if major != self.bins.major_version {
            bail!(
                "the cluster in {} was created by PostgreSQL {major} but the binaries on PATH are {} ({}): \
                 put PostgreSQL {major}'s bin folder on PATH, or move the folder away to create a new cluster",
                self.data_dir.display(),
                self.bins.major_version,
                self.bins.version_line
            );
        }
        Ok(())
    }

    /// Write the settings this crate controls; `postgresql.conf` includes the file.
    fn write_settings(&self, throwaway: bool, socket_dir: Option<&Path>) -> Result<()> {
        let sockets = match socket_dir {
            Some(dir) => dir.display().to_string().replace('\'', "''"),
            None => String::new(),
        };
        let mut text = format!(
            "# Written by bench-pg at each start; edit postgresql.conf for your own settings.\n\
             port = {}\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{sockets}'\n\
             max_connections = 200\n",
            self.port
        );
        if throwaway {
            text.push_str(
                "# Throwaway cluster: durability is not wanted, speed is.\n\
                 fsync = off\n\
                 synchronous_commit = off\n\
                 full_page_writes = off\n\
                 shared_buffers = '32MB'\n",
            );
        }
        let path = self.data_dir.join(SETTINGS_FILE);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        hand_over(&path, self.os_user.as_ref())?;
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let log = self.log_file();
        // Keep one start's log per attempt readable: start from an empty file.
        let _ = fs::remove_file(&log);
        let out = run_as(
            Command::new(&self.bins.pg_ctl)
                .arg("-D")
                .arg(&self.data_dir)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "start"]),
            self.os_user.as_ref(),
            &self.data_dir,
        )?;
        if !out.status.success() {
            let log_tail = bench_proc::tail(&log, 20);
            bail!(
                "pg_ctl start on {} (port {}) failed: {}\n{}\nserver log {}:\n{log_tail}",
                self.data_dir.display(),
                self.port,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim(),
                log.display()
            );
        }
        Ok(())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.temp.is_some() && Self::is_running(&self.data_dir) {
            // The folder goes away next: no need for a clean shutdown.
            if let Err(err) = pg_ctl_stop(
                &self.bins,
                &self.data_dir,
                self.os_user.as_ref(),
                "immediate",
            ) {
                eprintln!("bench-pg: stopping throwaway cluster: {err:#}");
            }
        }
    }
}

fn pg_ctl_stop(
    bins: &Binaries,
    data_dir: &Path,
    os_user: Option<&OsUser>,
    mode: &str,
) -> Result<()> {
    let out = run_as(
        Command::new(&bins.pg_ctl)
            .arg("-D")
            .arg(data_dir)
            .args(["-m", mode, "-w", "-t", "60", "stop"]),
        os_user,
        data_dir,
    )?;
    if !out.status.success() && PgCluster::is_running(data_dir) {
        bail!(
            "pg_ctl stop on {} failed: {}",
            data_dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn init_data_dir(
    bins: &Binaries,
    data_dir: &Path,
    creds: &Credentials,
    os_user: Option<&OsUser>,
    throwaway: bool,
) -> Result<()> {
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting permissions of {}", data_dir.display()))?;
    hand_over(data_dir, os_user)?;
    let parent = data_dir
        .parent()
        .context("the PostgreSQL data folder needs a parent folder")?;
    // The password goes through a file, never the command line.
    let pw_file = tempfile::Builder::new()
        .prefix(".bench-pg-pw-")
        .tempfile_in(parent)
        .with_context(|| format!("creating a password file in {}", parent.display()))?;
    fs::write(pw_file.path(), format!("{}\n", creds.password))
        .context("writing the password file")?;
    hand_over(pw_file.path(), os_user)?;

    let mut cmd = Command::new(&bins.initdb);
    cmd.arg("-D")
        .arg(data_dir)
        .arg("-U")
        .arg(&creds.user)
        .arg(format!("--pwfile={}", pw_file.path().display()))
        .args([
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]);
    if throwaway {
        cmd.arg("--no-sync");
    }
    let out = run_as(&mut cmd, os_user, parent)?;
    if !out.status.success() {
        let reach_hint = match os_user {
            Some(user) => format!(
                "\n(the OS user `{}` must be able to enter every folder above {}; choose a data folder it can reach)",
                user.name,
                data_dir.display()
            ),
            None => String::new(),
        };
        bail!(
            "initdb {} failed: {}\n{}{reach_hint}",
            data_dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let conf = data_dir.join("postgresql.conf");
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .with_context(|| format!("opening {}", conf.display()))?;
    writeln!(file, "\ninclude_if_exists = '{SETTINGS_FILE}'")
        .with_context(|| format!("writing {}", conf.display()))?;
    Ok(())
}

/// Run a server program, as `os_user` when given, from `cwd` (which that user can enter).
fn run_as(cmd: &mut Command, os_user: Option<&OsUser>, cwd: &Path) -> Result<Output> {
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C");
    if let Some(user) = os_user {
        cmd.uid(user.uid).gid(user.gid).env("USER", &user.name);
        // The user's own home folder: root's is usually closed to it.
        cmd.env("HOME", cwd);
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().with_context(|| format!("running {program}"))
}

/// Give a path to the server's OS user (no-op when we are that user already).
fn hand_over(path: &Path, os_user: Option<&OsUser>) -> Result<()> {
    if let Some(user) = os_user {
        chown(path, Some(user.uid), Some(user.gid))
            .with_context(|| format!("handing {} over to OS user {}", path.display(), user.name))?;
    }
    Ok(())
}

fn ensure_empty_or_missing(dir: &Path) -> Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty and is not a PostgreSQL data folder (no PG_VERSION): \
                     refusing to touch it; choose another folder or empty it yourself",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("reading {}", dir.display())),
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("reading the current folder")?
        .join(path))
}

fn lock_path(data_dir: &Path) -> PathBuf {
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    data_dir.with_file_name(format!(".{name}.bench-pg.lock"))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_major_version() {
        assert_eq!(
            parse_major_version("pg_ctl (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major_version("pg_ctl (PostgreSQL) 17.0"), Some(17));
    }

    #[test]
    fn encodes_url_parts() {
        assert_eq!(percent_encode("spacetime"), "spacetime");
        assert_eq!(percent_encode("p@ss:w/rd"), "p%40ss%3Aw%2Frd");
    }
}
