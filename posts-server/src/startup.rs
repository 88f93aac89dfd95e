//! `Application::build` wires everything together; `run_until_stopped` serves.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jwt_verifier::{BearerAuth, JwksCache, TokenVerifier};
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::{EndpointExt, IntoEndpoint, Server};
use poem_edge::HeaderTimeoutAcceptor;
use tokio::task::JoinHandle;

use crate::api;
use crate::config::Settings;
use crate::db;
use crate::docs::ApiDocs;
use crate::error::ProblemDetails;
use crate::inserts::Inserter;
use crate::limits::BodyLimit;
use crate::metrics::{HttpMetrics, Metrics};
use crate::request_log::RequestLog;
use crate::state::AppState;

/// A built server: connected, migrated, bound, not yet serving.
pub struct Application {
    acceptor: HeaderTimeoutAcceptor<TcpAcceptor>,
    address: SocketAddr,
    state: AppState,
    routes: poem::endpoint::BoxEndpoint<'static>,
    refresher: JoinHandle<()>,
    shutdown_grace: Duration,
}

impl Application {
    /// Connects to and migrates the database, sets up the key set (a key file is loaded
    /// now and must be valid; a URL is fetched in the background so the server starts even
    /// while the auth server is down), and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let databases = db::open(&settings.database).await?;
        let mut metrics = Metrics::new();
        if let Some(readers) = &databases.sync_readers {
            metrics.observe_sqlite_readers(readers);
        }
        let metrics = Arc::new(metrics);

        let source = settings.key_source().context("the JWKS URL")?;
        tracing::info!(source = %source, "verification keys");
        let keys = JwksCache::builder(source)
            .refresh(settings.jwks.refresh)
            .cooldown(settings.jwks.cooldown)
            .fetch_timeout(settings.jwks.fetch_timeout)
            .retry(settings.jwks.retry)
            .user_agent(concat!("posts-server/", env!("CARGO_PKG_VERSION")))
            .observer(metrics.clone())
            .build()
            .context("cannot set up the key set")?;
        let refresher = if keys.is_file_backed() {
            keys.load()
                .await
                .context("cannot load the verification keys from the key file")?;
            keys.spawn_refresher(settings.jwks.refresh)
        } else {
            keys.spawn_refresher(Duration::ZERO)
        };
        let verifier = TokenVerifier::builder(
            keys.clone(),
            settings.token.issuer.clone(),
            settings.token.audience.clone(),
        )
        .leeway(settings.token.leeway)
        .build();
        let state = AppState {
            db: databases.reader,
            sync_readers: databases.sync_readers,
            inserter: Inserter::spawn(databases.writer.clone()),
            writer: databases.writer,
            keys,
            bearer: BearerAuth::new(verifier, crate::auth::bearer::REALM),
            metrics,
        };

        let token_url = settings.token.token_url().context("the token URL")?;
        let authorize_url = settings
            .token
            .authorize_url()
            .context("the authorization URL")?;
        let service = api::service();
        let docs = ApiDocs::build(&service, &token_url, &authorize_url).await?;
        let routes = docs
            .routes()
            .nest("/", service.into_endpoint())
            .with(BodyLimit::new(
                settings.server.max_body_bytes,
                settings.server.request_timeout,
            ))
            .data(state.clone())
            .with(HttpMetrics::new(state.metrics.clone()))
            .with(ProblemDetails)
            // The documents and Swagger UI answer every method; the rest is the document's.
            .with(poem_edge::AllowHeader::from_openapi(docs.spec()))
            .with(RequestLog)
            .boxed();

        let acceptor = TcpListener::bind(settings.server.bind)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .context("the listener has no socket address")?;
        // poem does not expose hyper's header read timeout; the acceptor times headers.
        let acceptor = HeaderTimeoutAcceptor::new(acceptor, settings.server.request_timeout);
        tracing::info!(
            address = %address,
            docs = %format!("http://{address}/docs"),
            token_url = %token_url,
            "posts-server listening"
        );
        Ok(Self {
            acceptor,
            address,
            state,
            routes,
            refresher,
            shutdown_grace: settings.server.shutdown_grace,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address actually bound.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes, then lets in-flight requests finish within the
    /// configured grace period.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let served = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.routes, signal, Some(self.shutdown_grace))
            .await;
        self.refresher.abort();
        let AppState { db, writer, .. } = self.state;
        for pool in [db, writer] {
            if let Err(error) = pool.close().await {
                tracing::warn!(%error, "closing the database pool failed");
            }
        }
        tracing::info!("posts-server stopped");
        served.context("the HTTP server failed")
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down; letting in-flight requests finish");
}
