//! `terpadu serve`: the unified registry for planners and BI tools over the network.
//!
//! Two standard protocols over one guarded [`core`]:
//! - [`postgres`]: the PostgreSQL wire protocol (psql, DBeaver, ODBC, Metabase, psycopg);
//! - [`flight`]: Arrow Flight SQL (ADBC, pyarrow, Polars).
//!
//! Both authenticate against the users of the server's [`config`], resolve the user's role
//! into a catalog of masked, region-scoped views ([`crate::catalog::policy`]) over a pinned
//! workspace version, plan statements read-only within memory, time and concurrency limits,
//! and write one [`audit`] line per statement. No protocol code touches a table.

pub mod audit;
pub mod config;
pub mod core;
pub mod flight;
pub mod postgres;

use std::net::SocketAddr;
use std::sync::Arc;

use self::config::ServeConfig;
use self::core::Core;
use crate::workspace::Workspace;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No users are declared and `--insecure-local` was not given.
    #[error(
        "refusing to start without users: declare [[users]] in the server config (see `terpadu hash-password`), or pass --insecure-local to serve this machine only"
    )]
    NoUsers,
    /// `--insecure-local` with an address other than loopback.
    #[error("--insecure-local serves this machine only, but {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    /// A listener could not bind.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// Neither protocol is enabled.
    #[error("both listeners are off: set [server] postgres or flight")]
    NothingToServe,
    /// The Flight SQL server failed.
    #[error("Flight SQL server: {0}")]
    Flight(String),
}

/// Where the server listens, once bound.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// PostgreSQL listener.
    pub postgres: Option<SocketAddr>,
    /// Flight SQL listener.
    pub flight: Option<SocketAddr>,
}

/// Runs the server until `shutdown` becomes true (SIGTERM in the CLI), then drains: the
/// listeners close, running statements finish. `on_bound` is told the bound addresses.
pub async fn run(
    workspace: Workspace,
    config: ServeConfig,
    insecure_local: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
    on_bound: impl FnOnce(Bound),
) -> Result<(), StartError> {
    if config.users.is_empty() && !insecure_local {
        return Err(StartError::NoUsers);
    }
    if config.postgres.is_none() && config.flight.is_none() {
        return Err(StartError::NothingToServe);
    }
    if insecure_local {
        for address in config.postgres.iter().chain(config.flight.iter()) {
            if !address.ip().is_loopback() {
                return Err(StartError::NotLoopback(*address));
            }
        }
        tracing::warn!(
            "Serving without authentication (--insecure-local): every login is a masked planner, on loopback only."
        );
    }
    // Both ring and aws-lc-rs are compiled in (through different dependencies), so rustls
    // cannot pick a process-wide provider by itself; tonic's TLS needs one.
    let _ = pgwire::tokio::tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let tls = config.tls.as_ref().map(load_tls).transpose()?;
    let core = Arc::new(Core::new(workspace, config.clone(), insecure_local));

    let pg_listener = bind(config.postgres).await?;
    let flight_listener = bind(config.flight).await?;
    let bound = Bound {
        postgres: pg_listener.as_ref().and_then(|l| l.local_addr().ok()),
        flight: flight_listener.as_ref().and_then(|l| l.local_addr().ok()),
    };
    on_bound(bound);
    tracing::info!(postgres = ?bound.postgres, flight = ?bound.flight, tls = tls.is_some(), "Serving the registry.");

    let pg_task = pg_listener.map(|listener| {
        let rustls = tls.as_ref().map(|t| t.rustls.clone());
        tokio::spawn(postgres::serve(
            core.clone(),
            listener,
            rustls,
            shutdown.clone(),
        ))
    });
    let flight_task = flight_listener.map(|listener| {
        let mut builder = tonic::transport::Server::builder();
        let service = flight::Service::server(core.clone());
        let mut stop = shutdown.clone();
        let tls_config = tls.as_ref().map(|t| t.tonic.clone());
        tokio::spawn(async move {
            if let Some(tls) = tls_config {
                builder = builder
                    .tls_config(tls)
                    .map_err(|e| StartError::Tls(e.to_string()))?;
            }
            // Without TCP_NODELAY every small reply waits for the client's delayed ACK:
            // 40 ms on each Flight SQL call (measured with contrib/bench-serve.py).
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            builder
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .map_err(|e| StartError::Flight(e.to_string()))
        })
    });
    if let Some(task) = flight_task {
        match task.await {
            Ok(result) => result?,
            Err(e) => return Err(StartError::Flight(e.to_string())),
        }
    }
    if let Some(task) = pg_task {
        let _ = task.await;
    }
    tracing::info!("Server stopped.");
    Ok(())
}

/// A listener on `address`, if the protocol is enabled.
async fn bind(address: Option<SocketAddr>) -> Result<Option<tokio::net::TcpListener>, StartError> {
    match address {
        Some(address) => tokio::net::TcpListener::bind(address)
            .await
            .map(Some)
            .map_err(|e| StartError::Bind(address, e)),
        None => Ok(None),
    }
}

struct Tls {
    rustls: Arc<pgwire::tokio::tokio_rustls::rustls::ServerConfig>,
    tonic: tonic::transport::ServerTlsConfig,
}

fn load_tls(paths: &config::TlsPaths) -> Result<Tls, StartError> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| StartError::Tls(format!("cannot read {}: {e}", p.display())))
    };
    let cert_pem = read(&paths.cert)?;
    let key_pem = read(&paths.key)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StartError::Tls(format!("{}: {e}", paths.cert.display())))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| StartError::Tls(format!("{}: {e}", paths.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    let tonic = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(&cert_pem, &key_pem));
    Ok(Tls {
        rustls: Arc::new(config),
        tonic,
    })
}
