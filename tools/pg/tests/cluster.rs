//! Real PostgreSQL servers started through the real initdb/pg_ctl.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use bench_pg::{Credentials, PgCluster};

#[test]
fn throwaway_cluster_serves_sql_and_vanishes_on_drop() {
    let cluster = PgCluster::start_temp().unwrap();
    assert!(cluster.is_temp());
    assert!(cluster.is_reachable());
    assert_eq!(
        cluster.url("chat"),
        format!(
            "postgres://spacetime:spacetime@127.0.0.1:{}/chat",
            cluster.port()
        )
    );
    // The default database exists and accepts the default login.
    let out = cluster
        .query(
            "spacetime",
            "CREATE TABLE t(x int); INSERT INTO t VALUES (41), (1); SELECT sum(x) FROM t;",
        )
        .unwrap();
    assert_eq!(out.trim(), "42");

    // Creating a database twice is fine; it really exists afterwards.
    assert!(!cluster.database_exists("chat_app_1").unwrap());
    cluster.create_database("chat_app_1").unwrap();
    cluster.create_database("chat_app_1").unwrap();
    assert!(cluster.database_exists("chat_app_1").unwrap());
    // Names that need quoting are passed safely.
    cluster.create_database("odd name; DROP").unwrap();
    assert!(cluster.database_exists("odd name; DROP").unwrap());
    cluster.drop_database("chat_app_1").unwrap();
    assert!(!cluster.database_exists("chat_app_1").unwrap());

    // SQL errors are reported, not swallowed.
    let err = cluster
        .query("spacetime", "SELECT * FROM missing_table;")
        .unwrap_err();
    assert!(format!("{err:#}").contains("missing_table"), "{err:#}");

    let data_dir = cluster.data_dir().to_path_buf();
    let port = cluster.port();
    assert!(PgCluster::is_running(&data_dir));
    drop(cluster);
    assert!(!data_dir.exists(), "throwaway folder must be deleted");
    assert!(!bench_pg::port_accepts(port), "server must be stopped");
}

#[test]
fn several_throwaway_clusters_run_side_by_side() {
    let clusters: Vec<PgCluster> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3).map(|_| scope.spawn(PgCluster::start_temp)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    let mut ports: Vec<u16> = clusters.iter().map(|c| c.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for (i, c) in clusters.iter().enumerate() {
        c.query(
            "spacetime",
            &format!("CREATE TABLE mine AS SELECT {i} AS v;"),
        )
        .unwrap();
    }
    for (i, c) in clusters.iter().enumerate() {
        assert_eq!(
            c.query("spacetime", "SELECT v FROM mine;").unwrap().trim(),
            i.to_string()
        );
    }
}

/// Stops a persistent server when the test ends, even when an assertion failed half-way
/// (the temporary folder goes, and a server left running would keep its port and memory).
struct StopOnDrop(std::path::PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = PgCluster::stop_data_dir(&self.0);
    }
}

#[test]
fn persistent_cluster_survives_drop_and_is_reused() {
    let root = tempfile::tempdir().unwrap();
    // The server's OS user must be able to reach the data folder.
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = root.path().join("pg").join("data");
    let _stop = StopOnDrop(data_dir.clone());
    let creds = Credentials {
        user: "bench".into(),
        password: "s3cret:@/".into(),
        database: "benchdb".into(),
    };
    let port = bench_pg::free_port().unwrap();

    let cluster = PgCluster::start_persistent(&data_dir, port, &creds).unwrap();
    assert!(!cluster.is_temp());
    assert_eq!(
        cluster.url("benchdb"),
        format!("postgres://bench:s3cret%3A%40%2F@127.0.0.1:{port}/benchdb")
    );
    cluster
        .query(
            "benchdb",
            "CREATE TABLE kept(v text); INSERT INTO kept VALUES ('still here');",
        )
        .unwrap();
    drop(cluster);
    let running = PgCluster::running(&data_dir)
        .unwrap()
        .expect("left running after drop");
    assert_eq!(running.port, port);

    // Attaching again to the running server keeps the data.
    let again = PgCluster::start_persistent(&data_dir, port, &creds).unwrap();
    assert_eq!(
        again
            .query("benchdb", "SELECT v FROM kept;")
            .unwrap()
            .trim(),
        "still here"
    );

    // Asking for another port while it runs is refused with the port it runs on.
    let other_port = bench_pg::free_port().unwrap();
    let err = PgCluster::start_persistent(&data_dir, other_port, &creds).unwrap_err();
    assert!(
        format!("{err:#}").contains(&format!("already running on port {port}")),
        "{err:#}"
    );

    // Wrong password: clear error, not a silent new cluster.
    let wrong = Credentials {
        password: "nope".into(),
        ..creds.clone()
    };
    let err = PgCluster::start_persistent(&data_dir, port, &wrong).unwrap_err();
    assert!(format!("{err:#}").contains("other credentials"), "{err:#}");

    // Stop, then start again on another port: same data.
    assert!(PgCluster::stop_data_dir(&data_dir).unwrap());
    assert!(!PgCluster::is_running(&data_dir));
    assert!(!PgCluster::stop_data_dir(&data_dir).unwrap());
    let moved = PgCluster::start_persistent(&data_dir, other_port, &creds).unwrap();
    assert_eq!(moved.port(), other_port);
    assert_eq!(
        moved
            .query("benchdb", "SELECT v FROM kept;")
            .unwrap()
            .trim(),
        "still here"
    );
    moved.stop().unwrap();
    assert!(!PgCluster::is_running(&data_dir));
}

#[test]
fn refuses_a_folder_that_is_not_a_cluster() {
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = root.path().join("data");
    fs::create_dir(&data_dir).unwrap();
    fs::write(data_dir.join("notes.txt"), "mine").unwrap();
    let port = bench_pg::free_port().unwrap();
    let err = PgCluster::start_persistent(&data_dir, port, &Credentials::default()).unwrap_err();
    assert!(
        format!("{err:#}").contains("not a PostgreSQL data folder"),
        "{err:#}"
    );
    assert_eq!(
        fs::read_to_string(data_dir.join("notes.txt")).unwrap(),
        "mine"
    );
}
