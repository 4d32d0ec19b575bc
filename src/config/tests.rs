use std::path::Path;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use super::*;
use crate::trino::{TrinoAuth, TrinoConfig};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn try_parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("flightdeck").chain(args.iter().copied())).map(|cli| cli.serve)
}

fn parse(args: &[&str]) -> ServeArgs {
    try_parse(args).unwrap()
}

/// A config file in a fresh directory, and the flags that name it.
struct File {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl File {
    fn new(text: &str) -> File {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flightdeck.toml");
        std::fs::write(&path, text).unwrap();
        File { _dir: dir, path }
    }

    fn with(&self, flags: &[&str]) -> ServeArgs {
        let mut args = vec!["--config", self.path.to_str().unwrap()];
        args.extend_from_slice(flags);
        parse(&args)
    }
}

#[test]
fn defaults() {
    let c = Config::resolve(&parse(&[])).unwrap();
    assert_eq!(c.flight.listen.to_string(), "127.0.0.1:50051");
    assert!(c.flight.tls.is_none() && c.flight.plain_listen.is_none());
    assert_eq!(c.trino.client.url.as_str(), "http://127.0.0.1:8080/");
    assert_eq!(c.trino.client.auth, TrinoAuth::None);
    assert_eq!(c.trino.client.max_concurrent_queries, 64);
    assert_eq!(c.trino.client.request_timeout, Duration::from_secs(60));
    assert_eq!(c.auth.mode, AuthMode::None);
    assert_eq!(c.auth.default_user, "flightdeck");
    assert_eq!(c.auth.token_ttl, Duration::from_secs(43_200));
    assert_eq!(c.auth.session_ttl, Duration::from_secs(86_400));
    assert!(!c.auth.allow_insecure_password);
    assert!(c.flight.ticket_secret.is_none());
    assert_eq!(c.flight.pending_queries, 1024);
    assert_eq!(c.flight.pending_query_ttl, Duration::from_secs(60));
    assert_eq!(c.flight.pending_queries_per_user, 64);
    assert_eq!(c.flight.memory_budget, 1 << 30);
    assert_eq!(c.flight.shutdown_grace, Duration::from_secs(20));
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9090");
    assert!(c.admin.token.is_none());
    assert_eq!(c.trino_protocol.listen.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:8081"));
}

#[test]
fn the_trino_protocol_listener_is_turned_off_by_an_empty_value() {
    assert_eq!(Config::resolve(&parse(&["--trino-protocol-listen", ""])).unwrap().trino_protocol.listen, None);
    let file = File::new("[trino_protocol]\nlisten = \"127.0.0.1:18081\"\n");
    let c = Config::resolve(&file.with(&[])).unwrap();
    assert_eq!(c.trino_protocol.listen, Some("127.0.0.1:18081".parse().unwrap()));
    // A flag's empty value wins over the file.
    assert_eq!(Config::resolve(&file.with(&["--trino-protocol-listen", " "])).unwrap().trino_protocol.listen, None);
    let errors = Config::resolve(&parse(&["--trino-protocol-listen", "8081"])).unwrap_err();
    assert!(errors[0].contains("trino protocol listen"), "{errors:?}");
    // Passwords in clear text off loopback: refused here as on the Flight SQL port.
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "alice:$2y$04$abcdefghijklmnopqrstuu5Yv0M8Q0Yb7Pj0nM3T6U1D7r2y6c7Xm\n").unwrap();
    let flags =
        ["--auth", "password", "--users-file", users.to_str().unwrap(), "--trino-protocol-listen", "0.0.0.0:8081"];
    let errors = Config::resolve(&parse(&flags)).unwrap_err();
    assert!(errors[0].contains("Trino protocol"), "{errors:?}");
}

#[test]
fn defaults_agree_with_the_modules_own() {
    let c = Config::resolve(&parse(&[])).unwrap();
    let cache = CacheConfig::default();
    assert_eq!(c.cache.enabled, cache.enabled);
    assert_eq!(c.cache.max_bytes, cache.max_bytes);
    assert_eq!(c.cache.max_entry_bytes, cache.max_entry_bytes);
    assert_eq!(c.cache.ttl, cache.ttl);
    assert_eq!(c.cache.stale_while_revalidate, cache.stale_while_revalidate);
    assert_eq!(c.cache.stale_if_error, cache.stale_if_error);
    let trino = TrinoConfig::new(c.trino.client.url.clone());
    assert_eq!(c.trino.client.request_timeout, trino.request_timeout);
    assert_eq!(c.trino.client.max_concurrent_queries, trino.max_concurrent_queries);
}

#[test]
fn absent_options_stay_unset_until_resolved() {
    // Clap must not fill in defaults, or the file could never set anything.
    let args = parse(&[]);
    assert!(args.flight.listen.is_none());
    assert!(args.trino.url.is_none());
    assert!(args.auth.mode.is_none());
    assert!(args.cache.enabled.is_none());
    assert!(args.admin.listen.is_none());
    assert!(args.trino.max_concurrent_queries.is_none());
}

#[test]
fn file_is_overridden_by_flags() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
    let file = File::new(&format!(
        "[flight]\nlisten = \"0.0.0.0:1234\"\nticket_secret_file = \"{}\"\npending_queries = 32\n\
         [trino]\nurl = \"http://trino:8080\"\ncatalog = \"tpch\"\nmax_concurrent_queries = 8\n\
         [trino.session_properties]\nquery_max_run_time = \"1h\"\nquery_priority = \"2\"\n\
         [cache]\nenabled = false\nmax_bytes = 1000000\nmax_entry_bytes = \"1KiB\"\nttl_secs = \"2m\"\n\
         shared_namespaces = [\"Hive\"]\n",
        secret.display()
    ));
    let c = Config::resolve(&file.with(&[
        "--listen",
        "127.0.0.1:9",
        "--trino-max-concurrent-queries",
        "4",
        "--session-property",
        "query_priority=5",
        "--cache-shared-namespace",
        "tpch.tiny",
        "--cache",
        "on",
    ]))
    .unwrap();
    // Flags win...
    assert_eq!(c.flight.listen.to_string(), "127.0.0.1:9");
    assert_eq!(c.trino.client.max_concurrent_queries, 4);
    assert!(c.cache.enabled);
    assert_eq!(
        c.trino.client.session_properties,
        vec![("query_max_run_time".into(), "1h".into()), ("query_priority".into(), "5".into())]
    );
    // ...lists add up...
    assert_eq!(c.cache.shared_namespaces, vec!["hive", "tpch.tiny"]);
    // ...and the file fills in what they leave.
    assert_eq!(c.trino.client.url.as_str(), "http://trino:8080/");
    assert_eq!(c.trino.catalog.as_deref(), Some("tpch"));
    assert_eq!(c.flight.ticket_secret.as_ref().map(Secret::expose), Some("0123456789abcdef0123456789abcdef"));
    assert_eq!(c.flight.pending_queries, 32);
    assert_eq!(c.flight.pending_queries_per_user, 2, "a sixteenth of the file's pending queries");
    assert_eq!(c.cache.max_bytes, 1_000_000);
    assert_eq!(c.cache.max_entry_bytes, 1024);
    assert_eq!(c.cache.ttl, Duration::from_secs(120));
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9090", "default where neither says");
}

/// Runs in a child process with its own environment: setting variables in
/// this process would race with the other tests.
#[test]
fn environment_sits_between_file_and_flags() {
    const CHILD: &str = "FLIGHTDECK_CONFIG_TEST_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "config::tests::environment_sits_between_file_and_flags", "--nocapture"])
            .env(CHILD, "1")
            .env("FLIGHTDECK_SCHEMA", "from_env")
            .env("FLIGHTDECK_CATALOG", "from_env")
            .env("FLIGHTDECK_TRINO_MAX_CONCURRENT_QUERIES", "3")
            .env("FLIGHTDECK_CACHE_TTL_SECS", "5m")
            .env("FLIGHTDECK_SESSION_PROPERTIES", "a=1,b=2")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && log.contains("1 passed"), "{log}{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let file = File::new("[trino]\nschema = \"from_file\"\ncatalog = \"from_file\"\nmax_concurrent_queries = 9\n");
    let c = Config::resolve(&file.with(&["--catalog", "from_flag"])).unwrap();
    assert_eq!(c.trino.catalog.as_deref(), Some("from_flag"));
    assert_eq!(c.trino.schema.as_deref(), Some("from_env"));
    assert_eq!(c.trino.client.max_concurrent_queries, 3);
    assert_eq!(c.cache.ttl, Duration::from_secs(300));
    assert_eq!(c.trino.client.session_properties, vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let file = File::new("[auth]\nmode = \"password\"\n[cache]\nmax_entry_bytes = \"2GiB\"\n");
    let errors = Config::resolve(&file.with(&[
        "--trino-url",
        "ftp://x",
        "--ticket-secret",
        "short",
        "--time-zone",
        "Mars/Olympus",
        "--trino-user",
        "svc",
        "--trino-password-file",
        "/nonexistent/pw",
        "--tls-cert",
        "/nonexistent/cert",
        "--plain-listen",
        "0.0.0.0:5000",
        "--pending-queries",
        "0",
        "--trino-max-concurrent-queries",
        "0",
        "--admin-token",
        "short",
    ]))
    .unwrap_err();
    let all = errors.join("\n");
    for needle in [
        "trino url",
        "ticket secret",
        "time zone",
        "trino password file",
        "both a certificate and a key",
        "not a loopback address",
        "pending queries: must be at least 1",
        "trino max concurrent queries: must be at least 1",
        "admin token",
        "auth: mode `password` needs a users file",
        "cache max entry bytes",
    ] {
        assert!(all.contains(needle), "missing `{needle}` in:\n{all}");
    }
}

#[test]
fn a_bad_file_is_reported_with_the_other_problems() {
    let file = File::new("[flight]\nlisten = \"nowhere\"\n");
    let errors = Config::resolve(&file.with(&["--ticket-secret", "short"])).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("config file ") && errors[0].contains("listen = \"nowhere\""), "{errors:?}");
    assert!(errors[1].contains("ticket secret"), "{errors:?}");
}

#[test]
fn malformed_flags_name_the_flag() {
    for (flag, value, explanation) in [
        ("--listen", "nowhere", "expected address:port"),
        ("--admin-listen", "localhost:9090", "expected address:port"),
        ("--token-ttl-secs", "5x", "expected whole seconds"),
        ("--cache-ttl-secs", "1.5", "expected whole seconds"),
        ("--cache-max-bytes", "lots", "expected a size"),
        ("--memory-budget", "1TiB", "expected a size"),
        ("--cache", "maybe", "expected true or false"),
        ("--pending-queries", "many", "invalid digit"),
        ("--trino-max-concurrent-queries", "lots", "invalid digit"),
        ("--trino-url", "not a url", "relative URL"),
        ("--auth", "kerberos", "possible values: none, password"),
        ("--session-property", "novalue", "expected NAME=VALUE"),
    ] {
        let error = try_parse(&[flag, value]).unwrap_err().to_string();
        assert!(error.contains(flag) && error.contains(value) && error.contains(explanation), "{flag}: {error}");
    }
}

#[test]
fn malformed_file_values_name_the_key() {
    for (text, key, explanation) in [
        ("[flight]\nshutdown_grace_secs = \"soon\"\n", "shutdown_grace_secs", "expected whole seconds"),
        ("[auth]\ntoken_ttl_secs = -5\n", "token_ttl_secs", "expected whole seconds"),
        ("[cache]\nmax_bytes = \"lots\"\n", "max_bytes", "expected a size"),
        ("[admin]\nlisten = \"nowhere\"\n", "listen", "expected address:port"),
        ("[cache]\nenabled = \"maybe\"\n", "enabled", "invalid type"),
        ("[auth]\nmode = \"kerberos\"\n", "mode", "unknown variant"),
        ("[trino]\nmax_concurrent_queries = -1\n", "max_concurrent_queries", "invalid value"),
        ("[trino]\nurl_typo = \"x\"\n", "url_typo", "unknown field"),
        ("config = \"elsewhere.toml\"\n", "config", "unknown field"),
    ] {
        let errors = Config::resolve(&File::new(text).with(&[])).unwrap_err();
        let error = errors.join("\n");
        assert!(errors.len() == 1 && error.contains(key) && error.contains(explanation), "{text}: {error}");
    }
}

#[test]
fn durations_take_seconds_or_units() {
    let c =
        Config::resolve(&parse(&["--cache-ttl-secs", "5m", "--session-ttl-secs", "3600", "--token-ttl-secs", "2h"]))
            .unwrap();
    assert_eq!(c.cache.ttl, Duration::from_secs(300));
    assert_eq!(c.auth.session_ttl, Duration::from_secs(3600));
    assert_eq!(c.auth.token_ttl, Duration::from_secs(7200));
    let file = File::new("[cache]\nttl_secs = 5\nstale_secs = \"1m\"\n[trino]\nrequest_timeout_secs = 0\n");
    let c = Config::resolve(&file.with(&[])).unwrap();
    assert_eq!(c.cache.ttl, Duration::from_secs(5));
    assert_eq!(c.cache.stale_while_revalidate, Duration::from_secs(60));
    assert_eq!(c.trino.client.request_timeout, Duration::from_secs(1), "raised to a usable timeout");
}

#[test]
fn cache_and_admin_options() {
    let c = Config::resolve(&parse(&[
        "--cache-max-bytes",
        "256MiB",
        "--cache-ttl-secs",
        "5",
        "--cache-shared-namespace",
        "TPCH",
        "--admin-listen",
        "127.0.0.1:9191",
        "--admin-token",
        "0123456789abcdef",
    ]))
    .unwrap();
    assert_eq!(c.cache.max_bytes, 256 << 20);
    assert_eq!(c.cache.ttl, Duration::from_secs(5));
    assert_eq!(c.cache.shared_namespaces, vec!["tpch"]);
    assert!(c.cache.enabled);
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9191");
    assert_eq!(c.admin.token.as_ref().map(Secret::expose), Some("0123456789abcdef"));
    assert!(!Config::resolve(&parse(&["--cache", "off"])).unwrap().cache.enabled);
    let errors = Config::resolve(&parse(&["--cache-max-entry-bytes", "2GiB", "--admin-token", "short"])).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
    let errors = Config::resolve(&parse(&["--admin-token", "0123456789abcdef", "--admin-token-file", "/x"]));
    assert!(errors.unwrap_err()[0].contains("not both"));
}

#[test]
fn credentials_need_https() {
    let errors = Config::resolve(&parse(&["--trino-user", "svc", "--trino-password", "pw"])).unwrap_err();
    assert!(errors.iter().any(|e| e.contains("https")), "{errors:?}");
    let c =
        Config::resolve(&parse(&["--trino-url", "https://t:8443", "--trino-user", "svc", "--trino-password", "pw"]))
            .unwrap();
    assert_eq!(c.trino.client.auth, TrinoAuth::Basic { user: "svc".into(), password: "pw".into() });
}

#[test]
fn password_mode_reads_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "# comment\nalice:$2y$04$abcdefghijklmnopqrstuu5Yv0M8Q0Yb7Pj0nM3T6U1D7r2y6c7Xm\n").unwrap();
    let c = Config::resolve(&parse(&["--auth", "password", "--users-file", users.to_str().unwrap()])).unwrap();
    let AuthMode::Password { users, .. } = c.auth.mode else { panic!("password mode") };
    assert_eq!(users[0].0, "alice");
    std::fs::write(dir.path().join("bad"), "alice plain\n").unwrap();
    let errors =
        Config::resolve(&parse(&["--auth", "password", "--users-file", dir.path().join("bad").to_str().unwrap()]))
            .unwrap_err();
    assert!(errors[0].contains("line 1"), "{errors:?}");
}

#[test]
fn password_mode_off_loopback_needs_tls_or_consent() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    std::fs::write(&users, "alice:$2y$04$abcdefghijklmnopqrstuu5Yv0M8Q0Yb7Pj0nM3T6U1D7r2y6c7Xm\n").unwrap();
    let users = users.to_str().unwrap();
    let flags = ["--auth", "password", "--users-file", users, "--listen", "0.0.0.0:50051"];
    let errors = Config::resolve(&parse(&flags)).unwrap_err();
    assert!(errors[0].contains("clear text"), "{errors:?}");
    // A bare `--allow-insecure-password` means true.
    let c = Config::resolve(&parse(&[&flags[..], &["--allow-insecure-password"]].concat())).unwrap();
    assert!(c.auth.allow_insecure_password);
}

#[test]
fn the_sample_file_is_valid() {
    let args = ServeArgs {
        config: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/flightdeck.toml")),
        ..Default::default()
    };
    let c = Config::resolve(&args).unwrap();
    assert_eq!(c.flight.memory_budget, 1 << 30);
    assert_eq!(c.flight.pending_queries_per_user, 64);
    assert_eq!(c.auth.session_ttl, Duration::from_secs(86_400));
    assert_eq!(c.trino.client.max_concurrent_queries, 64);
}

#[test]
fn help_shows_each_default_and_variable() {
    let help = ServeArgs::augment_args(Command::new("serve")).render_long_help().to_string();
    for shown in [
        "--listen <ADDR>",
        "[default: 127.0.0.1:50051]",
        "[default: http://127.0.0.1:8080]",
        "--trino-max-concurrent-queries <N>",
        "[env: FLIGHTDECK_TRINO_MAX_CONCURRENT_QUERIES=",
        "[default: 64]",
        "[default: 1GiB]",
        "[default: 64MiB]",
        "[default: 43200]",
        "[default: none]",
        "[default: 127.0.0.1:9090]",
        "Result cache:",
    ] {
        assert!(help.contains(shown), "missing `{shown}` in:\n{help}");
    }
    // Secrets given in the environment are not echoed.
    assert!(help.contains("[env: FLIGHTDECK_TICKET_SECRET]"), "{help}");
}

#[test]
fn the_command_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn debug_output_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "admin-token-0123456789").unwrap();
    let args = parse(&[
        "--ticket-secret",
        "ticket-secret-0123456789abcdef0123456789",
        "--admin-token-file",
        token.to_str().unwrap(),
        "--trino-url",
        "https://t",
        "--trino-user",
        "svc",
        "--trino-password",
        "trino-password-42",
    ]);
    let c = Config::resolve(&args).unwrap();
    let shown = format!("{args:?}\n{c:?}");
    for secret in ["ticket-secret-0123", "admin-token-0123", "trino-password-42"] {
        assert!(!shown.contains(secret), "`{secret}` shown in:\n{shown}");
    }
    assert!(shown.contains("ticket_secret: Some(<redacted>)"), "{shown}");
}

#[test]
fn datasets_come_from_the_file_checked() {
    let file = File::new(
        "[accel]\ndir = \"/var/lib/flightdeck/accel\"\nmax_concurrent_refreshes = 3\nmemory_budget = \"2GiB\"\n\n\
         [[datasets]]\ntable = \"Memory.Default.Events\"\nmode = \"append\"\ntime_column = \"ts\"\n\
         overlap = \"10m\"\nkey = [\"node_id\", \"ts\"]\ninterval = \"30s\"\nmax_bytes = \"1GiB\"\naccess = \"all\"\n\n\
         [[datasets]]\ntable = \"tpch.tiny.nation\"\n",
    );
    let c = Config::resolve(&file.with(&["--accel-max-concurrent-refreshes", "4"])).unwrap();
    assert_eq!((c.accel.max_concurrent_refreshes, c.accel.memory_budget), (4, 2 << 30));
    let d = &c.accel.datasets;
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].table, "memory.default.events");
    assert_eq!((d[0].mode, d[0].time_column.as_deref()), (crate::accel::Mode::Append, Some("ts")));
    assert_eq!((d[0].overlap, d[0].interval), (Duration::from_secs(600), Duration::from_secs(30)));
    assert_eq!((d[0].key.len(), d[0].max_bytes, d[0].access), (2, Some(1 << 30), crate::accel::Access::All));
    assert_eq!(
        (d[1].mode, d[1].interval, d[1].access),
        (crate::accel::Mode::Full, Duration::from_secs(60), crate::accel::Access::Trino)
    );
    assert!(Config::resolve(&parse(&[])).unwrap().accel.datasets.is_empty());
}

#[test]
fn every_dataset_problem_is_reported() {
    let file = File::new(
        "[[datasets]]\ntable = \"events\"\n\n\
         [[datasets]]\ntable = \"m.d.t\"\nmode = \"append\"\n\n\
         [[datasets]]\ntable = \"m.d.u\"\nretention = \"400d\"\n\n\
         [[datasets]]\ntable = \"m.d.v\"\nmode = \"sideways\"\n\n\
         [[datasets]]\ntable = \"m.d.w\"\n\n[[datasets]]\ntable = \"M.D.W\"\n\n\
         [[datasets]]\ntable = \"m.d.x\"\nchanges = \"magic\"\n\n\
         [[datasets]]\ntable = \"m.d.y\"\nchanges = \"snapshots\"\nsource = \"SELECT 1\"\n",
    );
    let problems = Config::resolve(&file.with(&[])).unwrap_err();
    for expected in [
        "catalog.schema.table",
        "needs a `time_column`",
        "`retention` needs",
        "sideways",
        "declared twice",
        "changes `magic`",
        "not a `source`",
    ] {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected} missing from {problems:?}");
    }
}
