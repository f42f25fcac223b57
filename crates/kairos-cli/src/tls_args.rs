//! `--tls-cert` and `--tls-key`, as the control plane and the runtime take them.

use std::path::PathBuf;

use anyhow::Result;
use kairos_api::tls::TlsListener;
use tokio::net::TcpListener;

#[derive(clap::Args)]
pub struct TlsArgs {
    /// Serve https:// with this certificate chain (PEM); needs --tls-key
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The listener through TLS when a certificate is given, else none.
    pub fn listener(&self, listener: TcpListener) -> Result<Result<TlsListener, TcpListener>> {
        Ok(match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(TlsListener::new(listener, cert, key)?),
            _ => Err(listener),
        })
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }
}
