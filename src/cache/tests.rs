use std::sync::atomic::AtomicUsize;

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field, Schema};

use super::*;

type Fill = Result<Filled, FillError<String, ()>>;

fn filled(rows: usize, tag: i64) -> Filled {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
    let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(vec![tag; rows]))]).unwrap();
    Filled {
        schema,
        batches: vec![batch],
        encoded: Vec::new(),
        trino_query_id: format!("q{tag}"),
        reads: Some(Reads::default()),
        local: false,
    }
}

fn key(sql: &str, user: &str) -> CacheKey {
    CacheKey {
        sql: sql.into(),
        user: Some(user.into()),
        catalog: None,
        schema: None,
        session_properties: vec![],
        time_zone: None,
    }
}

fn tag(e: &CachedResult) -> i64 {
    e.batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

/// A fill that counts its runs and returns a batch tagged with the run number.
fn counting(
    calls: &Arc<AtomicUsize>,
    delay: Duration,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = Fill> + Send>> + Send + Sync + 'static {
    let calls = Arc::clone(calls);
    move || {
        let n = calls.fetch_add(1, Ordering::SeqCst) as i64 + 1;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Ok(filled(10, n))
        })
    }
}

fn expect_cached(l: Lookup<String, ()>) -> (Outcome, Arc<CachedResult>) {
    match l {
        Lookup::Cached(o, e) => (o, e),
        other => panic!("expected a cached result, got {other:?}"),
    }
}

#[tokio::test]
async fn concurrent_misses_share_one_fill() {
    let cache = ResultCache::new(CacheConfig::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (cache, calls, barrier) = (cache.clone(), Arc::clone(&calls), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let (outcome, e) = expect_cached(
                cache
                    .get_or_fill(
                        key("q", "a"),
                        "a",
                        vec![],
                        Directive::Default,
                        counting(&calls, Duration::from_millis(50)),
                    )
                    .await,
            );
            (outcome, tag(&e))
        }));
    }
    for t in tasks {
        let (outcome, tag) = t.await.unwrap();
        assert_eq!(outcome, Outcome::Miss);
        assert_eq!(tag, 1);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_read_after_a_write_never_gets_a_fill_begun_before_it() {
    let cache = ResultCache::new(CacheConfig::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let fill = {
        let (calls, gate) = (Arc::clone(&calls), Arc::clone(&gate));
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) as i64 + 1;
            let gate = Arc::clone(&gate);
            Box::pin(async move {
                // The first run reads the table before the write lands.
                if n == 1 {
                    gate.acquire().await.unwrap().forget();
                }
                Ok(filled(1, n))
            }) as std::pin::Pin<Box<dyn Future<Output = Fill> + Send>>
        }
    };
    let fill = Arc::new(fill);
    let tables = vec!["memory.default.t".to_string()];
    let before = tokio::spawn({
        let (cache, fill, tables) = (cache.clone(), Arc::clone(&fill), tables.clone());
        async move { cache.get_or_fill(key("q", "a"), "a", tables, Directive::Default, move || fill()).await }
    });
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    // The write finishes while the fill runs; a read starts after it.
    cache.invalidate_tables(&tables).await;
    let after = tokio::spawn({
        let (cache, fill, tables) = (cache.clone(), Arc::clone(&fill), tables.clone());
        async move { cache.get_or_fill(key("q", "a"), "a", tables, Directive::Default, move || fill()).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    gate.add_permits(1);
    let (o, e) = expect_cached(after.await.unwrap());
    assert_eq!((o, tag(&e)), (Outcome::Miss, 2), "the read after the write gets rows read after it");
    let (_, e) = expect_cached(before.await.unwrap());
    assert_eq!(tag(&e), 2);
    assert_eq!(tag(&cache.peek(&key("q", "a")).await.unwrap().1), 2);
}

#[tokio::test]
async fn failed_fill_is_shared_and_not_cached() {
    let cache = ResultCache::new(CacheConfig::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let failing = {
        let calls = Arc::clone(&calls);
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err::<Filled, _>(FillError::<String, ()>::Failed("boom".to_string()))
            }
        }
    };
    let f = Arc::new(failing);
    let (a, b) = tokio::join!(
        cache.get_or_fill(key("q", "a"), "a", vec![], Directive::Default, {
            let f = Arc::clone(&f);
            move || f()
        }),
        cache.get_or_fill(key("q", "a"), "a", vec![], Directive::Default, {
            let f = Arc::clone(&f);
            move || f()
        })
    );
    for l in [a, b] {
        match l {
            Lookup::Failed(e) => assert!(matches!(&*e, FillError::Failed(m) if m == "boom")),
            other => panic!("expected the fill's error, got {other:?}"),
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(cache.peek(&key("q", "a")).await.is_none());
    let _ = cache.get_or_fill(key("q", "a"), "a", vec![], Directive::Default, move || f()).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a failure is not cached");
}

#[tokio::test(start_paused = true)]
async fn ttl_then_stale_while_one_refresh_runs() {
    let config = CacheConfig {
        ttl: Duration::from_secs(10),
        stale_while_revalidate: Duration::from_secs(5),
        ..Default::default()
    };
    let cache = ResultCache::new(config);
    let calls = Arc::new(AtomicUsize::new(0));
    let get = |cache: ResultCache, calls: Arc<AtomicUsize>| async move {
        expect_cached(
            cache
                .get_or_fill(key("q", "a"), "a", vec![], Directive::Default, counting(&calls, Duration::from_secs(1)))
                .await,
        )
    };
    let (o, e) = get(cache.clone(), Arc::clone(&calls)).await;
    assert_eq!((o, tag(&e)), (Outcome::Miss, 1));
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(get(cache.clone(), Arc::clone(&calls)).await.0, Outcome::Hit);
    // Past the TTL: served stale, and one refresh starts however many ask.
    tokio::time::advance(Duration::from_secs(6)).await;
    for _ in 0..5 {
        let (o, e) = get(cache.clone(), Arc::clone(&calls)).await;
        assert_eq!((o, tag(&e)), (Outcome::Stale, 1));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2, "exactly one background refresh");
    let (o, e) = get(cache.clone(), Arc::clone(&calls)).await;
    assert_eq!((o, tag(&e)), (Outcome::Hit, 2), "the refreshed entry is fresh");
    // Past TTL and the stale window: a plain miss.
    tokio::time::advance(Duration::from_secs(16)).await;
    let (o, e) = get(cache.clone(), Arc::clone(&calls)).await;
    assert_eq!((o, tag(&e)), (Outcome::Miss, 3));
}

#[tokio::test]
async fn byte_budget_evicts() {
    let entry = CachedResult::new(filled(1000, 0), vec![], 0, "q".into()).bytes;
    let cache = ResultCache::new(CacheConfig { max_bytes: entry * 3, ..Default::default() });
    let calls = Arc::new(AtomicUsize::new(0));
    for i in 0..10 {
        let fill = {
            let calls = Arc::clone(&calls);
            move || {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Ok::<_, FillError<String, ()>>(filled(1000, i)) }
            }
        };
        expect_cached(cache.get_or_fill(key(&format!("q{i}"), "a"), "a", vec![], Directive::Default, fill).await);
    }
    let size = cache.weighted_size().await;
    assert!(size <= entry * 3, "{size} bytes held, budget {}", entry * 3);
    assert!(size >= entry, "recent entries are kept");
    assert!(cache.entries().len() <= 3);
}

#[tokio::test]
async fn invalidation_during_a_fill_wins() {
    let cache = ResultCache::new(CacheConfig::default());
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let wait = Arc::new(Mutex::new(Some(wait)));
    let runs = Arc::new(AtomicUsize::new(0));
    let fill = {
        let runs = Arc::clone(&runs);
        move || {
            let wait = wait.lock().unwrap().take();
            let n = runs.fetch_add(1, Ordering::SeqCst) as i64 + 1;
            async move {
                if let Some(w) = wait {
                    let _ = w.await;
                }
                Ok::<_, FillError<String, ()>>(filled(1, n))
            }
        }
    };
    let tables = vec!["memory.default.t".to_string()];
    let c = cache.clone();
    let fill_task =
        tokio::spawn(async move { c.get_or_fill(key("q", "a"), "a", tables, Directive::Default, fill).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A write lands while the fill is running.
    cache.invalidate_tables(&["memory.default.t".to_string()]).await;
    release.send(()).unwrap();
    let (o, e) = expect_cached(fill_task.await.unwrap());
    assert_eq!((o, tag(&e)), (Outcome::Miss, 2), "the caller gets rows from a fill begun after the write");
    assert_eq!(tag(&cache.peek(&key("q", "a")).await.unwrap().1), 2, "the superseded rows are never served");
}

#[tokio::test]
async fn writes_invalidate_what_read_the_table() {
    let cache = ResultCache::new(CacheConfig::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let fill = || counting(&calls, Duration::ZERO);
    expect_cached(cache.get_or_fill(key("a", "u"), "u", vec!["c.s.t1".into()], Directive::Default, fill()).await);
    expect_cached(cache.get_or_fill(key("b", "u"), "u", vec!["c.s.t2".into()], Directive::Default, fill()).await);
    cache.invalidate_tables(&["c.s.t1".into()]).await;
    assert!(cache.peek(&key("a", "u")).await.is_none());
    assert_eq!(cache.peek(&key("b", "u")).await.unwrap().0, Outcome::Hit);
    cache.invalidate_all().await;
    assert!(cache.peek(&key("b", "u")).await.is_none());
    assert!(cache.entries().is_empty());
}

#[tokio::test]
async fn directives() {
    let cache = ResultCache::new(CacheConfig::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let fill = || counting(&calls, Duration::ZERO);
    assert!(matches!(
        cache.get_or_fill(key("q", "a"), "a", vec![], Directive::OnlyIfCached, fill()).await,
        Lookup::NotCached
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    expect_cached(cache.get_or_fill(key("q", "a"), "a", vec![], Directive::Default, fill()).await);
    assert_eq!(
        expect_cached(cache.get_or_fill(key("q", "a"), "a", vec![], Directive::OnlyIfCached, fill()).await).0,
        Outcome::Hit
    );
    let (o, e) = expect_cached(cache.get_or_fill(key("q", "a"), "a", vec![], Directive::NoCache, fill()).await);
    assert_eq!((o, tag(&e)), (Outcome::Miss, 2), "no-cache goes to Trino and refreshes");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (o, e) = expect_cached(
        cache.get_or_fill(key("q", "a"), "a", vec![], Directive::MaxAge(Duration::from_secs(1)), fill()).await,
    );
    assert_eq!((o, tag(&e)), (Outcome::Miss, 3), "older than max-age");
    assert_eq!("max-age=5".parse::<Directive>().unwrap(), Directive::MaxAge(Duration::from_secs(5)));
    assert!("sometimes".parse::<Directive>().is_err());
}

#[test]
fn keys_isolate_users_unless_shared() {
    let cache = ResultCache::new(CacheConfig {
        shared_namespaces: vec!["tpch".into(), "memory.shared".into()],
        ..Default::default()
    });
    let k = |sql: &str, user: &str| {
        cache.key(&Statement::parse(sql, Some("memory"), Some("default")), user, &[], None).unwrap().0
    };
    assert_ne!(k("SELECT * FROM t", "alice"), k("SELECT * FROM t", "bob"));
    assert_eq!(k("SELECT * FROM t", "alice"), k("SELECT *\r\n FROM /* c */ t -- c\r", "alice"));
    // Trino keeps an alias's case in the column name.
    assert_ne!(k("SELECT 1 AS a FROM t", "alice"), k("SELECT 1 AS A FROM t", "alice"));
    assert_eq!(k("SELECT * FROM tpch.tiny.nation", "alice"), k("SELECT * FROM tpch.tiny.nation", "bob"));
    assert_eq!(k("SELECT * FROM shared.t", "alice"), k("SELECT * FROM shared.t", "bob"), "catalog.schema namespace");
    assert_ne!(
        k("SELECT * FROM sharedx.t", "alice"),
        k("SELECT * FROM sharedx.t", "bob"),
        "a prefix of a name is not the namespace"
    );
    assert_ne!(
        k("SELECT * FROM tpch.tiny.nation JOIN t ON true", "alice"),
        k("SELECT * FROM tpch.tiny.nation JOIN t ON true", "bob"),
        "shared only when every table is"
    );
    let with_props = cache
        .key(
            &Statement::parse("SELECT 1", None, None),
            "a",
            &[("b".into(), "1".into()), ("a".into(), "2".into())],
            None,
        )
        .unwrap()
        .0;
    let reordered = cache
        .key(
            &Statement::parse("SELECT 1", None, None),
            "a",
            &[("a".into(), "2".into()), ("b".into(), "1".into())],
            None,
        )
        .unwrap()
        .0;
    assert_eq!(with_props, reordered);
    assert_ne!(with_props, cache.key(&Statement::parse("SELECT 1", None, None), "a", &[], Some("UTC")).unwrap().0);
}

#[tokio::test(start_paused = true)]
async fn marked_stale_entries_are_served_stale_while_one_refresh_runs() {
    let cache = ResultCache::new(CacheConfig::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let get = |table: &'static str| {
        let (cache, calls) = (cache.clone(), Arc::clone(&calls));
        async move {
            let tables = vec![format!("memory.default.{table}")];
            expect_cached(
                cache
                    .get_or_fill(
                        key(table, "a"),
                        "a",
                        tables,
                        Directive::Default,
                        counting(&calls, Duration::from_secs(1)),
                    )
                    .await,
            )
        }
    };
    assert_eq!(get("t").await.0, Outcome::Miss);
    assert_eq!(get("u").await.0, Outcome::Miss);
    // New data in t: still within the TTL, but served stale, with one refresh.
    cache.mark_stale(&["Memory.Default.T".into()]);
    for _ in 0..3 {
        let (o, e) = get("t").await;
        assert_eq!((o, tag(&e)), (Outcome::Stale, 1));
    }
    assert_eq!(get("u").await.0, Outcome::Hit, "entries of other tables stay fresh");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "exactly one refresh");
    let (o, e) = get("t").await;
    assert_eq!((o, tag(&e)), (Outcome::Hit, 3), "the refresh began after the mark: fresh");
}
