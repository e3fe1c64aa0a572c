//! A small SMTP server for the tests: it speaks enough SMTP for our client,
//! keeps every message it accepts, and can be told to refuse (4xx), to
//! answer certain recipients with a reply of the test's choosing, or to take
//! its time over each message (a slow relay).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl ReceivedMail {
    /// A header's value (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    }

    /// The decoded body of the part with this content type.
    pub fn part(&self, content_type: &str) -> Option<String> {
        let start = self.data.find(&format!("Content-Type: {content_type}"))?;
        let rest = &self.data[start..];
        let body_start = rest.find("\r\n\r\n")? + 4;
        let part_headers = &rest[..body_start];
        let body = &rest[body_start..];
        let end = body.find("\r\n--").unwrap_or(body.len());
        if part_headers.to_ascii_lowercase().contains("content-transfer-encoding: quoted-printable") {
            Some(decode_quoted_printable(&body[..end]))
        } else {
            Some(body[..end].to_string())
        }
    }

    pub fn text(&self) -> String {
        self.part("text/plain").unwrap_or_default()
    }

    pub fn html(&self) -> String {
        self.part("text/html").unwrap_or_default()
    }

    /// The first link in the text part that starts with `prefix`.
    pub fn link_starting_with(&self, prefix: &str) -> Option<String> {
        let text = self.text();
        let start = text.find(prefix)?;
        Some(text[start..].split(|c: char| c.is_whitespace()).next()?.to_string())
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Default)]
struct SinkState {
    mails: Vec<ReceivedMail>,
    /// Reply to every MAIL FROM with this (e.g. "451 4.3.0 try later").
    refuse_with: Option<String>,
    /// Recipients containing the first text get the second as their RCPT reply.
    recipient_replies: Vec<(String, String)>,
    /// How long each message's end of DATA waits for its answer.
    delay: Duration,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    state: Arc<Mutex<SinkState>>,
    arrived: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_on(0).await
    }

    /// Starts on a given port (0 for any), e.g. to bring SMTP "back up".
    pub async fn start_on(port: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind SMTP sink");
        let sink = SmtpSink {
            port: listener.local_addr().unwrap().port(),
            state: Arc::default(),
            arrived: Arc::new(Notify::new()),
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let session = serving.clone();
                tokio::spawn(async move {
                    let _ = session.serve(stream).await;
                });
            }
        });
        sink
    }

    pub fn refuse_with(&self, reply: Option<&str>) {
        self.state.lock().unwrap().refuse_with = reply.map(str::to_string);
    }

    /// Recipients containing `text` are refused as unknown mailboxes (550 5.1.1).
    pub fn reject_recipients_containing(&self, text: &str) {
        self.reply_to_recipients_containing(text, "550 5.1.1 no such mailbox");
    }

    /// Recipients containing `text` get `reply` to their RCPT TO.
    pub fn reply_to_recipients_containing(&self, text: &str, reply: &str) {
        self.state.lock().unwrap().recipient_replies.push((text.to_string(), reply.to_string()));
    }

    /// Recipients are accepted again, whatever they contain.
    pub fn accept_all_recipients(&self) {
        self.state.lock().unwrap().recipient_replies.clear();
    }

    /// Every message waits this long for its answer, as on a slow relay.
    pub fn delay_each_message(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.state.lock().unwrap().mails.clone()
    }

    pub fn mails_to(&self, recipient: &str) -> Vec<ReceivedMail> {
        self.mails().into_iter().filter(|m| m.to.iter().any(|t| t == recipient)).collect()
    }

    /// Waits until `count` messages to `recipient` arrived, or panics after `timeout`.
    pub async fn wait_for_mails_to(&self, recipient: &str, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            let mails = self.mails_to(recipient);
            if mails.len() >= count {
                return mails;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {count} mails to {recipient} within {timeout:?}, got {}",
                    self.mails_to(recipient).len()
                );
            }
        }
    }

    pub async fn wait_for_mail_to(&self, recipient: &str) -> ReceivedMail {
        self.wait_for_mails_to(recipient, 1, Duration::from_secs(10)).await.pop().unwrap()
    }

    async fn serve(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink ESMTP\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let upper = command.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250-sink\r\n250 8BITMIME".into()
            } else if upper.starts_with("MAIL FROM:") {
                match self.state.lock().unwrap().refuse_with.clone() {
                    Some(refusal) => refusal,
                    None => {
                        from = command[10..].trim().trim_matches(['<', '>']).to_string();
                        to.clear();
                        "250 OK".into()
                    }
                }
            } else if upper.starts_with("RCPT TO:") {
                let recipient = command[8..].trim().trim_matches(['<', '>']).to_string();
                let special = self
                    .state
                    .lock()
                    .unwrap()
                    .recipient_replies
                    .iter()
                    .find(|(text, _)| recipient.contains(text.as_str()))
                    .map(|(_, reply)| reply.clone());
                match special {
                    Some(reply) => reply,
                    None => {
                        to.push(recipient);
                        "250 OK".into()
                    }
                }
            } else if upper == "DATA" {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
                }
                let delay = self.state.lock().unwrap().delay;
                tokio::time::sleep(delay).await;
                let mail = ReceivedMail { from: from.clone(), to: std::mem::take(&mut to), data };
                self.state.lock().unwrap().mails.push(mail);
                self.arrived.notify_waiters();
                "250 OK queued".into()
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                "250 OK".into()
            } else {
                "502 command not implemented".into()
            };
            write.write_all(format!("{reply}\r\n").as_bytes()).await?;
        }
    }
}
