//! A private PostgreSQL cluster for tests that take the database away from a running
//! server: `initdb` in a temporary directory, a free loopback port, and `pg_ctl` to stop
//! and start it. Never the machine's shared server, which other tests use meanwhile.
//!
//! The binaries are found at run time through `pg_config --bindir`. `initdb` refuses to
//! run as root, so as root every command runs as the `postgres` user (`runuser`), in a
//! directory handed to that user. Dropping the cluster stops it and removes the directory,
//! also when the test panicked.

use std::{
    ffi::OsStr,
    fs::OpenOptions,
    io::{self, Write},
    net::TcpListener,
    os::unix::fs::MetadataExt,
    path::PathBuf,
    process::Command,
};

/// The account that runs the cluster when the tests run as root.
const SYSTEM_USER: &str = "postgres";

/// A running (or stopped) throwaway cluster; see the module documentation.
pub struct Cluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    as_system_user: bool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The variable that turns on the tests that need PostgreSQL (CI's PostgreSQL pass).
pub const OPT_IN: &str = "TEST_POSTGRES_URL";

impl Cluster {
    /// A started cluster for the test `name` when [`OPT_IN`] is set, like every other
    /// PostgreSQL test; otherwise `None`, with a note saying the test was skipped. Panics
    /// when the cluster cannot be made: with PostgreSQL asked for, that is a failure.
    pub fn for_test(name: &str) -> Option<Self> {
        if std::env::var_os(OPT_IN).is_none() {
            eprintln!("skipped {name}: it runs only with {OPT_IN} set (the PostgreSQL pass)");
            return None;
        }
        Some(Self::start_new().expect("a private PostgreSQL cluster"))
    }

    /// Creates a cluster (superuser `postgres`, trust authentication, loopback only) and
    /// starts it.
    pub fn start_new() -> io::Result<Self> {
        let bindir = bindir()?;
        let dir = tempfile::Builder::new().prefix("pg-cluster-").tempdir()?;
        let as_system_user = std::fs::metadata(dir.path())?.uid() == 0;
        if as_system_user {
            let owner = format!("{SYSTEM_USER}:");
            run(Command::new("chown").arg(&owner).arg(dir.path()))?;
        }
        let cluster = Self {
            dir,
            bindir,
            port: free_port()?,
            as_system_user,
        };
        let data = cluster.data_dir();
        cluster.run_tool(
            "initdb",
            [
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-U"),
                OsStr::new("postgres"),
                OsStr::new("--auth=trust"),
                OsStr::new("-E"),
                OsStr::new("UTF8"),
                OsStr::new("--locale=C"),
                // The files are thrown away with the test; syncing them costs seconds.
                OsStr::new("--no-sync"),
            ],
        )?;
        // No Unix socket in a shared directory (it could clash with the machine's server):
        // ours lives in the cluster's own directory.
        let mut conf = OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))?;
        writeln!(conf, "listen_addresses = '127.0.0.1'")?;
        writeln!(
            conf,
            "unix_socket_directories = '{}'",
            cluster.dir.path().display()
        )?;
        cluster.start()?;
        Ok(cluster)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the cluster and waits until it accepts connections (after a crash, once
    /// recovery has replayed the WAL).
    pub fn start(&self) -> io::Result<()> {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let port = format!("-p {}", self.port);
        self.run_tool(
            "pg_ctl",
            [
                OsStr::new("start"),
                OsStr::new("-w"),
                OsStr::new("-t"),
                OsStr::new("60"),
                OsStr::new("-D"),
                data.as_os_str(),
                OsStr::new("-l"),
                log.as_os_str(),
                OsStr::new("-o"),
                OsStr::new(&port),
            ],
        )
    }

    /// Stops the cluster the hard way (`pg_ctl stop -m immediate`): every backend quits at
    /// once, connections drop mid-conversation, and nothing is shut down cleanly. To a
    /// client it is a crash.
    pub fn stop_immediately(&self) -> io::Result<()> {
        let data = self.data_dir();
        self.run_tool(
            "pg_ctl",
            [
                OsStr::new("stop"),
                OsStr::new("-w"),
                OsStr::new("-m"),
                OsStr::new("immediate"),
                OsStr::new("-D"),
                data.as_os_str(),
            ],
        )
    }

    /// The server's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run_tool<'a>(
        &self,
        tool: &str,
        args: impl IntoIterator<Item = &'a OsStr>,
    ) -> io::Result<()> {
        let program = self.bindir.join(tool);
        let mut command = if self.as_system_user {
            let mut c = Command::new("runuser");
            c.args(["-u", SYSTEM_USER, "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        // The test's working directory may be closed to the postgres user.
        command.args(args).current_dir(self.dir.path());
        run(&mut command)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Fails harmlessly when the cluster is already stopped; the directory goes next.
        if self.data_dir().join("postmaster.pid").exists()
            && let Err(e) = self.stop_immediately()
        {
            eprintln!(
                "could not stop the test cluster in {}: {e}",
                self.dir.path().display()
            );
        }
    }
}

/// PostgreSQL's server binaries, as `pg_config` reports them.
fn bindir() -> io::Result<PathBuf> {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("pg_config (PostgreSQL's server binaries are needed): {e}"),
            )
        })?;
    if !output.status.success() {
        return Err(io::Error::other("pg_config --bindir failed"));
    }
    let bindir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if !bindir.join("initdb").exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no initdb in {} (pg_config --bindir)", bindir.display()),
        ));
    }
    Ok(bindir)
}

/// A loopback port nobody listens on right now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(command: &mut Command) -> io::Result<()> {
    let output = command.output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout),
    )))
}
