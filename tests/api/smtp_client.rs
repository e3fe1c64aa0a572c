//! The SMTP client against scripted servers: with and without PIPELINING,
//! refusals at each step, servers that misbehave, and TLS (STARTTLS and
//! implicit) with certificates from a CA made in the test. Each server plays
//! one script per connection and records what the client wrote.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickermail::config::{MailTransportSettings, SmtpSecurity, SmtpSettings};
use tickermail::mailer::{
    AlwaysOpen, Email, EmailLinks, Mailer, MessageOrigin, Rejection, SendError, confirmation_content,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// One step of a server's side of a conversation.
#[derive(Debug, Clone)]
enum Step {
    /// Write these bytes.
    Say(String),
    /// Read one line, which must start with this.
    Expect(&'static str),
    /// Like `Expect`, and nothing more may have been sent yet: the client
    /// must wait for the reply (no PIPELINING offered).
    ExpectAlone(&'static str),
    /// Read the message up to its `.` line.
    ReadData,
    /// Read the first byte of a TLS handshake (a ClientHello record).
    ExpectTlsHandshake,
    /// Take the TLS handshake with this certificate, and speak TLS from then on.
    Tls(Arc<ServerConfig>),
    /// Hang up.
    Close,
}

use Step::{Close, Expect, ExpectAlone, ExpectTlsHandshake, ReadData, Say, Tls};

/// A connection, in clear text or inside TLS.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

fn say(text: &str) -> Step {
    Say(text.to_string())
}

/// What a scripted server saw, for the test to check.
#[derive(Debug, Default)]
struct Transcript {
    lines: Vec<String>,
    /// Messages received, un-dot-stuffed.
    messages: Vec<String>,
    /// Steps that went other than scripted.
    deviations: Vec<String>,
    /// How many lines had been read when a TLS handshake completed.
    tls_after_lines: Option<usize>,
}

struct ScriptedServer {
    port: u16,
    transcript: Arc<Mutex<Transcript>>,
}

impl ScriptedServer {
    /// Plays `scripts[0]` on the first connection, `scripts[1]` on the second…
    async fn start(scripts: Vec<Vec<Step>>) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let transcript = Arc::new(Mutex::new(Transcript::default()));
        let recording = transcript.clone();
        tokio::spawn(async move {
            for script in scripts {
                let Ok((stream, _)) = listener.accept().await else { return };
                let recording = recording.clone();
                tokio::spawn(async move {
                    let mut reader: BufReader<Box<dyn Connection>> = BufReader::new(Box::new(stream));
                    for step in script {
                        let deviation = match step {
                            Say(text) => reader.write_all(text.as_bytes()).await.err().map(|e| e.to_string()),
                            Expect(prefix) | ExpectAlone(prefix) => {
                                let mut line = String::new();
                                reader.read_line(&mut line).await.ok();
                                let alone = reader.buffer().is_empty();
                                recording.lock().unwrap().lines.push(line.trim_end().to_string());
                                if !line.starts_with(prefix) {
                                    Some(format!("expected {prefix}, got {line:?}"))
                                } else if matches!(step, ExpectAlone(_)) && !alone {
                                    Some(format!("the client sent more after {prefix} without waiting"))
                                } else {
                                    None
                                }
                            }
                            ReadData => {
                                let mut message = String::new();
                                loop {
                                    let mut line = String::new();
                                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 || line == ".\r\n" {
                                        break;
                                    }
                                    message.push_str(line.strip_prefix('.').unwrap_or(&line));
                                }
                                recording.lock().unwrap().messages.push(message);
                                None
                            }
                            ExpectTlsHandshake => {
                                let first = reader.read_u8().await.ok();
                                (first != Some(0x16)).then(|| format!("expected a TLS handshake, got {first:?}"))
                            }
                            Tls(_) if !reader.buffer().is_empty() => {
                                Some("the client sent more before the TLS handshake".to_string())
                            }
                            Tls(config) => match TlsAcceptor::from(config).accept(reader.into_inner()).await {
                                Ok(tls) => {
                                    reader = BufReader::new(Box::new(tls));
                                    let mut recording = recording.lock().unwrap();
                                    recording.tls_after_lines = Some(recording.lines.len());
                                    None
                                }
                                Err(error) => {
                                    recording.lock().unwrap().deviations.push(format!("TLS handshake: {error}"));
                                    return;
                                }
                            },
                            Close => return,
                        };
                        if let Some(deviation) = deviation {
                            recording.lock().unwrap().deviations.push(deviation);
                            return;
                        }
                    }
                    // Keep the connection open, as a server between messages does.
                    let mut rest = String::new();
                    while reader.read_line(&mut rest).await.unwrap_or(0) > 0 {}
                });
            }
        });
        ScriptedServer { port, transcript }
    }

    fn mailer(&self) -> Mailer {
        self.mailer_with(SmtpSecurity::None, None)
    }

    fn mailer_with(&self, security: SmtpSecurity, login: Option<(&str, &str)>) -> Mailer {
        self.mailer_from(SmtpSettings {
            username: login.map(|(username, _)| username.to_string()),
            password: login.map(|(_, password)| password.to_string().into()),
            ..self.settings(security)
        })
    }

    /// A mailer that trusts `roots` besides the built-in ones.
    fn mailer_trusting(&self, security: SmtpSecurity, roots: &[CertificateDer<'static>]) -> Mailer {
        self.mailer_from(SmtpSettings { extra_roots: roots.to_vec(), ..self.settings(security) })
    }

    fn settings(&self, security: SmtpSecurity) -> SmtpSettings {
        SmtpSettings {
            host: "localhost".into(),
            port: self.port,
            security,
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
            extra_roots: Vec::new(),
        }
    }

    fn mailer_from(&self, settings: SmtpSettings) -> Mailer {
        Mailer::new(&MailTransportSettings::Smtp(settings), 1).unwrap()
    }

    fn transcript(&self) -> std::sync::MutexGuard<'_, Transcript> {
        self.transcript.lock().unwrap()
    }
}

fn email(to: &str) -> Email {
    let links = EmailLinks {
        site_name: "Stock News".into(),
        base_url: "https://news.example".into(),
        from: "Stock News <news@stocknews.example>".parse().unwrap(),
        time_zone: chrono_tz::UTC,
        dkim: None,
    };
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    let content = confirmation_content(&links, "token", expires).unwrap();
    content.into_message(&links, to, "<1@stocknews.example>".into()).unwrap()
}

/// Sends one message, failing the test rather than waiting on a stuck conversation.
async fn send(mailer: &Mailer, to: &str) -> Result<(), SendError> {
    tokio::time::timeout(
        Duration::from_secs(10),
        mailer.send(email(to), MessageOrigin::TEST_SEND, std::sync::Arc::new(AlwaysOpen)),
    )
    .await
    .expect("the conversation got stuck")
}

const GREETING: &str = "220 mx.example ESMTP\r\n";
const EHLO_PIPELINING: &str = "250-mx.example\r\n250-SIZE 10240000\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
const EHLO_PLAIN: &str = "250-mx.example\r\n250 8BITMIME\r\n";

/// Greeting and EHLO, offering PIPELINING or not.
fn opening(pipelining: bool) -> Vec<Step> {
    vec![say(GREETING), Expect("EHLO "), say(if pipelining { EHLO_PIPELINING } else { EHLO_PLAIN })]
}

/// A pipelined envelope: all three commands read before any reply is written.
fn pipelined_envelope(replies: &str) -> Vec<Step> {
    vec![Expect("MAIL FROM:<news@stocknews.example>"), Expect("RCPT TO:<"), Expect("DATA"), say(replies)]
}

/// One message to ann@example.com, each command waiting for its reply.
fn stepwise_transaction() -> Vec<Step> {
    vec![
        ExpectAlone("MAIL FROM:"),
        say("250 ok\r\n"),
        ExpectAlone("RCPT TO:<ann@example.com>"),
        say("250 ok\r\n"),
        ExpectAlone("DATA"),
        say("354 go ahead\r\n"),
        ReadData,
        say("250 queued\r\n"),
    ]
}

fn script(parts: &[Vec<Step>]) -> Vec<Step> {
    parts.concat()
}

#[tokio::test]
async fn with_pipelining_the_envelope_goes_in_one_write_and_the_session_is_reused() {
    let accepted = pipelined_envelope("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
    let end = vec![ReadData, say("250-2.0.0 queued\r\n250 as 12345\r\n")];
    let server =
        ScriptedServer::start(vec![script(&[opening(true), accepted.clone(), end.clone(), accepted, end])]).await;
    let mailer = server.mailer();
    send(&mailer, "ann@example.com").await.unwrap();
    send(&mailer, "bob@example.com").await.unwrap();
    let transcript = server.transcript();
    assert!(transcript.deviations.is_empty(), "{:?}", transcript.deviations);
    assert_eq!(transcript.messages.len(), 2, "both messages over one connection");
    assert!(transcript.messages[0].contains("To: ann@example.com\r\n"), "{}", transcript.messages[0]);
    assert!(transcript.lines.contains(&"RCPT TO:<bob@example.com>".to_string()));
}

#[tokio::test]
async fn with_pipelining_a_queued_message_s_envelope_follows_the_content_before_it() {
    // The server answers the first message only after it has read the second
    // one's envelope: a client that waited in between would get stuck.
    let server = ScriptedServer::start(vec![script(&[
        opening(true),
        pipelined_envelope("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
        vec![ReadData],
        pipelined_envelope("250 queued\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n"),
        vec![ReadData, say("550 5.1.1 no such user\r\n")],
    ])])
    .await;
    let mailer = server.mailer();
    let (first, second) = tokio::join!(send(&mailer, "ann@example.com"), send(&mailer, "bob@example.com"));
    first.unwrap();
    assert!(matches!(second, Err(SendError::Rejected { rejection: Rejection::MailboxUnknown, .. })), "{second:?}");
    let transcript = server.transcript();
    assert!(transcript.deviations.is_empty(), "{:?}", transcript.deviations);
    assert_eq!(transcript.messages.len(), 2);
}

#[tokio::test]
async fn without_pipelining_each_command_waits_for_its_reply() {
    let server = ScriptedServer::start(vec![script(&[opening(false), stepwise_transaction()])]).await;
    send(&server.mailer(), "ann@example.com").await.unwrap();
    let transcript = server.transcript();
    assert!(transcript.deviations.is_empty(), "{:?}", transcript.deviations);
    assert_eq!(transcript.messages.len(), 1);
}

#[tokio::test]
async fn a_server_that_does_not_know_ehlo_is_greeted_with_helo() {
    let server = ScriptedServer::start(vec![script(&[
        vec![
            say("220 old.example SMTP\r\n"),
            ExpectAlone("EHLO"),
            say("502 5.5.2 command not recognized\r\n"),
            ExpectAlone("HELO"),
            say("250 old.example\r\n"),
        ],
        stepwise_transaction(),
    ])])
    .await;
    send(&server.mailer(), "ann@example.com").await.unwrap();
    let transcript = server.transcript();
    assert!(transcript.deviations.is_empty(), "{:?}", transcript.deviations);
    assert_eq!(transcript.messages.len(), 1);
}

#[tokio::test]
async fn a_refused_recipient_bounces_a_busy_one_is_retried_and_the_session_goes_on() {
    let server = ScriptedServer::start(vec![script(&[
        opening(true),
        pipelined_envelope("250 ok\r\n550 5.1.1 no such user\r\n554 5.5.1 no valid recipients\r\n"),
        vec![Expect("RSET"), say("250 ok\r\n")],
        pipelined_envelope("250 ok\r\n451 4.2.0 mailbox busy\r\n554 5.5.1 no valid recipients\r\n"),
        vec![Expect("RSET"), say("250 ok\r\n")],
        // A server that takes DATA although the recipient failed gets an
        // empty message, never the content.
        pipelined_envelope("250 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n"),
        vec![Expect("."), say("554 5.5.1 no valid recipients\r\n"), Expect("RSET"), say("250 ok\r\n")],
        pipelined_envelope("250 ok\r\n250 ok\r\n354 go ahead\r\n"),
        vec![ReadData, say("250 queued\r\n")],
    ])])
    .await;
    let mailer = server.mailer();
    let bounced = send(&mailer, "gone@example.com").await.unwrap_err();
    assert!(
        matches!(&bounced, SendError::Rejected { rejection: Rejection::MailboxUnknown, reply } if reply.contains("550 5.1.1 no such user"))
    );
    let busy = send(&mailer, "busy@example.com").await.unwrap_err();
    assert!(matches!(&busy, SendError::Transient(reply) if reply.contains("451 4.2.0 mailbox busy")), "{busy:?}");
    let bounced = send(&mailer, "gone@example.com").await.unwrap_err();
    assert!(matches!(bounced, SendError::Rejected { rejection: Rejection::MailboxUnknown, .. }));
    send(&mailer, "ann@example.com").await.unwrap();
    let transcript = server.transcript();
    assert!(transcript.deviations.is_empty(), "{:?}", transcript.deviations);
    assert_eq!(transcript.messages.len(), 1, "only the accepted message's content was sent");
}

/// The transaction is over after the verdict on the content, refused or
/// not: the next one starts without RSET.
#[tokio::test]
async fn refusals_at_the_end_of_data_are_retried_or_final_by_their_code() {
    let accepted = pipelined_envelope("250 ok\r\n250 ok\r\n354 go ahead\r\n");
    let server = ScriptedServer::start(vec![script(&[
        opening(true),
        accepted.clone(),
        vec![ReadData, say("451 4.7.1 greylisted, try again later\r\n")],
        accepted.clone(),
        vec![ReadData, say("554 5.7.1 message refused as spam\r\n")],
        accepted,
        vec![ReadData, say("550 5.1.1 mailbox unavailable\r\n")],
    ])])
    .await;
    let mailer = server.mailer();
    let greylisted = send(&mailer, "ann@example.com").await.unwrap_err();
    assert!(matches!(&greylisted, SendError::Transient(reply) if reply.contains("greylisted")), "{greylisted:?}");
    let spam = send(&mailer, "ann@example.com").await.unwrap_err();
    assert!(
        matches!(&spam, SendError::Rejected { rejection: Rejection::Policy, reply } if reply.contains("554")),
        "{spam:?}"
    );
    let unavailable = send(&mailer, "ann@example.com").await.unwrap_err();
    assert!(matches!(unavailable, SendError::Rejected { rejection: Rejection::MailboxUnknown, .. }), "{unavailable:?}");
    assert!(server.transcript().deviations.is_empty(), "{:?}", server.transcript().deviations);
}

#[tokio::test]
async fn a_server_that_speaks_garbage_or_endless_lines_is_a_transient_failure() {
    let long_line = format!("220 {}\r\n", "x".repeat(100_000));
    let endless_line = "2".repeat(100_000);
    let servers = [
        vec![say("HTTP/1.1 400 Bad Request\r\n\r\n")],
        vec![say(&long_line)],
        vec![say(&endless_line)],
        script(&[opening(true), pipelined_envelope("250 ok\r\nwhatever\r\n354 go\r\n")]),
        script(&[opening(false), vec![Expect("MAIL"), say("250-ok\r\n451 mixed codes\r\n")]]),
        script(&[opening(false), vec![Expect("MAIL"), say("250 ok\r\n"), Expect("RCPT"), say("354 go ahead\r\n")]]),
    ];
    for steps in servers {
        let server = ScriptedServer::start(vec![steps.clone()]).await;
        let error = send(&server.mailer(), "ann@example.com").await.unwrap_err();
        assert!(matches!(error, SendError::Transient(_)), "{steps:?}: {error:?}");
    }
}

#[tokio::test]
async fn a_session_closed_while_idle_is_replaced_and_one_cut_off_mid_message_is_left_to_a_retry() {
    let accepted = pipelined_envelope("250 ok\r\n250 ok\r\n354 go ahead\r\n");
    let server = ScriptedServer::start(vec![
        script(&[opening(true), accepted.clone(), vec![ReadData, say("250 queued\r\n"), Expect("MAIL"), Close]]),
        script(&[opening(true), accepted, vec![ReadData, say("250 queued\r\n")]]),
    ])
    .await;
    let mailer = server.mailer();
    send(&mailer, "ann@example.com").await.unwrap();
    // The idle session is closed under the client: the message goes over a
    // second connection.
    send(&mailer, "bob@example.com").await.unwrap();
    assert_eq!(server.transcript().messages.len(), 2);
    drop(server.transcript());
    // Hung up after the server answered: the message may have arrived, so
    // it is left to a later retry rather than sent again at once.
    let cut_off = ScriptedServer::start(vec![
        script(&[opening(true), pipelined_envelope("250 ok\r\n250 ok\r\n354 go ahead\r\n"), vec![Close]]),
        opening(true),
    ])
    .await;
    let error = send(&cut_off.mailer(), "ann@example.com").await.unwrap_err();
    assert!(matches!(&error, SendError::Transient(reply) if reply.contains("closed")), "{error:?}");
}

#[tokio::test]
async fn a_server_that_refuses_the_session_is_a_transient_failure() {
    for greeting in ["554 5.7.1 no service for you\r\n", "421 4.3.2 busy\r\n"] {
        let server = ScriptedServer::start(vec![vec![say(greeting)]]).await;
        let error = send(&server.mailer(), "ann@example.com").await.unwrap_err();
        assert!(matches!(&error, SendError::Transient(reply) if reply.contains(&greeting[..3])), "{error:?}");
    }
}

#[tokio::test]
async fn the_login_uses_auth_plain_or_else_auth_login_and_a_refused_one_is_retried_later() {
    let accepted = vec![
        Expect("MAIL FROM:"),
        Expect("RCPT TO:"),
        Expect("DATA"),
        say("250 ok\r\n250 ok\r\n354 go\r\n"),
        ReadData,
        say("250 ok\r\n"),
    ];
    let plain = ScriptedServer::start(vec![script(&[
        vec![say(GREETING), Expect("EHLO "), say("250-mx.example\r\n250-AUTH LOGIN PLAIN\r\n250 PIPELINING\r\n")],
        // "\0ann\0s3cret" in base64.
        vec![Expect("AUTH PLAIN AGFubgBzM2NyZXQ="), say("235 2.7.0 ok\r\n")],
        accepted.clone(),
    ])])
    .await;
    send(&plain.mailer_with(SmtpSecurity::None, Some(("ann", "s3cret"))), "bob@example.com").await.unwrap();
    assert!(plain.transcript().deviations.is_empty(), "{:?}", plain.transcript().deviations);

    let login = ScriptedServer::start(vec![script(&[
        vec![say(GREETING), Expect("EHLO "), say("250-mx.example\r\n250-AUTH=LOGIN\r\n250 PIPELINING\r\n")],
        vec![Expect("AUTH LOGIN"), say("334 VXNlcm5hbWU6\r\n"), Expect("YW5u"), say("334 UGFzc3dvcmQ6\r\n")],
        vec![Expect("czNjcmV0"), say("235 2.7.0 ok\r\n")],
        accepted,
    ])])
    .await;
    send(&login.mailer_with(SmtpSecurity::None, Some(("ann", "s3cret"))), "bob@example.com").await.unwrap();
    assert!(login.transcript().deviations.is_empty(), "{:?}", login.transcript().deviations);

    let refused = ScriptedServer::start(vec![script(&[
        vec![say(GREETING), Expect("EHLO "), say("250-mx.example\r\n250 AUTH PLAIN\r\n")],
        vec![Expect("AUTH PLAIN"), say("535 5.7.8 bad credentials\r\n")],
    ])])
    .await;
    let error = send(&refused.mailer_with(SmtpSecurity::None, Some(("ann", "wrong"))), "bob@example.com").await;
    assert!(matches!(&error, Err(SendError::Unauthorized(reply)) if reply.contains("535")), "{error:?}");
    assert!(!format!("{error:?}").contains("wrong"), "the password stays out of errors");
}

#[tokio::test]
async fn starttls_is_required_and_nothing_the_server_sends_ahead_of_tls_is_trusted() {
    // Not offered: no message goes out in clear text.
    let no_tls = ScriptedServer::start(vec![opening(true)]).await;
    let error = send(&no_tls.mailer_with(SmtpSecurity::StartTls, None), "ann@example.com").await;
    assert!(matches!(&error, Err(SendError::Transient(reply)) if reply.contains("STARTTLS")), "{error:?}");
    assert_eq!(no_tls.transcript().lines.len(), 1, "only EHLO was said");

    // Offered: the client starts a TLS handshake (which fails here: this
    // server has no certificate), and sends nothing in clear text.
    let starttls = ScriptedServer::start(vec![vec![
        say(GREETING),
        Expect("EHLO "),
        say("250-mx.example\r\n250-STARTTLS\r\n250 PIPELINING\r\n"),
        Expect("STARTTLS"),
        say("220 2.0.0 ready\r\n"),
        ExpectTlsHandshake,
        Close,
    ]])
    .await;
    let error = send(&starttls.mailer_with(SmtpSecurity::StartTls, None), "ann@example.com").await;
    assert!(matches!(&error, Err(SendError::Transient(reply)) if reply.contains("TLS")), "{error:?}");
    assert!(starttls.transcript().deviations.is_empty(), "{:?}", starttls.transcript().deviations);

    // Commands slipped in after the 220 would look as if they came over TLS.
    let injected = ScriptedServer::start(vec![vec![
        say(GREETING),
        Expect("EHLO "),
        say("250-mx.example\r\n250 STARTTLS\r\n"),
        Expect("STARTTLS"),
        say("220 2.0.0 ready\r\n250-injected\r\n"),
    ]])
    .await;
    let error = send(&injected.mailer_with(SmtpSecurity::StartTls, None), "ann@example.com").await;
    assert!(matches!(&error, Err(SendError::Transient(reply)) if reply.contains("after its STARTTLS")), "{error:?}");
}

/// A certificate authority made for the test, and server certificates it signs.
struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(rcgen::DnType::CommonName, "tickermail test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    /// To be trusted by the client.
    fn root(&self) -> Vec<CertificateDer<'static>> {
        vec![self.issuer.der().clone()]
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server's TLS set-up with a certificate for `host`, valid now.
    fn server(&self, host: &str) -> Arc<ServerConfig> {
        self.server_with(rcgen::CertificateParams::new(vec![host.to_string()]).unwrap())
    }

    /// One with a certificate for `localhost` that expired last year.
    fn expired_server(&self) -> Arc<ServerConfig> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let year = chrono::Datelike::year(&chrono::Utc::now());
        params.not_before = rcgen::date_time_ymd(year - 2, 1, 1);
        params.not_after = rcgen::date_time_ymd(year - 1, 1, 1);
        self.server_with(params)
    }

    fn server_with(&self, params: rcgen::CertificateParams) -> Arc<ServerConfig> {
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certificate.der().clone()], PrivateKeyDer::Pkcs8(key.serialize_der().into()))
            .unwrap();
        Arc::new(config)
    }
}

const EHLO_STARTTLS: &str = "250-mx.example\r\n250-STARTTLS\r\n250 PIPELINING\r\n";

/// A conversation that upgrades to TLS with STARTTLS, then greets again.
fn starttls_opening(tls: Arc<ServerConfig>) -> Vec<Step> {
    vec![
        say(GREETING),
        Expect("EHLO "),
        say(EHLO_STARTTLS),
        Expect("STARTTLS"),
        say("220 2.0.0 ready\r\n"),
        Tls(tls),
        Expect("EHLO "),
        say(EHLO_PIPELINING),
    ]
}

/// TLS from the first byte, then the greeting.
fn implicit_tls_opening(tls: Arc<ServerConfig>) -> Vec<Step> {
    script(&[vec![Tls(tls)], opening(true)])
}

fn delivered() -> Vec<Step> {
    script(&[pipelined_envelope("250 ok\r\n250 ok\r\n354 go ahead\r\n"), vec![ReadData, say("250 queued\r\n")]])
}

#[tokio::test]
async fn starttls_delivers_and_the_server_sees_the_message_only_inside_tls() {
    let ca = TestCa::new();
    let server = ScriptedServer::start(vec![script(&[starttls_opening(ca.server("localhost")), delivered()])]).await;
    send(&server.mailer_trusting(SmtpSecurity::StartTls, &ca.root()), "ann@example.com").await.unwrap();
    let transcript = server.transcript();
    assert!(transcript.deviations.is_empty(), "{:?}", transcript.deviations);
    assert_eq!(transcript.tls_after_lines, Some(2), "only EHLO and STARTTLS before the handshake");
    assert!(transcript.lines[0].starts_with("EHLO ") && transcript.lines[1] == "STARTTLS", "{:?}", transcript.lines);
    assert_eq!(transcript.messages.len(), 1);
    assert!(transcript.messages[0].contains("To: ann@example.com\r\n"), "{}", transcript.messages[0]);
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let ca = TestCa::new();
    let server =
        ScriptedServer::start(vec![script(&[implicit_tls_opening(ca.server("localhost")), delivered()])]).await;
    send(&server.mailer_trusting(SmtpSecurity::ImplicitTls, &ca.root()), "ann@example.com").await.unwrap();
    let transcript = server.transcript();
    assert!(transcript.deviations.is_empty(), "{:?}", transcript.deviations);
    assert_eq!(transcript.tls_after_lines, Some(0), "TLS from the first byte");
    assert_eq!(transcript.messages.len(), 1);
}

/// Sends over STARTTLS and over implicit TLS to a server with `tls`'s
/// certificate, trusting `roots`; each must be refused before anything of the
/// message is sent. Returns the two errors.
async fn refused_in_both_modes(tls: Arc<ServerConfig>, roots: &[CertificateDer<'static>]) -> Vec<String> {
    let mut errors = Vec::new();
    for (security, opening, said_in_clear) in [
        (SmtpSecurity::StartTls, starttls_opening(tls.clone()), 2),
        (SmtpSecurity::ImplicitTls, implicit_tls_opening(tls.clone()), 0),
    ] {
        let server = ScriptedServer::start(vec![script(&[opening, delivered()])]).await;
        let error = send(&server.mailer_trusting(security, roots), "ann@example.com").await;
        let Err(SendError::Transient(reason)) = error else { panic!("{security:?}: {error:?}") };
        let transcript = server.transcript();
        assert_eq!(transcript.tls_after_lines, None, "{security:?}: no handshake completed");
        assert_eq!(transcript.lines.len(), said_in_clear, "{security:?}: {:?}", transcript.lines);
        assert!(transcript.messages.is_empty(), "{security:?}");
        errors.push(reason);
    }
    errors
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_and_nothing_is_sent() {
    let ca = TestCa::new();
    for error in refused_in_both_modes(ca.server("mx.elsewhere.example"), &ca.root()).await {
        assert!(error.contains("not valid for name") && error.contains("localhost"), "{error}");
    }
}

#[tokio::test]
async fn an_expired_certificate_is_refused_and_nothing_is_sent() {
    let ca = TestCa::new();
    for error in refused_in_both_modes(ca.expired_server(), &ca.root()).await {
        assert!(error.contains("expired"), "{error}");
    }
}

#[tokio::test]
async fn without_smtp_ca_file_a_certificate_from_a_private_ca_is_refused() {
    let ca = TestCa::new();
    for error in refused_in_both_modes(ca.server("localhost"), &[]).await {
        assert!(error.contains("not signed by a trusted CA") && error.contains("SMTP_CA_FILE"), "{error}");
    }
}

#[tokio::test]
async fn a_server_that_drops_or_refuses_starttls_gets_nothing_in_clear_text() {
    let ca = TestCa::new();
    let starttls_answered =
        |reply: &str| vec![say(GREETING), Expect("EHLO "), say(EHLO_STARTTLS), Expect("STARTTLS"), say(reply)];
    // Each server would take the message in clear text if the client sent it.
    for (opening, said) in [
        (opening(true), 1),
        (starttls_answered("454 4.7.0 TLS not available due to temporary reason\r\n"), 2),
        (starttls_answered("502 5.5.1 command not implemented\r\n"), 2),
    ] {
        let server = ScriptedServer::start(vec![script(&[opening, delivered()])]).await;
        let error = send(&server.mailer_trusting(SmtpSecurity::StartTls, &ca.root()), "ann@example.com").await;
        let transcript = server.transcript();
        assert!(
            matches!(&error, Err(SendError::Transient(reason)) if reason.contains("STARTTLS is required")),
            "{error:?}"
        );
        assert_eq!(transcript.lines.len(), said, "nothing after EHLO and STARTTLS: {:?}", transcript.lines);
        assert!(transcript.messages.is_empty());
    }
}

/// The system's trust store counts too: here the one `SSL_CERT_FILE` names,
/// which only a process of its own can be given.
#[tokio::test]
async fn a_ca_in_the_system_trust_store_is_trusted() {
    let ca = TestCa::new();
    let store = std::env::temp_dir().join(format!("tickermail-system-ca-{}.pem", uuid::Uuid::new_v4().simple()));
    std::fs::write(&store, ca.pem()).unwrap();
    let server =
        ScriptedServer::start(vec![script(&[implicit_tls_opening(ca.server("localhost")), delivered()])]).await;
    let output = crate::cli::tickermail()
        .env("DATABASE_URL", crate::helpers::fresh_database_url().await)
        .env("SMTP_URL", format!("smtps://localhost:{}", server.port))
        .env("MAIL_FROM", "Stock News <news@stocknews.example>")
        .env("SSL_CERT_FILE", &store)
        .args(["send-test", "--to", "ann@example.com", "--kind", "confirmation"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let transcript = server.transcript();
    assert!(transcript.deviations.is_empty(), "{:?}", transcript.deviations);
    assert_eq!(transcript.messages.len(), 1);
}
