//! TCP (and TLS) connections dialled by the host for the `net` interface.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::egress::{EgressPolicy, ResolveError};
use crate::types::NetError;

pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Resolves through the policy and dials the permitted addresses in turn, never the name again.
pub async fn connect(
    policy: &EgressPolicy,
    host: &str,
    port: u16,
    tls: bool,
    timeout: Duration,
) -> Result<Box<dyn Stream>, NetError> {
    let addrs = policy.resolve(host, port).await.map_err(|e| match e {
        ResolveError::Denied(denied) => NetError::Denied(denied.to_string()),
        ResolveError::Unresolved(name) => NetError::Unresolved(name),
    })?;
    let mut last_error = String::new();
    let mut tcp = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                tcp = Some(stream);
                break;
            }
            Ok(Err(e)) => last_error = format!("{addr}: {e}"),
            Err(_) => last_error = format!("{addr}: connect timed out"),
        }
    }
    let Some(tcp) = tcp else {
        return Err(if last_error.ends_with("timed out") {
            NetError::Timeout
        } else {
            NetError::Unreachable(last_error)
        });
    };
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok(Box::new(tcp));
    }
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| NetError::Tls(format!("invalid server name {host:?}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    let stream = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| NetError::Timeout)?
        .map_err(|e| {
            // rustls reports a refused certificate or protocol as InvalidData; anything else is
            // the connection failing mid-handshake, which is worth retrying.
            if e.kind() == std::io::ErrorKind::InvalidData {
                NetError::Tls(e.to_string())
            } else {
                NetError::Unreachable(format!("{host}:{port}: TLS handshake interrupted: {e}"))
            }
        })?;
    Ok(Box::new(stream))
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}
