//! Building and running the server: one path for `main`, the tests and the CLI.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    EndpointExt, Route, Server,
    listener::{Acceptor, Listener, TcpListener},
    middleware::Cors,
};
use poem_edge::HeaderTimeoutAcceptor;
use sea_orm::DatabaseConnection;

use crate::{
    api,
    config::Settings,
    db,
    http::{ErrorFormat, Observe},
    keys::{self, KeyStore},
    metrics::Metrics,
    passwords::PasswordHasher,
    state::AppState,
    tokens::AccessTokenIssuer,
};

/// A built server, bound to its port, ready to run.
pub struct Application {
    addr: SocketAddr,
    acceptor: HeaderTimeoutAcceptor<poem::listener::TcpAcceptor>,
    state: AppState,
}

impl Application {
    /// Connects and migrates the database, loads (or generates) the keys and binds.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let databases = db::open(&settings.database_url, settings.database_max_connections).await?;
        if settings.key_publish_lead() < settings.jwks_max_age {
            tracing::warn!(
                lead = settings.key_publish_lead().as_secs(),
                jwks_max_age = settings.jwks_max_age.as_secs(),
                "AUTH_KEY_PUBLISH_LEAD is shorter than AUTH_JWKS_MAX_AGE: a verifier may meet \
                 a new key before its cached key set has it, and refetch"
            );
        }
        let storage = keys::open_storage(&settings, &databases.reader, &databases.writer).await?;
        let keys = Arc::new(KeyStore::open(storage, keys::policy(&settings)).await?);
        let hasher = PasswordHasher::new(settings.argon2).await?;
        let issuer = AccessTokenIssuer::new(
            settings.issuer_str().to_owned(),
            settings.audience.clone(),
            settings.access_token_ttl,
            keys.clone(),
        );
        let acceptor = TcpListener::bind(settings.bind.clone())
            .into_acceptor()
            .await?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| anyhow::anyhow!("the listener has no TCP address"))?;
        let acceptor = HeaderTimeoutAcceptor::new(acceptor, settings.request_timeout);
        let readers = sqlite_readers::Readers::for_url(&settings.database_url);
        let mut metrics = Metrics::new();
        if let Some(readers) = &readers {
            metrics.observe_sqlite_readers(readers);
        }
        let state = AppState {
            readers,
            clients: Arc::default(),
            db: databases.reader,
            rotator: crate::tokens::rotation::Rotator::spawn(databases.writer.clone()),
            writer: databases.writer,
            settings: Arc::new(settings),
            keys,
            hasher,
            issuer,
            metrics: Arc::new(metrics),
            login_gate: Arc::default(),
        };
        Ok(Self {
            addr,
            acceptor,
            state,
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            addr,
            acceptor,
            state,
        } = self;
        tracing::info!(%addr, docs = %format!("http://{addr}/docs"), "auth-server listening");
        let reload = tokio::spawn(reload_keys(
            state.keys.clone(),
            state.settings.keys_reload_interval,
        ));
        let purge = tokio::spawn(purge_token_state(
            state.writer.clone(),
            state.settings.throttle.policy(),
        ));
        let app = routes(state);
        let result = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(30)))
            .await;
        reload.abort();
        purge.abort();
        result.map_err(Into::into)
    }

    /// Serves until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(crate::telemetry::shutdown_signal()).await
    }
}

/// The complete HTTP application for `state`.
pub fn routes(state: AppState) -> impl poem::Endpoint {
    let settings = state.settings.clone();
    let service = api::service(settings.issuer_str());
    let spec = service.spec_endpoint();
    // Pages list their methods themselves (`web::headers`); Swagger UI and the document
    // answer every method.
    let allow = poem_edge::AllowHeader::from_openapi(&service.spec())
        .route("/assets/auth.css", &[poem::http::Method::GET]);
    let docs = service.swagger_ui();
    // This server's own Swagger UI posts to /oauth/token from this server's origin, and
    // browsers send `Origin` on same-origin POSTs too: never refuse that as cross-origin.
    let own_origin = settings.issuer.origin().ascii_serialization();
    let cors = Cors::new()
        .allow_origins(settings.cors_origins.iter().map(String::as_str))
        .allow_origin(own_origin.as_str())
        .allow_methods([poem::http::Method::GET, poem::http::Method::POST])
        // Swagger UI sends X-Requested-With with its token request.
        .allow_headers(["authorization", "content-type", "x-requested-with"])
        .max_age(600);
    let api_routes = Route::new()
        .nest("/", service)
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .with(cors)
        .around(same_origin_is_not_cross_origin);
    // The browser side is navigation, not CORS: its forms post with `Origin: null` (the
    // pages' Referrer-Policy is no-referrer), which the CORS layer would refuse. They are
    // protected by CSRF tokens instead.
    crate::web::mount(Route::new(), &state.settings)
        .nest("/", api_routes)
        .with(ErrorFormat)
        .with(allow)
        .with(crate::http::RequestLimits {
            max: settings.max_body_bytes,
            max_headers: settings.max_header_bytes,
            timeout: settings.request_timeout,
            page: crate::web::refusal,
        })
        .with(Observe(state.metrics.clone()))
        .data(state)
}

/// A request whose `Origin` names the host it was sent to (say the Swagger UI opened as
/// `http://localhost:8000/docs` while the issuer says 127.0.0.1) is same-origin, not a
/// CORS request: it skips the CORS checks.
async fn same_origin_is_not_cross_origin<E: poem::Endpoint>(
    ep: Arc<E>,
    mut req: poem::Request,
) -> poem::Result<E::Output> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let same_origin = match (
        header(poem::http::header::ORIGIN),
        header(poem::http::header::HOST),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        _ => false,
    };
    if same_origin {
        req.headers_mut().remove(poem::http::header::ORIGIN);
    }
    ep.call(req).await
}

async fn reload_keys(keys: Arc<KeyStore>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = keys.reload().await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not reload the keys; keeping the current ones"
            );
            continue;
        }
        if let Err(e) = keys.maintain().await {
            tracing::warn!(
                error = format!("{e:#}"),
                "key maintenance (next key, automatic rotation) failed"
            );
        }
    }
}

/// Hourly housekeeping: forget expired logins, revocation records, login counters,
/// browser sessions, pending requests and codes.
async fn purge_token_state(db: DatabaseConnection, policy: crate::throttle::ThrottlePolicy) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = crate::tokens::refresh::purge_expired(&db).await {
            tracing::warn!(error = %e, "could not purge expired token state");
        }
        if let Err(e) = crate::throttle::purge(&db, &policy).await {
            tracing::warn!(error = %e, "could not purge login counters");
        }
        let browser_state = async {
            crate::sessions::purge(&db).await?;
            crate::authorization::purge(&db).await?;
            crate::tokens::codes::purge(&db).await
        };
        if let Err(e) = browser_state.await {
            tracing::warn!(error = %e, "could not purge sessions, requests and codes");
        }
    }
}
