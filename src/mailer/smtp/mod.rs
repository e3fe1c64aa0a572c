//! SMTP over connections we open and speak ourselves: TCP_NODELAY on every
//! socket (lettre's transport leaves Nagle on, and each message then waits
//! ~40 ms for the server's delayed ACK), and with servers that offer
//! PIPELINING the envelope in one write, sent along with the content of the
//! message before it: one round trip per message while messages queue up.

mod reply;
mod session;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::{Email, Rejection, SendError, SendGate};
use crate::config::{SmtpSecurity, SmtpSettings};
use session::{Session, SmtpError, SmtpStream, Timeouts};
/// Servers drop idle sessions (often after 60 s or more); a session with
/// nothing to send for this long is closed rather than kept.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// Sessions, each served by a task of its own that takes queued messages
/// one after another (`SEND_CONCURRENCY` sessions at most).
pub struct SmtpPool {
    settings: SmtpSettings,
    /// Our name in EHLO.
    hello: String,
    credentials: Option<(String, SecretString)>,
    tls: TlsConnector,
    timeouts: Timeouts,
    /// The most one message's transaction may take, a new session's opening included.
    message_timeout: Duration,
    max_sessions: usize,
    queue: Mutex<Queue>,
    /// Wakes a session task waiting for a message.
    queued: Notify,
}

/// A message waiting for a session, and who waits for its outcome.
struct Job {
    email: Email,
    gate: Arc<dyn SendGate>,
    done: oneshot::Sender<Result<(), SendError>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Session tasks running, and how many of them wait for a message.
    sessions: usize,
    waiting: usize,
}

impl SmtpPool {
    /// Each wait on the server is limited by `settings.timeout`, and so is
    /// each message's whole transaction.
    pub fn new(settings: &SmtpSettings, max_sessions: usize) -> Self {
        let timeouts = Timeouts { connect: settings.timeout, reply: settings.timeout, data: settings.timeout };
        Self::with_timeouts(settings, max_sessions, timeouts)
    }

    fn with_timeouts(settings: &SmtpSettings, max_sessions: usize, timeouts: Timeouts) -> Self {
        let mut roots = tokio_rustls::rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        // The system's store holds what this machine's admin trusts besides
        // (a company CA added with update-ca-certificates, say). One that
        // cannot be read leaves the web roots and SMTP_CA_FILE.
        let system = rustls_native_certs::load_native_certs();
        for error in &system.errors {
            tracing::warn!("cannot read the system's trusted certificates: {error}");
        }
        roots.add_parsable_certificates(system.certs);
        // SMTP_CA_FILE's certificates were checked when it was read.
        roots.add_parsable_certificates(settings.extra_roots.iter().cloned());
        let tls_config =
            ClientConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        let credentials = settings
            .username
            .as_ref()
            .map(|user| (user.clone(), settings.password.clone().unwrap_or_else(|| SecretString::from(String::new()))));
        Self {
            settings: settings.clone(),
            // RFC 5321 4.1.4: our host name, else an address literal.
            hello: hostname::get()
                .ok()
                .and_then(|name| name.into_string().ok())
                .unwrap_or_else(|| "[127.0.0.1]".into()),
            credentials,
            tls: TlsConnector::from(Arc::new(tls_config)),
            timeouts,
            message_timeout: settings.timeout,
            max_sessions: max_sessions.max(1),
            queue: Mutex::default(),
            queued: Notify::new(),
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

    /// From a message's gate opening to its end: its own transaction, and
    /// the one before it, during which its envelope may be pipelined.
    pub fn longest_send(&self) -> Duration {
        2 * self.message_timeout
    }

    /// Sends one message over the next free session, once its gate opens.
    pub async fn send(self: &Arc<Self>, email: Email, gate: Arc<dyn SendGate>) -> Result<(), SendError> {
        let (done, outcome) = oneshot::channel();
        let start_session = {
            let mut queue = self.lock();
            queue.jobs.push_back(Job { email, gate, done });
            let start = queue.waiting == 0 && queue.sessions < self.max_sessions;
            queue.sessions += usize::from(start);
            start
        };
        if start_session {
            tokio::spawn(self.clone().serve());
        } else {
            self.queued.notify_one();
        }
        outcome.await.unwrap_or_else(|_| Err(SendError::Transient("the SMTP session ended abruptly".into())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A session task: sends queued messages until none comes for `MAX_IDLE`.
    /// A message goes out only once its gate opened (a pipelined one's opened
    /// before its envelope was written), and its transaction is cut off after
    /// `message_timeout`, so it ends within `longest_send` of the opening.
    async fn serve(self: Arc<Self>) {
        let mut session = None;
        // A message whose envelope already went out on `session`.
        let mut pipelined: Option<Job> = None;
        loop {
            let (job, envelope_written) = match pipelined.take() {
                Some(job) => (job, session.is_some()),
                None => match self.next_job().await {
                    Some(job) if job.gate.open(self.longest_send()).await => (job, false),
                    Some(job) => {
                        let _ = job.done.send(Err(SendError::NotStarted));
                        continue;
                    }
                    None => return,
                },
            };
            let transaction = self.transact(&mut session, &job.email, envelope_written);
            let (outcome, next) = match tokio::time::timeout(self.message_timeout, transaction).await {
                Ok(done) => done,
                Err(_) => {
                    session = None;
                    let waited = self.message_timeout.as_secs_f64();
                    (Err(SendError::Transient(format!("the SMTP transaction took over {waited} s; cut off"))), None)
                }
            };
            let _ = job.done.send(outcome);
            pipelined = next;
        }
    }

    /// The next queued message, or None (and the task is no longer counted)
    /// once none came for `MAX_IDLE`.
    async fn next_job(&self) -> Option<Job> {
        loop {
            {
                let mut queue = self.lock();
                if let Some(job) = queue.jobs.pop_front() {
                    return Some(job);
                }
                queue.waiting += 1;
            }
            let woken = tokio::time::timeout(MAX_IDLE, self.queued.notified()).await;
            let mut queue = self.lock();
            queue.waiting -= 1;
            if woken.is_err() {
                let job = queue.jobs.pop_front();
                queue.sessions -= usize::from(job.is_none());
                return job;
            }
        }
    }

    /// Sends one message over `slot`'s session, opening one if there is none.
    /// With PIPELINING, the envelope of the next queued message goes out with
    /// this one's content, and that message is returned to be sent next. A
    /// session that fails before the server answered anything of the message
    /// (most likely closed while idle) is replaced and the message tried once
    /// more; one that fails later may have delivered it, which is left to the
    /// delivery's retry.
    async fn transact(
        &self,
        slot: &mut Option<Session>,
        email: &Email,
        mut envelope_written: bool,
    ) -> (Result<(), SendError>, Option<Job>) {
        let (from, to) = (email.envelope_from.as_str(), email.envelope_to.as_str());
        let mut may_retry = true;
        loop {
            let opened = slot.is_none();
            let session = match slot {
                Some(session) => session,
                None => match self.connect().await {
                    Ok(session) => slot.insert(session),
                    Err(error) => return (Err(error), None),
                },
            };
            let envelope = if !session.pipelining() {
                session.send_stepwise(from, to, &email.data).await.map(|()| false)
            } else if envelope_written {
                session.read_envelope().await.map(|()| true)
            } else {
                match session.write_envelope(from, to).await {
                    Ok(()) => session.read_envelope().await.map(|()| true),
                    Err(error) => Err(error),
                }
            };
            let unanswered = !session.answered();
            let content_due = match envelope {
                Ok(content_due) => content_due,
                Err(error) => {
                    if session.is_broken() {
                        *slot = None;
                    }
                    let stale = matches!(&error, SmtpError::Broken(_))
                        || matches!(&error, SmtpError::Rejected { reply, .. } if reply.code == 421);
                    if stale && unanswered && !opened && may_retry {
                        may_retry = false;
                        envelope_written = false;
                        *slot = None;
                        continue;
                    }
                    return (Err(classify(error)), None);
                }
            };
            if !content_due {
                return (Ok(()), None);
            }
            // Only a message whose gate opens without waiting is pipelined;
            // another is left for a session to open its gate first.
            let next = {
                let mut queue = self.lock();
                let opens = queue.jobs.front().is_some_and(|job| job.gate.open_now(self.longest_send()));
                if opens { queue.jobs.pop_front() } else { None }
            };
            let next_envelope =
                next.as_ref().map(|job| (job.email.envelope_from.as_str(), job.email.envelope_to.as_str()));
            let finished = session.finish(&email.data, next_envelope).await;
            if session.is_broken() {
                *slot = None;
            }
            return (finished.map_err(classify), next);
        }
    }

    /// Opens a session: TCP (with TCP_NODELAY), TLS as configured, EHLO, login.
    /// Any failure here is the session's, not a message's, so it is retried.
    async fn connect(&self) -> Result<Session, SendError> {
        let (host, port) = (self.settings.host.as_str(), self.settings.port);
        let unreachable = |reason: String| SendError::Transient(format!("cannot connect to {host}:{port}: {reason}"));
        let tcp = tokio::time::timeout(self.timeouts.connect, TcpStream::connect((host, port)))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        tcp.set_nodelay(true).map_err(|e| unreachable(e.to_string()))?;
        let server_name = || ServerName::try_from(host.to_string()).map_err(|e| unreachable(e.to_string()));
        let stream = match self.settings.security {
            SmtpSecurity::ImplicitTls => {
                let handshake = tokio::time::timeout(self.timeouts.reply, self.tls.connect(server_name()?, tcp));
                let tls = handshake
                    .await
                    .map_err(|_| unreachable("TLS handshake timed out".into()))?
                    .map_err(|e| unreachable(session::handshake_failure(&e)))?;
                SmtpStream::Tls(Box::new(tls))
            }
            SmtpSecurity::StartTls | SmtpSecurity::None => SmtpStream::Plain(tcp),
        };
        let refused = |error: SmtpError| unreachable(error.to_string());
        let mut session = Session::start(stream, &self.hello, self.timeouts).await.map_err(refused)?;
        if self.settings.security == SmtpSecurity::StartTls {
            session = session.starttls(&self.tls, server_name()?, &self.hello).await.map_err(refused)?;
        }
        if let Some((username, password)) = &self.credentials {
            session.login(username, password.expose_secret()).await.map_err(|error| match error {
                SmtpError::Rejected { reply, .. } if reply.code >= 500 => {
                    SendError::Unauthorized(format!("{host}:{port} refused our login: {reply}"))
                }
                error => refused(error),
            })?;
        }
        Ok(session)
    }
}

/// Sorts a failed transaction into retry or give up, by the reply's
/// enhanced status code (RFC 3463) where it has one. Only a mailbox that does
/// not exist bounces the reader; a full mailbox (552, x.2.2) is retried
/// (RFC 5321 §4.5.3.1.10); a refusal of our login or our sender address is a
/// set-up problem an admin will fix, so those messages wait and retry; policy,
/// relay and size refusals fail that message alone.
fn classify(error: SmtpError) -> SendError {
    let reply_text = error.to_string();
    let SmtpError::Rejected { command, reply } = error else {
        return SendError::Transient(reply_text);
    };
    let rejected = |rejection| SendError::Rejected { reply: reply_text.clone(), rejection };
    if reply.code >= 500 && (matches!(reply.code, 530 | 534 | 535 | 538) || command == "MAIL FROM") {
        return SendError::Unauthorized(reply_text);
    }
    if reply.code < 500 {
        return SendError::Transient(reply_text);
    }
    match enhanced_status(&reply) {
        Some((5, 1, 1 | 2 | 3 | 6 | 10)) => rejected(Rejection::MailboxUnknown),
        Some((_, 2, 2)) => SendError::Transient(reply_text),
        Some((_, 7, _)) => rejected(Rejection::Policy),
        Some((5, 3, 4) | (5, 2, 3)) => rejected(Rejection::Message),
        Some((4, ..)) => SendError::Transient(reply_text),
        Some(_) if reply.code == 552 => SendError::Transient(reply_text),
        Some(_) => rejected(if reply.code == 554 { Rejection::Policy } else { Rejection::Message }),
        None => match reply.code {
            552 => SendError::Transient(reply_text),
            550 | 551 | 553 if command == "RCPT TO" && says_mailbox_unknown(&reply.text()) => {
                rejected(Rejection::MailboxUnknown)
            }
            554 => rejected(Rejection::Policy),
            550 if says_policy(&reply.text()) => rejected(Rejection::Policy),
            _ => rejected(Rejection::Message),
        },
    }
}

/// The enhanced status code (`class.subject.detail`) a reply starts with.
fn enhanced_status(reply: &reply::Reply) -> Option<(u8, u16, u16)> {
    let first = reply.lines.first()?.split_whitespace().next()?;
    let mut parts = first.split('.');
    let class = parts.next()?.parse::<u8>().ok().filter(|class| matches!(class, 2 | 4 | 5))?;
    let subject = parts.next()?.parse().ok()?;
    let detail = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((class, subject, detail))
}

/// For servers that send no enhanced code: the words of a "no such mailbox" reply.
fn says_mailbox_unknown(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "no such user",
        "user unknown",
        "unknown user",
        "does not exist",
        "mailbox not found",
        "no mailbox",
        "invalid recipient",
        "recipient unknown",
        "unknown recipient",
        "address rejected",
    ]
    .iter()
    .any(|words| text.contains(words))
        && !says_policy(&text)
}

fn says_policy(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["relay", "spam", "policy", "blocked", "blacklist", "denied", "authentication"]
        .iter()
        .any(|words| text.contains(words))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn rejected(command: &'static str, line: &str) -> SmtpError {
        let code = line[..3].parse().unwrap();
        SmtpError::Rejected { command, reply: reply::Reply { code, lines: vec![line[4..].to_string()] } }
    }

    fn outcome(command: &'static str, line: &str) -> Result<Option<Rejection>, String> {
        match classify(rejected(command, line)) {
            SendError::Transient(_) | SendError::Unauthorized(_) => Ok(None),
            SendError::Rejected { rejection, .. } => Ok(Some(rejection)),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn only_a_mailbox_that_does_not_exist_bounces_the_reader() {
        for line in [
            "550 5.1.1 no such user",
            "550 5.1.2 bad destination system",
            "553 5.1.3 bad destination mailbox address syntax",
            "551 5.1.6 mailbox has moved",
            "550 5.1.10 recipient address has null MX",
            "550 no such user here",
        ] {
            assert_eq!(outcome("RCPT TO", line), Ok(Some(Rejection::MailboxUnknown)), "{line}");
        }
        assert_eq!(outcome("DATA", "550 5.1.1 mailbox unavailable"), Ok(Some(Rejection::MailboxUnknown)), "late check");
    }

    #[test]
    fn policy_relay_and_size_refusals_fail_the_message_without_bouncing_the_reader() {
        for line in [
            "550 5.7.1 Relaying denied",
            "554 5.7.1 message refused as spam",
            "550 5.7.26 unauthenticated mail is prohibited",
            "554 transaction failed",
            "550 relaying denied",
        ] {
            assert_eq!(outcome("RCPT TO", line), Ok(Some(Rejection::Policy)), "{line}");
        }
        assert_eq!(outcome("DATA", "552 5.3.4 message too big"), Ok(Some(Rejection::Message)));
        assert_eq!(outcome("RCPT TO", "550 mailbox unavailable"), Ok(Some(Rejection::Message)), "says nothing sure");
    }

    #[test]
    fn a_full_mailbox_a_busy_server_and_our_own_set_up_are_retried() {
        for (command, line) in [
            ("RCPT TO", "552 5.2.2 Mailbox full"),
            ("RCPT TO", "552 Requested mail action aborted: exceeded storage allocation"),
            ("RCPT TO", "550 5.2.2 over quota"),
            ("RCPT TO", "450 4.2.0 mailbox busy"),
            ("RCPT TO", "421 4.7.0 try again later"),
            ("MAIL FROM", "553 5.7.1 sender address rejected"),
            ("AUTH", "535 5.7.8 bad credentials"),
        ] {
            assert_eq!(outcome(command, line), Ok(None), "{line}");
        }
        let unauthorized = |command, line| matches!(classify(rejected(command, line)), SendError::Unauthorized(_));
        assert!(unauthorized("MAIL FROM", "553 5.7.1 sender address rejected"), "counted as a refusal");
        assert!(unauthorized("RCPT TO", "530 5.7.0 authentication required"));
        assert!(!unauthorized("RCPT TO", "450 4.2.0 mailbox busy"));
    }

    /// A server that greets, then never answers again.
    async fn silent_server(greeting: &'static [u8]) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                stream.write_all(greeting).await.unwrap();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    drop(stream);
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn a_server_that_stops_answering_times_out() {
        let short = Duration::from_millis(200);
        let short = Timeouts { connect: short, reply: short, data: short };
        for greeting in [&b""[..], b"220 mx.example\r\n"] {
            let settings = SmtpSettings {
                host: "127.0.0.1".into(),
                port: silent_server(greeting).await,
                security: SmtpSecurity::None,
                username: None,
                password: None,
                timeout: Duration::from_secs(1),
                extra_roots: Vec::new(),
            };
            let pool = SmtpPool::with_timeouts(&settings, 1, short);
            let connecting = tokio::time::timeout(Duration::from_secs(5), pool.connect()).await.unwrap();
            let Err(SendError::Transient(reason)) = connecting else { panic!("connected to a silent server") };
            assert!(reason.contains("no reply from the server"), "{reason}");
        }
    }
}
