//! `postgres` against the PostgreSQL on 127.0.0.1:5432 (database `test`), and a private
//! PostgreSQL with `scram-sha-256` authentication for the login cases: the shared server trusts
//! every local connection (`host all all 127.0.0.1/32 trust`), so it never checks a password.
//! Read back with psycopg.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::eventually;
use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, python, run,
    sample_events, unique, Peer, Setup,
};

const POSTGRES: u16 = 5432;
const SHARED: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";
const PASSWORD: &str = "scram-password-for-tests";

/// The directory of `initdb` and `postgres` (Debian keeps them out of PATH).
fn bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("PUSHRAIL_PG_BINDIR") {
        return dir.into();
    }
    let initdb = run(Command::new("sh").args([
        "-c",
        "command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb | tail -n1",
    ]));
    let initdb =
        std::fs::canonicalize(initdb.trim()).expect("initdb (PostgreSQL server) is not installed");
    initdb.parent().unwrap().to_owned()
}

/// Runs as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_postgres(command: &mut Command) -> &mut Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let id = |flag: &str| -> u32 {
            run(Command::new("id").args([flag, "postgres"]))
                .trim()
                .parse()
                .unwrap()
        };
        command.uid(id("-u")).gid(id("-g"));
    }
    command
}

/// A PostgreSQL of our own on `port`: password (SCRAM) authentication for everyone.
fn private_postgres(port: u16) -> (Peer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, PASSWORD).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        run(Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir.path()));
    }
    let bin = bindir();
    run(as_postgres(
        Command::new(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display())),
    ));
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories=", "-c", "fsync=off"]);
    as_postgres(&mut command);
    // SIGINT is PostgreSQL's fast shutdown: it removes its shared memory and exits.
    let mut peer = Peer::spawn_with_stop("postgres", command, Some(libc::SIGINT));
    peer.wait_for_port(port);
    (peer, dir)
}

fn read_back(conninfo: &str, table: &str) -> BTreeMap<String, (String, Value)> {
    let rows = python("peer_postgres.py", &[conninfo, "read", table]);
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["occurred_at"].as_str().unwrap().starts_with("20"), "{r}");
            (
                r["id"].as_str().unwrap().to_owned(),
                (r["type"].as_str().unwrap().to_owned(), r["payload"].clone()),
            )
        })
        .collect()
}

#[tokio::test]
async fn postgres_inserts_a_batch_and_a_replay_inserts_nothing_twice() {
    let table = unique("pushrail_events");
    // The host, port and database come from the connection string; the config has none.
    let setup = Setup::new(
        &[],
        "postgres",
        json!({ "table": table, "create_table": true }),
        Some((
            "postgres_dsn",
            json!({ "dsn": format!("postgresql://postgres@127.0.0.1:{POSTGRES}/test") }),
        )),
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(excerpt.contains("rows inserted into"), "{excerpt}");
    }

    let detail = setup.replay(delivered[0]["id"].as_str().unwrap()).await;
    let excerpt = detail["attempts"][1]["response_excerpt"].as_str().unwrap();
    assert!(
        excerpt.starts_with("0 rows inserted") && excerpt.ends_with("1 already there"),
        "{excerpt}"
    );

    let count = python("peer_postgres.py", &[SHARED, "count", &table]);
    assert_eq!(
        count["count"],
        ids.len(),
        "ON CONFLICT (id) DO NOTHING kept one row per event"
    );
    assert_same_events(&ids, &events, &read_back(SHARED, &table));
}

#[tokio::test]
async fn postgres_missing_table_is_a_permanent_error() {
    // Trust authentication: a user and no credential.
    let setup = Setup::new(
        &fast_retries(),
        "postgres",
        json!({ "host": "127.0.0.1", "database": "test", "user": "postgres", "table": unique("pushrail_missing") }),
        None,
    )
    .await;
    setup.publish(&sample_events(1)).await;
    let failed = setup.wait_for("failed", 1).await;
    assert_eq!(outcomes(&failed[0]), ["permanent_error"]);
    let error = failed[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("42P01") && error.contains("does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn postgres_wrong_password_is_a_permanent_error() {
    let port = free_port();
    let (_postgres, _dir) = private_postgres(port);
    let setup = Setup::new(
        &fast_retries(),
        "postgres",
        json!({ "host": "127.0.0.1", "port": port, "database": "postgres", "table": "events", "create_table": true }),
        Some(("basic", json!({ "username": "postgres", "password": "wrong-password" }))),
    )
    .await;
    setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", 2).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.contains("28P01") && error.contains("password authentication failed"),
            "{error}"
        );
        assert!(!error.contains("wrong-password"), "no secret in the log");
    }
}

#[tokio::test]
async fn postgres_unreachable_server_is_retried_until_it_is_there() {
    let port = free_port();
    let table = unique("pushrail_events");
    let setup = Setup::new(
        &fast_retries(),
        "postgres",
        json!({ "host": "127.0.0.1", "port": port, "database": "postgres", "table": table, "create_table": true }),
        Some(("basic", json!({ "username": "postgres", "password": PASSWORD }))),
    )
    .await;
    let events = sample_events(3);
    let ids = setup.publish(&events).await;
    let first = setup.first_attempt().await;
    assert_eq!(first["outcome"], "retryable_error", "{first}");

    // Logging in to this one takes SCRAM-SHA-256 with the right password.
    let (_postgres, _dir) = private_postgres(port);
    for d in setup.wait_for("succeeded", ids.len()).await {
        let outcomes = outcomes(&d);
        assert_eq!(outcomes.last().unwrap(), "succeeded");
        assert!(outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| o == "retryable_error"));
    }
    let conninfo =
        format!("host=127.0.0.1 port={port} user=postgres password={PASSWORD} dbname=postgres");
    assert_same_events(&ids, &events, &read_back(&conninfo, &table));
}

/// The backends a role has open on the shared server, by pid.
async fn backends_of(admin: &sqlx::AnyPool, role: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT pid::bigint FROM pg_stat_activity WHERE usename = $1 ORDER BY pid")
        .bind(role)
        .fetch_all(admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_delivers_twenty_batches_over_one_connection_and_a_rotation_replaces_it() {
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/test")
        .await
        .unwrap();
    // A role of its own, so the server's connection list tells this destination's apart.
    let role = unique("pushrail_conn");
    let table = unique("pushrail_events");
    sqlx::query(&format!("CREATE ROLE {role} LOGIN"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("GRANT CREATE, USAGE ON SCHEMA public TO {role}"))
        .execute(&admin)
        .await
        .unwrap();
    let setup = Setup::new(
        &[],
        "postgres",
        json!({ "host": "127.0.0.1", "database": "test", "table": table, "create_table": true }),
        // The shared server trusts loopback: the password is not checked, but it is what
        // rotates.
        Some(("basic", json!({ "username": role, "password": "first" }))),
    )
    .await;
    for n in 1..=20 {
        setup.publish(&sample_events(1)).await;
        setup.wait_for("succeeded", n).await;
    }
    let before = backends_of(&admin, &role).await;
    assert_eq!(before.len(), 1, "20 batches, one connection: {before:?}");

    let (_, credentials) = setup
        .customer
        .call("GET", "/embed/v1/credentials", None)
        .await;
    let credential = credentials["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = setup
        .customer
        .call(
            "POST",
            &format!("/embed/v1/credentials/{credential}/rotate"),
            Some(json!({ "secret": { "username": role, "password": "second" } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    setup.publish(&sample_events(1)).await;
    setup.wait_for("succeeded", 21).await;
    let after = eventually(
        "the old connection to close",
        Duration::from_secs(10),
        || async {
            let now = backends_of(&admin, &role).await;
            (now.len() == 1).then_some(now)
        },
    )
    .await;
    assert_ne!(
        after, before,
        "the rotated credential opened a new connection"
    );

    drop(setup);
    let _ = sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
        .execute(&admin)
        .await;
    let _ =
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
            .bind(&role)
            .execute(&admin)
            .await;
    let _ = sqlx::query(&format!("REVOKE ALL ON SCHEMA public FROM {role}"))
        .execute(&admin)
        .await;
    let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
        .execute(&admin)
        .await;
}
