//! SMTP over connections we open ourselves. lettre's pooled transport never
//! sets TCP_NODELAY and writes a message's end in a second small write, so
//! every message waits ~40 ms for the server's delayed ACK (Nagle): about 22
//! messages per second per connection. We open the socket, set TCP_NODELAY,
//! and drive it with lettre's own `AsyncSmtpConnection`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::SendError;
use crate::config::{SmtpSecurity, SmtpSettings};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Servers drop idle sessions (often after 60 s or more); reusing one that old
/// risks a failed send, so it is closed instead.
const MAX_IDLE: Duration = Duration::from_secs(30);

pub struct SmtpPool {
    settings: SmtpSettings,
    hello: ClientId,
    credentials: Option<Credentials>,
    tls_config: Arc<ClientConfig>,
    /// Bounds the open sessions (`SEND_CONCURRENCY`).
    sessions: Semaphore,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpPool {
    pub fn new(settings: &SmtpSettings, max_sessions: usize) -> Self {
        let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let tls_config =
            ClientConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        let credentials = settings.username.as_ref().map(|user| {
            let password = settings.password.as_ref().map(|p| p.expose_secret().to_string()).unwrap_or_default();
            Credentials::new(user.clone(), password)
        });
        Self {
            settings: settings.clone(),
            hello: ClientId::default(),
            credentials,
            tls_config: Arc::new(tls_config),
            sessions: Semaphore::new(max_sessions),
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn describe(&self) -> String {
        let security = match self.settings.security {
            SmtpSecurity::ImplicitTls => "TLS",
            SmtpSecurity::StartTls => "STARTTLS",
            SmtpSecurity::None => "no TLS",
        };
        format!("SMTP {}:{} ({security})", self.settings.host, self.settings.port)
    }

    /// Sends one message over an idle session, or a new one. A reused session
    /// that fails before the server answered anything was probably closed by
    /// the server while idle; the message is tried once more on a fresh one.
    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        let envelope = message.envelope();
        let body = message.formatted();
        let _session = self.sessions.acquire().await.map_err(|_| SendError::Transient("mailer closed".into()))?;
        if let Some(mut reused) = self.take_idle() {
            match reused.send(envelope, &body).await {
                Ok(_) => {
                    self.put_idle(reused);
                    return Ok(());
                }
                Err(error) if error.status().is_some() => return Err(super::classify(&error)),
                Err(_) => {}
            }
        }
        let mut fresh = self.connect().await?;
        fresh.send(envelope, &body).await.map_err(|e| super::classify(&e))?;
        self.put_idle(fresh);
        Ok(())
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some((connection, since)) = idle.pop() {
            if since.elapsed() < MAX_IDLE && !connection.has_broken() {
                return Some(connection);
            }
        }
        None
    }

    fn put_idle(&self, connection: AsyncSmtpConnection) {
        if !connection.has_broken() {
            self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((connection, Instant::now()));
        }
    }

    /// Opens a session: TCP (with TCP_NODELAY), TLS as configured, EHLO, login.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let (host, port) = (self.settings.host.as_str(), self.settings.port);
        let unreachable = |reason: String| SendError::Transient(format!("cannot connect to {host}:{port}: {reason}"));
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        tcp.set_nodelay(true).map_err(|e| unreachable(e.to_string()))?;
        let stream: Box<dyn AsyncTokioStream> = match self.settings.security {
            SmtpSecurity::ImplicitTls => {
                let server_name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| unreachable(e.to_string()))?;
                let tls = TlsConnector::from(self.tls_config.clone())
                    .connect(server_name, tcp)
                    .await
                    .map_err(|e| unreachable(format!("TLS handshake failed: {e}")))?;
                Box::new(ImplicitTlsStream(tls))
            }
            SmtpSecurity::StartTls | SmtpSecurity::None => Box::new(tcp),
        };
        let classify = |e: lettre::transport::smtp::Error| super::classify(&e);
        let mut connection =
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await.map_err(classify)?;
        if self.settings.security == SmtpSecurity::StartTls {
            let parameters = TlsParameters::new(host.to_string()).map_err(classify)?;
            connection.starttls(parameters, &self.hello).await.map_err(classify)?;
        }
        if let Some(credentials) = &self.credentials {
            connection.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await.map_err(classify)?;
        }
        Ok(connection)
    }
}

/// A TLS session from its first byte (`smtps://`), handed to lettre as its stream.
#[derive(Debug)]
struct ImplicitTlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for ImplicitTlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for ImplicitTlsStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ImplicitTlsStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
