//! One SMTP session (RFC 5321) over a stream we opened: greeting, EHLO,
//! STARTTLS, AUTH, and mail transactions. When the server offers PIPELINING
//! (RFC 2920), MAIL FROM, RCPT TO and DATA go out in one write and their
//! replies are read after; otherwise one command at a time. Every wait on the
//! server has a time limit.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::reply::{MAX_LINE, Reply, ReplyLines};

/// How long the server may take over each step.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To accept our connection.
    pub connect: Duration,
    /// To answer a command, and to greet us.
    pub reply: Duration,
    /// To take a message's content and answer its end. A server often checks
    /// the message before it answers, and giving up after it accepted would
    /// send the message twice: this should be generous.
    pub data: Duration,
}

/// Why a step of the session failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpError {
    /// The server answered a command with a 4xx or 5xx reply.
    Rejected { command: &'static str, reply: Reply },
    /// The session cannot go on: the connection failed, timed out, or the
    /// server said something that is not SMTP.
    Broken(String),
}

impl std::fmt::Display for SmtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtpError::Rejected { command, reply } => write!(f, "{command}: {reply}"),
            SmtpError::Broken(reason) => f.write_str(reason),
        }
    }
}

/// A TCP connection, in clear text or inside TLS.
pub enum SmtpStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for SmtpStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            SmtpStream::Plain(tcp) => std::pin::Pin::new(tcp).poll_read(cx, buf),
            SmtpStream::Tls(tls) => std::pin::Pin::new(tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SmtpStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            SmtpStream::Plain(tcp) => std::pin::Pin::new(tcp).poll_write(cx, buf),
            SmtpStream::Tls(tls) => std::pin::Pin::new(tls).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            SmtpStream::Plain(tcp) => std::pin::Pin::new(tcp).poll_flush(cx),
            SmtpStream::Tls(tls) => std::pin::Pin::new(tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            SmtpStream::Plain(tcp) => std::pin::Pin::new(tcp).poll_shutdown(cx),
            SmtpStream::Tls(tls) => std::pin::Pin::new(tls).poll_shutdown(cx),
        }
    }
}

/// What the server offered in its EHLO reply, of what we use.
#[derive(Debug, Default, Clone, Copy)]
struct Extensions {
    pipelining: bool,
    starttls: bool,
    auth_plain: bool,
    auth_login: bool,
}

impl Extensions {
    fn from_ehlo(reply: &Reply) -> Self {
        let mut extensions = Self::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split([' ', '=']).filter(|w| !w.is_empty());
            match words.next().map(str::to_ascii_uppercase).as_deref() {
                Some("PIPELINING") => extensions.pipelining = true,
                Some("STARTTLS") => extensions.starttls = true,
                Some("AUTH") => {
                    for mechanism in words {
                        extensions.auth_plain |= mechanism.eq_ignore_ascii_case("PLAIN");
                        extensions.auth_login |= mechanism.eq_ignore_ascii_case("LOGIN");
                    }
                }
                _ => {}
            }
        }
        extensions
    }
}

pub struct Session {
    stream: SmtpStream,
    /// Bytes read from the server and not yet taken as reply lines.
    input: Vec<u8>,
    extensions: Extensions,
    timeouts: Timeouts,
    /// Set when the session must not be used again.
    broken: bool,
    /// Whether the server has answered anything in the current transaction.
    answered: bool,
}

impl Session {
    /// Reads the greeting and says EHLO.
    pub async fn start(stream: SmtpStream, hello: &str, timeouts: Timeouts) -> Result<Self, SmtpError> {
        let mut session = Session {
            stream,
            input: Vec::with_capacity(1024),
            extensions: Extensions::default(),
            timeouts,
            broken: false,
            answered: false,
        };
        let greeting = session.read_reply(timeouts.reply).await?;
        expect_completion("the greeting", greeting)?;
        session.ehlo(hello).await?;
        Ok(session)
    }

    /// Says EHLO; a server that does not know it (500 or 502, RFC 5321
    /// 3.2) gets HELO and is taken to offer no extensions.
    async fn ehlo(&mut self, hello: &str) -> Result<(), SmtpError> {
        self.extensions = match self.command("EHLO", &format!("EHLO {hello}\r\n")).await {
            Ok(reply) => Extensions::from_ehlo(&reply),
            Err(SmtpError::Rejected { reply, .. }) if matches!(reply.code, 500 | 502) => {
                self.command("HELO", &format!("HELO {hello}\r\n")).await?;
                Extensions::default()
            }
            Err(error) => return Err(error),
        };
        Ok(())
    }

    /// Upgrades the session to TLS (RFC 3207) and says EHLO again.
    pub async fn starttls(
        mut self,
        connector: &TlsConnector,
        server_name: ServerName<'static>,
        hello: &str,
    ) -> Result<Self, SmtpError> {
        // Never on in clear text: whoever can strip STARTTLS from the EHLO
        // reply, or refuse it, could otherwise read the mail and the login.
        if !self.extensions.starttls {
            return Err(SmtpError::Broken("STARTTLS is required, and the server does not offer it".into()));
        }
        let reply = match self.command("STARTTLS", "STARTTLS\r\n").await {
            Err(SmtpError::Rejected { reply, .. }) => {
                return Err(SmtpError::Broken(format!("STARTTLS is required, and the server refused it: {reply}")));
            }
            reply => reply?,
        };
        if reply.code != 220 {
            return Err(SmtpError::Broken(format!("STARTTLS: unexpected reply {reply}")));
        }
        // Anything sent before the handshake would be taken as coming from
        // inside TLS (a known injection attack): refuse it.
        if !self.input.is_empty() {
            return Err(SmtpError::Broken("the server sent data after its STARTTLS reply".into()));
        }
        let SmtpStream::Plain(tcp) = self.stream else {
            return Err(SmtpError::Broken("STARTTLS inside TLS".into()));
        };
        let handshake = tokio::time::timeout(self.timeouts.reply, connector.connect(server_name, tcp));
        let tls = handshake
            .await
            .map_err(|_| SmtpError::Broken("TLS handshake timed out".into()))?
            .map_err(|e| SmtpError::Broken(handshake_failure(&e)))?;
        self.stream = SmtpStream::Tls(Box::new(tls));
        self.ehlo(hello).await?;
        Ok(self)
    }

    /// Logs in with AUTH PLAIN, or AUTH LOGIN when that is all the server offers.
    pub async fn login(&mut self, username: &str, password: &str) -> Result<(), SmtpError> {
        let reply = if self.extensions.auth_plain {
            let token = BASE64.encode(format!("\0{username}\0{password}"));
            self.command("AUTH PLAIN", &format!("AUTH PLAIN {token}\r\n")).await?
        } else if self.extensions.auth_login {
            for (step, answer) in
                [("AUTH LOGIN", "AUTH LOGIN".to_string()), ("AUTH LOGIN username", BASE64.encode(username))]
            {
                let reply = self.command(step, &format!("{answer}\r\n")).await?;
                if reply.code != 334 {
                    return Err(SmtpError::Broken(format!("{step}: unexpected reply {reply}")));
                }
            }
            self.command("AUTH LOGIN password", &format!("{}\r\n", BASE64.encode(password))).await?
        } else {
            return Err(SmtpError::Broken("the server offers neither AUTH PLAIN nor AUTH LOGIN".into()));
        };
        expect_completion("AUTH", reply).map(drop)
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether the server answered anything in the current transaction: if
    /// not, it cannot have taken the message.
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// Whether the server offers PIPELINING (RFC 2920).
    pub fn pipelining(&self) -> bool {
        self.extensions.pipelining
    }

    /// Sends one message one command at a time, for a server without
    /// PIPELINING. `data` is the message in wire form: CRLF line ends,
    /// dot-stuffed, ending with the `.` line.
    pub async fn send_stepwise(&mut self, from: &str, to: &str, data: &[u8]) -> Result<(), SmtpError> {
        self.answered = false;
        let sent = match self.envelope_stepwise(from, to).await {
            Ok(()) => self.send_content(data).await,
            Err(refused @ SmtpError::Rejected { .. }) => Err(self.forget_transaction(refused).await),
            Err(broken) => Err(broken),
        };
        self.settle(sent)
    }

    async fn envelope_stepwise(&mut self, from: &str, to: &str) -> Result<(), SmtpError> {
        let mail = self.command("MAIL FROM", &format!("MAIL FROM:<{from}>\r\n")).await?;
        expect_completion("MAIL FROM", mail)?;
        let rcpt = self.command("RCPT TO", &format!("RCPT TO:<{to}>\r\n")).await?;
        expect_completion("RCPT TO", rcpt)?;
        expect_data_start(self.command("DATA", "DATA\r\n").await?)
    }

    /// Starts a pipelined transaction: MAIL FROM, RCPT TO and DATA in one
    /// write. `read_envelope` then reads their replies.
    pub async fn write_envelope(&mut self, from: &str, to: &str) -> Result<(), SmtpError> {
        self.answered = false;
        let written = self.write(envelope(from, to).as_bytes(), self.timeouts.reply).await;
        self.settle(written)
    }

    /// Reads the replies to a pipelined envelope: Ok when the server waits
    /// for the content.
    pub async fn read_envelope(&mut self) -> Result<(), SmtpError> {
        let read = self.read_envelope_replies().await;
        let read = match read {
            Err(refused @ SmtpError::Rejected { .. }) => Err(self.forget_transaction(refused).await),
            other => other,
        };
        self.settle(read)
    }

    async fn read_envelope_replies(&mut self) -> Result<(), SmtpError> {
        let mail = self.read_reply(self.timeouts.reply).await?;
        let rcpt = self.read_reply(self.timeouts.reply).await?;
        let data_start = self.read_reply(self.timeouts.reply).await?;
        let envelope = expect_completion("MAIL FROM", mail).and_then(|_| expect_completion("RCPT TO", rcpt));
        match (envelope, data_start.code) {
            (Ok(_), _) => expect_data_start(data_start),
            (Err(refused), 354) => {
                // The server took DATA although the envelope failed (RFC 2920
                // §3.1 allows it): end the data at once, and send nothing.
                self.write(b".\r\n", self.timeouts.reply).await?;
                self.read_reply(self.timeouts.data).await?;
                Err(refused)
            }
            (Err(refused), _) => Err(refused),
        }
    }

    /// Sends the content of a transaction whose envelope was accepted, and
    /// reads the server's verdict. With `next_envelope`, the next message's
    /// envelope follows the content in the same flight (RFC 2920 allows the
    /// content to start a group); its replies are for `read_envelope`.
    pub async fn finish(&mut self, data: &[u8], next_envelope: Option<(&str, &str)>) -> Result<(), SmtpError> {
        let finished = match next_envelope {
            Some((from, to)) => {
                let written = self.write_all(&[data, envelope(from, to).as_bytes()], self.timeouts.data).await;
                match written {
                    Ok(()) => self.read_final_reply().await,
                    Err(error) => Err(error),
                }
            }
            None => self.send_content(data).await,
        };
        if next_envelope.is_some() {
            self.answered = false;
        }
        self.settle(finished)
    }

    async fn send_content(&mut self, data: &[u8]) -> Result<(), SmtpError> {
        self.write(data, self.timeouts.data).await?;
        self.read_final_reply().await
    }

    /// The verdict on a message's content. The transaction is over whatever
    /// it says (RFC 5321 §4.1.1.4), so no RSET follows a refusal.
    async fn read_final_reply(&mut self) -> Result<(), SmtpError> {
        let reply = self.read_reply(self.timeouts.data).await?;
        expect_completion("end of data", reply).map(drop)
    }

    /// After a refused envelope, RSET so the session can go on; the refusal
    /// is what the caller hears.
    async fn forget_transaction(&mut self, refused: SmtpError) -> SmtpError {
        let reset = self.command("RSET", "RSET\r\n").await.and_then(|reply| expect_completion("RSET", reply));
        self.broken |= reset.is_err();
        refused
    }

    /// A session that said something SMTP does not allow is not used again.
    fn settle<T>(&mut self, result: Result<T, SmtpError>) -> Result<T, SmtpError> {
        self.broken |= matches!(result, Err(SmtpError::Broken(_)));
        result
    }

    /// Writes a command and reads its reply. `name` names it in errors (the
    /// line itself may hold a password).
    async fn command(&mut self, name: &'static str, line: &str) -> Result<Reply, SmtpError> {
        self.write(line.as_bytes(), self.timeouts.reply).await?;
        let reply = self.read_reply(self.timeouts.reply).await?;
        if reply.code >= 400 { Err(SmtpError::Rejected { command: name, reply }) } else { Ok(reply) }
    }

    async fn write(&mut self, bytes: &[u8], limit: Duration) -> Result<(), SmtpError> {
        self.write_all(&[bytes], limit).await
    }

    async fn write_all(&mut self, pieces: &[&[u8]], limit: Duration) -> Result<(), SmtpError> {
        let write = async {
            for piece in pieces {
                self.stream.write_all(piece).await?;
            }
            self.stream.flush().await
        };
        let written = tokio::time::timeout(limit, write).await;
        self.broken_unless(match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("cannot write to the server: {error}")),
            Err(_) => Err(format!("the server took no data for {} s", limit.as_secs())),
        })
    }

    async fn read_reply(&mut self, limit: Duration) -> Result<Reply, SmtpError> {
        let read = tokio::time::timeout(limit, self.read_reply_lines()).await;
        let reply = self.broken_unless(
            read.unwrap_or_else(|_| Err(format!("no reply from the server in {} s", limit.as_secs()))),
        )?;
        self.answered = true;
        Ok(reply)
    }

    fn broken_unless<T>(&mut self, result: Result<T, String>) -> Result<T, SmtpError> {
        result.map_err(|reason| {
            self.broken = true;
            SmtpError::Broken(reason)
        })
    }

    async fn read_reply_lines(&mut self) -> Result<Reply, String> {
        let mut reply = ReplyLines::default();
        loop {
            let line = self.read_line().await?;
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(done) = reply.push(line)? {
                return Ok(done);
            }
        }
    }

    /// One line, with its line end, of at most `MAX_LINE` bytes.
    async fn read_line(&mut self) -> Result<Vec<u8>, String> {
        let mut scanned = 0;
        loop {
            if let Some(at) = self.input[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + at + 1;
                if end > MAX_LINE {
                    break;
                }
                return Ok(self.input.drain(..end).collect());
            }
            scanned = self.input.len();
            if scanned > MAX_LINE {
                break;
            }
            self.input.reserve(MAX_LINE);
            match self.stream.read_buf(&mut self.input).await {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(_) => {}
                Err(error) => return Err(format!("cannot read from the server: {error}")),
            }
        }
        Err(format!("the server sent a line longer than {MAX_LINE} bytes"))
    }
}

/// Why a TLS handshake failed. rustls names an unknown issuer only by its
/// variant; the admin needs to hear what to do about it.
pub fn handshake_failure(error: &std::io::Error) -> String {
    use tokio_rustls::rustls::{CertificateError, Error};
    match error.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            "TLS handshake failed: the server's certificate is not signed by a trusted CA (add its CA to SMTP_CA_FILE)"
                .into()
        }
        _ => format!("TLS handshake failed: {error}"),
    }
}

/// Passes a 2xx reply; a 4xx or 5xx is the server's refusal; anything else
/// is not how SMTP goes.
fn expect_completion(command: &'static str, reply: Reply) -> Result<Reply, SmtpError> {
    match reply.code {
        200..=299 => Ok(reply),
        400..=599 => Err(SmtpError::Rejected { command, reply }),
        _ => Err(SmtpError::Broken(format!("{command}: unexpected reply {reply}"))),
    }
}

fn envelope(from: &str, to: &str) -> String {
    format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n")
}

fn expect_data_start(reply: Reply) -> Result<(), SmtpError> {
    match reply.code {
        354 => Ok(()),
        400..=599 => Err(SmtpError::Rejected { command: "DATA", reply }),
        _ => Err(SmtpError::Broken(format!("DATA: unexpected reply {reply}"))),
    }
}
