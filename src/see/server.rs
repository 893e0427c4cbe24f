//! `call_monitor serve`: the dashboard's HTTP server.
//!
//! # Lifecycle
//! [`serve`] checks the listen address against the access rules, opens
//! one read-only connection to check the schema, builds the pool, binds,
//! then starts two background tasks — the change watcher ([`super::live`])
//! and the sequence miner (sequences are mined on a schedule, not per
//! request: a pass over millions of calls takes seconds) — and serves until
//! the `shutdown` future resolves. Shutdown is fanned out on one watch
//! channel: the tasks stop, live streams end, and axum drains the
//! requests in flight.
//!
//! # Reading
//! Every view runs in one read transaction (a consistent snapshot while
//! the daemon writes) on a pooled connection opened `mode=ro` with
//! `query_only` ([`crate::store::open_read_only`]'s settings). The server
//! never writes, so it may run beside the daemon, or on a copy.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use deadpool_sqlite::{Config, Hook, HookError, Pool, Runtime};
use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::watch;
use tracing::{info, warn};

use super::assets;
use super::guard::{Access, ListenError, Verdict, SECURITY_HEADERS};
use super::live;
use super::views::{self, Filter, Mined};
use crate::store::{self, OpenError};

/// What `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub db: PathBuf,
    pub registry: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    pub listen: SocketAddr,
    pub token: Option<String>,
    /// Host names besides localhost and IP literals that may be used to
    /// reach the server (`--allow-host`).
    pub allowed_hosts: Vec<String>,
    /// How often sequences are mined again (when the data changed).
    pub sequences_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
}

/// Shared by every handler.
struct App {
    pool: Pool,
    access: Access,
    config: ServeConfig,
    changes: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    sequences: RwLock<Option<Mined>>,
}

/// Serves until `shutdown` resolves; `on_ready` is told the bound address
/// (port 0 picks a free one).
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let access = Access::new(config.token.clone(), config.allowed_hosts.clone());
    access.check_listen(config.listen)?;
    drop(store::open_read_only(&config.db)?);
    let pool = read_only_pool(&config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(ServeError::Serve)?;
    let (stop_tx, stop) = watch::channel(false);
    let (changes_tx, changes) = watch::channel(0u64);
    let app = Arc::new(App {
        pool,
        access,
        config: config.clone(),
        changes,
        stop: stop.clone(),
        sequences: RwLock::new(None),
    });
    let db = config.db.clone();
    tokio::spawn(live::watch_changes(
        move || store::open_read_only(&db).map_err(|e| e.to_string()),
        changes_tx,
        stop.clone(),
    ));
    tokio::spawn(mine_sequences(app.clone()));
    info!(%bound, db = %config.db.display(), "dashboard serving");
    on_ready(bound);
    let stopping = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    axum::serve(listener, router(app))
        .with_graceful_shutdown(stopping)
        .await
        .map_err(ServeError::Serve)
}

/// Pooled connections opened read-only: `mode=ro` in the URI (the pool
/// opens with SQLite's default flags, which accept URIs) and `query_only`.
fn read_only_pool(config: &ServeConfig) -> Result<Pool, ServeError> {
    let path = std::path::absolute(&config.db).unwrap_or_else(|_| config.db.clone());
    let uri = format!("file:{}?mode=ro", uri_escape(&path.to_string_lossy()));
    Config::new(uri)
        .builder(Runtime::Tokio1)
        .map_err(|e| ServeError::Pool(e.to_string()))?
        .max_size(4)
        .wait_timeout(Some(Duration::from_secs(10)))
        .post_create(Hook::sync_fn(|conn, _| {
            let conn = conn
                .lock()
                .map_err(|_| HookError::Message("connection lock poisoned".into()))?;
            conn.busy_timeout(store::BUSY_TIMEOUT)
                .and_then(|()| {
                    conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -8192;")
                })
                .map_err(HookError::Backend)
        }))
        .build()
        .map_err(|e| ServeError::Pool(e.to_string()))
}

/// A path made safe inside a `file:` URI.
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { assets::page() }))
        .route("/assets/{name}", get(asset))
        .route("/api/overview", get(overview))
        .route("/api/functions", get(functions))
        .route("/api/functions.csv", get(functions_csv))
        .route("/api/functions/{id}", get(function_detail))
        .route("/api/tools", get(tools))
        .route("/api/tools.csv", get(tools_csv))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}", get(session_detail))
        .route("/api/patterns", get(patterns))
        .route("/api/sequences", get(mined_sequences))
        .route("/api/proposals", get(proposals))
        .route("/api/violations", get(violations))
        .route("/api/quarantine", get(quarantine))
        .route("/api/pipeline", get(pipeline))
        .route("/api/live", get(live_events))
        .fallback(|| async { ApiError::NotFound("no such page".into()) })
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// Access rules first, security headers on every answer.
async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let query = request.uri().query().map(str::to_string);
    let mut response = match app.access.verdict(request.headers(), query.as_deref()) {
        Verdict::Allow => next.run(request).await,
        Verdict::WrongHost => (
            StatusCode::MISDIRECTED_REQUEST,
            "this Host is not allowed (call_monitor serve answers to localhost, IP addresses and --allow-host names)\n",
        )
            .into_response(),
        Verdict::Unauthorised => {
            let mut r = (
                StatusCode::UNAUTHORIZED,
                "a token is required: open the URL with ?token=… once, or send Authorization: Bearer …\n",
            )
                .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        Verdict::SetCookie => {
            let mut r = Redirect::to(request.uri().path()).into_response();
            if let Some(cookie) = app.access.cookie_header() {
                r.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            r
        }
    };
    for (name, value) in SECURITY_HEADERS {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// What an API request can fail with.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the database is busy, try again: {0}")]
    Busy(String),
    #[error("cannot read the database: {0}")]
    Database(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            warn!(error = %self, "dashboard request failed");
        }
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

impl App {
    /// Runs `view` in one read transaction on a pooled connection; the
    /// answer carries its server time as `Server-Timing: db;dur=…`.
    async fn read<T: Send + 'static>(
        &self,
        view: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<(T, Duration), ApiError> {
        let conn = self
            .pool
            .get()
            .await
            .map_err(|e| ApiError::Busy(e.to_string()))?;
        conn.interact(move |conn| {
            let started = Instant::now();
            let tx = conn.unchecked_transaction()?;
            let value = view(&tx)?;
            drop(tx);
            Ok((value, started.elapsed()))
        })
        .await
        .map_err(|e| ApiError::Database(e.to_string()))?
        .map_err(|e: rusqlite::Error| ApiError::Database(e.to_string()))
    }

    /// [`App::read`] answered as JSON.
    async fn json<T: Serialize + Send + 'static>(
        &self,
        view: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<Response, ApiError> {
        let (value, took) = self.read(view).await?;
        Ok(timed(Json(value).into_response(), took))
    }
}

fn timed(mut response: Response, took: Duration) -> Response {
    let value = format!("db;dur={:.2}", took.as_secs_f64() * 1000.0);
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

fn csv(table: views::Table, took: Duration, name: &str) -> Response {
    let disposition = format!("inline; filename=\"{name}.csv\"");
    let mut response = (
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        table.to_csv(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    timed(response, took)
}

type Filtered = Query<Filter>;

fn checked(Query(filter): Filtered) -> Result<Filter, ApiError> {
    filter
        .validated()
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

async fn asset(UrlPath(name): UrlPath<String>) -> Response {
    match assets::by_name(&name) {
        Some((content_type, body)) => {
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        None => ApiError::NotFound(format!("no asset {name:?}")).into_response(),
    }
}

async fn overview(State(app): State<Arc<App>>, q: Filtered) -> Result<Response, ApiError> {
    let filter = checked(q)?;
    app.json(move |c| views::overview(c, &filter)).await
}

async fn functions(State(app): State<Arc<App>>, q: Filtered) -> Result<Response, ApiError> {
    let filter = checked(q)?;
    let registry = app.config.registry.clone();
    app.json(move |c| views::functions(c, &filter, registry.as_deref()))
        .await
}

async fn functions_csv(State(app): State<Arc<App>>, q: Filtered) -> Result<Response, ApiError> {
    let filter = checked(q)?;
    let (f, took) = app
        .read(move |c| views::functions(c, &filter, None))
        .await?;
    Ok(csv(f.functions, took, "function_stats"))
}

async fn function_detail(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (mut detail, took) = {
        let id = id.clone();
        app.read(move |c| views::function_detail(c, &id)).await?
    };
    if detail.is_unknown() {
        return Err(ApiError::NotFound(format!("no function {id:?} recorded")));
    }
    if let Some(mined) = app
        .sequences
        .read()
        .ok()
        .as_deref()
        .and_then(Option::as_ref)
    {
        detail.sequences = mined.of_function(&id);
    }
    Ok(timed(Json(detail).into_response(), took))
}

async fn tools(State(app): State<Arc<App>>, q: Filtered) -> Result<Response, ApiError> {
    let filter = checked(q)?;
    app.json(move |c| views::tools(c, &filter)).await
}

async fn tools_csv(State(app): State<Arc<App>>, q: Filtered) -> Result<Response, ApiError> {
    let filter = checked(q)?;
    let (t, took) = app.read(move |c| views::tools(c, &filter)).await?;
    Ok(csv(t.tools, took, "tool_stats"))
}

async fn sessions(State(app): State<Arc<App>>, q: Filtered) -> Result<Response, ApiError> {
    let filter = checked(q)?;
    app.json(move |c| views::sessions(c, &filter)).await
}

async fn session_detail(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let (detail, took) = {
        let id = id.clone();
        app.read(move |c| views::session_detail(c, &id)).await?
    };
    if detail.is_unknown() {
        return Err(ApiError::NotFound(format!("no session {id:?} recorded")));
    }
    Ok(timed(Json(detail).into_response(), took))
}

async fn patterns(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    app.json(views::patterns).await
}

async fn violations(State(app): State<Arc<App>>, q: Filtered) -> Result<Response, ApiError> {
    let filter = checked(q)?;
    app.json(move |c| views::violations(c, &filter)).await
}

async fn quarantine(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    app.json(views::quarantine).await
}

async fn proposals(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let registry = app.config.registry.clone();
    let started = Instant::now();
    let found = tokio::task::spawn_blocking(move || views::proposals(registry.as_deref()))
        .await
        .map_err(|e| ApiError::Database(e.to_string()))?;
    Ok(timed(Json(found).into_response(), started.elapsed()))
}

async fn pipeline(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let sources = views::PipelineSources {
        spool: app.config.spool.clone(),
    };
    app.json(move |c| views::pipeline(c, &sources)).await
}

#[derive(Debug, serde::Deserialize)]
struct SequencesQuery {
    limit: Option<usize>,
}

async fn mined_sequences(State(app): State<Arc<App>>, Query(q): Query<SequencesQuery>) -> Response {
    let started = Instant::now();
    let limit = q.limit.unwrap_or(views::SEQUENCES_SHOWN);
    let answer = match app
        .sequences
        .read()
        .ok()
        .as_deref()
        .and_then(Option::as_ref)
    {
        None => serde_json::json!({ "mined": null }),
        Some(mined) => mined.shown(limit),
    };
    timed(Json(answer).into_response(), started.elapsed())
}

/// Mines sequences at start and then every `sequences_every` when the
/// data changed, until shutdown.
async fn mine_sequences(app: Arc<App>) {
    let mut stop = app.stop.clone();
    let mut changes = app.changes.clone();
    loop {
        match app.read(Mined::mine).await {
            Ok((mined, _)) => {
                if let Ok(mut slot) = app.sequences.write() {
                    *slot = Some(mined);
                }
            }
            Err(e) => warn!(error = %e, "dashboard: cannot mine sequences"),
        }
        changes.borrow_and_update();
        tokio::select! {
            _ = tokio::time::sleep(app.config.sequences_every) => {}
            _ = stop.changed() => return,
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Server-sent events: `change` after each commit the watcher sees, until
/// shutdown.
async fn live_events(State(app): State<Arc<App>>) -> impl IntoResponse {
    let state = (app.changes.clone(), app.stop.clone());
    let stream = futures_util::stream::unfold(state, |(mut changes, mut stop)| async move {
        if *stop.borrow() {
            return None;
        }
        tokio::select! {
            changed = changes.changed() => {
                changed.ok()?;
                let n = *changes.borrow_and_update();
                let event = Event::default().event("change").data(n.to_string());
                Some((Ok::<_, std::convert::Infallible>(event), (changes, stop)))
            }
            _ = stop.changed() => None,
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
