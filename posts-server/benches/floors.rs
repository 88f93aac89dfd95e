//! The floor of each piece of `GET /posts/me` and `POST /posts`: what the hardware and the
//! project's dependencies allow, next to what the server's own code path costs.
//!
//! - `http/noop_round_trip`: one keep-alive HTTP/1.1 request to a poem route that does
//!   nothing, client (reqwest) and server in this process.
//! - `posts_query/*`: ten posts of one author out of 1,010, newest first, on the server's
//!   SQLite settings (WAL, a reader pool): `select_1` is the bare round trip to sqlx's
//!   connection thread, `orm_10` the query through sea-orm as the server ran it before
//!   issue 14, `server_10` `posts::list` through sqlx (a fixed statement, decoded into
//!   models: the server's path in issue 14, and still on PostgreSQL and after a failure of
//!   the synchronous readers), `fast_10` the server's path now on an SQLite file
//!   (`posts::list` on the synchronous readers, `sqlite_readers`).
//! - `page_json/*`: the page of ten posts encoded through a `serde_json::Value` (what
//!   poem-openapi's `Json` does) and by serde straight into bytes (what the server does).
//! - `insert/*`: `floor_group_of_16` is the insert floor: the same INSERT as the server's,
//!   with its pragmas (WAL, `synchronous=FULL`) on a file of the same disk, 16 rows per
//!   transaction; `server_16_concurrent` stores 16 concurrent posts through the server's
//!   group commit (`inserts::Inserter`).
//!
//! Token verification has its own benchmark (`--bench verify`).
//!
//! `cargo bench -p posts-server --bench floors` runs the criterion benchmarks;
//! `cargo bench -p posts-server --bench floors -- --insert-floor-rate --seconds 10` only
//! prints `insert_floor_per_s <n>` (inserts per second, groups of 16) for `bench/load.sh`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use criterion::{Criterion, Throughput};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Route, Server, get, handler};
use posts_server::config::DatabaseSettings;
use posts_server::db::{self, Databases};
use posts_server::domain::{PageLimit, PostBody, PostId, PostTitle};
use posts_server::entities::post;
use posts_server::inserts::Inserter;
use posts_server::posts::{self, NewPost};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sqlx};

const AUTHOR: &str = "0190b6a3-0000-7000-8000-00000000a000";
const INSERT: &str = "INSERT INTO posts (id, author_id, title, body, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6)";

struct Fixture {
    runtime: tokio::runtime::Runtime,
    dbs: Databases,
    _dir: tempfile::TempDir,
}

/// A posts database as the server opens it, in a file on the disk the server would use.
fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = DatabaseSettings {
        url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("posts.db").display()
        )
        .parse()
        .expect("database URL"),
        max_connections: 8,
    };
    let dbs = runtime.block_on(db::open(&settings)).expect("database");
    Fixture {
        runtime,
        dbs,
        _dir: dir,
    }
}

fn new_post(i: usize) -> NewPost {
    NewPost {
        title: PostTitle::parse(format!("Post {i}")).expect("title"),
        body: PostBody::parse(format!("Body of post {i}, a few words long.")).expect("body"),
    }
}

/// Inserts `count` rows (author, then others) in one transaction of the raw statement.
async fn insert_rows(pool: &sqlx::SqlitePool, author: &str, count: usize) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    for i in 0..count {
        let now = Utc::now().trunc_subsecs(6);
        sqlx::query(INSERT)
            .bind(PostId::new().to_string())
            .bind(author)
            .bind(format!("Post {i}"))
            .bind(format!("Body of post {i}, a few words long."))
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

fn http(c: &mut Criterion) {
    #[handler]
    fn noop() {}

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // Bound before serving, so the port is known and cannot be taken in between.
    let acceptor = runtime
        .block_on(TcpListener::bind("127.0.0.1:0").into_acceptor())
        .expect("port");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("a TCP address");
    runtime.spawn(Server::new_with_acceptor(acceptor).run(Route::new().at("/noop", get(noop))));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/noop");
    runtime.block_on(async {
        for _ in 0..100 {
            if client.get(&url).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the no-op server never answered");
    });
    c.bench_function("http/noop_round_trip", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let response = client.get(&url).send().await.expect("request");
                assert!(response.status().is_success());
                response.bytes().await.expect("body")
            })
        })
    });
}

fn query(c: &mut Criterion) {
    let f = fixture();
    let pool = f.dbs.writer.get_sqlite_connection_pool().clone();
    f.runtime.block_on(async {
        insert_rows(&pool, AUTHOR, 10)
            .await
            .expect("author's posts");
        for other in 0..10 {
            insert_rows(&pool, &format!("other-{other}"), 100)
                .await
                .expect("other posts");
        }
    });
    let reader = f.dbs.reader.clone();
    let reader_pool = reader.get_sqlite_connection_pool().clone();
    let limit = PageLimit::parse(Some(10)).expect("limit");

    let mut group = c.benchmark_group("posts_query");
    group.bench_function("select_1", |b| {
        b.iter(|| {
            f.runtime.block_on(async {
                sqlx::query_scalar::<_, i64>("SELECT 1")
                    .fetch_one(&reader_pool)
                    .await
                    .expect("select 1")
            })
        })
    });
    group.bench_function("orm_10", |b| {
        b.iter(|| {
            f.runtime.block_on(async {
                let rows = post::Entity::find()
                    .filter(post::Column::AuthorId.eq(black_box(AUTHOR)))
                    .order_by_desc(post::Column::CreatedAt)
                    .order_by_desc(post::Column::Id)
                    .limit(11)
                    .all(&reader)
                    .await
                    .expect("query");
                assert_eq!(rows.len(), 10);
                rows
            })
        })
    });
    group.bench_function("server_10", |b| {
        b.iter(|| {
            f.runtime.block_on(async {
                let page = posts::list(&reader, None, Some(black_box(AUTHOR)), limit, None)
                    .await
                    .expect("query");
                assert_eq!(page.items.len(), 10);
                page
            })
        })
    });
    let sync_readers = f.dbs.sync_readers.clone().expect("an SQLite file");
    group.bench_function("fast_10", |b| {
        b.iter(|| {
            f.runtime.block_on(async {
                let page = posts::list(
                    &reader,
                    Some(&sync_readers),
                    Some(black_box(AUTHOR)),
                    limit,
                    None,
                )
                .await
                .expect("query");
                assert_eq!(page.items.len(), 10);
                page
            })
        })
    });
    assert_eq!(sync_readers.failures(), 0, "fast_10 fell back to sqlx");
    group.finish();

    let page = || {
        f.runtime
            .block_on(posts::list(&reader, None, Some(AUTHOR), limit, None))
            .expect("page")
    };
    let mut group = c.benchmark_group("page_json");
    group.bench_function("through_value_10", |b| {
        b.iter_batched(
            page,
            posts_server::api::page_json_through_value,
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("serde_bytes_10", |b| {
        b.iter_batched(
            page,
            |page| posts_server::api::page_json(page).expect("JSON"),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn insert(c: &mut Criterion) {
    let f = fixture();
    let pool = f.dbs.writer.get_sqlite_connection_pool().clone();
    let inserter = {
        let _guard = f.runtime.enter();
        Inserter::spawn(f.dbs.writer.clone())
    };
    let mut group = c.benchmark_group("insert");
    group.throughput(Throughput::Elements(16));
    group.sample_size(20);
    group.bench_function("floor_group_of_16", |b| {
        b.iter(|| {
            f.runtime
                .block_on(insert_rows(&pool, AUTHOR, 16))
                .expect("insert")
        })
    });
    group.bench_function("server_16_concurrent", |b| {
        b.iter(|| {
            f.runtime.block_on(async {
                let mut tasks = Vec::with_capacity(16);
                for i in 0..16 {
                    let inserter = inserter.clone();
                    tasks.push(tokio::spawn(async move {
                        posts::create(&inserter, AUTHOR, new_post(i)).await
                    }));
                }
                for task in tasks {
                    task.await.expect("task").expect("insert");
                }
            })
        })
    });
    group.finish();
}

/// `insert_floor_per_s`: groups of 16 for `seconds`, as a rate.
fn insert_floor_rate(seconds: u64) {
    let f = fixture();
    let pool = f.dbs.writer.get_sqlite_connection_pool().clone();
    let started = Instant::now();
    let mut rows = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        f.runtime
            .block_on(insert_rows(&pool, AUTHOR, 16))
            .expect("insert");
        rows += 16;
    }
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    println!("insert_floor_per_s {rate:.0}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|arg| arg == "--insert-floor-rate") {
        let seconds = args
            .iter()
            .position(|arg| arg == "--seconds")
            .and_then(|at| args.get(at + 1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(10);
        insert_floor_rate(seconds);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    http(&mut criterion);
    query(&mut criterion);
    insert(&mut criterion);
    criterion.final_summary();
}
