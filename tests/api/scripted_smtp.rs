//! An SMTP server for the model-based test that answers each RCPT and each
//! end of DATA as its script says, records every message it took (with its
//! Message-ID, Subject and text part) and every refusal it gave, and serves
//! each worker "process" on a listener of its own, so that a killed process
//! can be cut off at once: its connections are dropped, and any it opens
//! later are closed before the greeting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// How the server answers one RCPT or one end of DATA.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// `421 4.3.2` and the connection closed.
    Close421,
    /// `451 4.3.0`: try again later.
    Defer451,
    /// `550 5.1.1`: the mailbox does not exist (the reader bounces).
    Unknown511,
    /// `550 5.7.1`: refused by policy (no bounce).
    Policy571,
    /// `552 5.2.2`: mailbox full (retried, no bounce).
    Full522,
    /// The connection dropped right after the final dot, before any reply;
    /// `kept` says whether the server took the message all the same. At RCPT
    /// this answers 250.
    DropAfterDot {
        kept: bool,
    },
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reply::Ok => "250",
            Reply::Close421 => "421+close",
            Reply::Defer451 => "451",
            Reply::Unknown511 => "550 5.1.1",
            Reply::Policy571 => "550 5.7.1",
            Reply::Full522 => "552 5.2.2",
            Reply::DropAfterDot { kept: true } => "drop after dot (kept)",
            Reply::DropAfterDot { kept: false } => "drop after dot (lost)",
        })
    }
}

/// Who gets which reply; everyone else gets 250. Keys are lower-cased addresses.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub rcpt: HashMap<String, Reply>,
    pub data: HashMap<String, Reply>,
}

/// A message the server took.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The listener (worker process) it came through.
    pub generation: usize,
    pub recipient: String,
    pub message_id: String,
    pub subject: String,
    /// The decoded text part.
    pub text: String,
    /// Taken although the connection dropped after the final dot: the client
    /// never heard that it was.
    pub dropped_after_dot: bool,
}

/// A refusal the server gave: to whom, and its enhanced status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub recipient: String,
    pub code: &'static str,
}

#[derive(Default)]
struct Generation {
    alive: bool,
    sessions: Vec<AbortHandle>,
}

#[derive(Default)]
struct State {
    script: Script,
    accepted: Vec<Accepted>,
    refusals: Vec<Refusal>,
    generations: Vec<Generation>,
}

#[derive(Clone, Default)]
pub struct ScriptedSmtp {
    state: Arc<Mutex<State>>,
}

impl ScriptedSmtp {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_script(&self, script: Script) {
        self.lock().script = script;
    }

    pub fn accepted(&self) -> Vec<Accepted> {
        self.lock().accepted.clone()
    }

    pub fn accepted_count(&self, generation: usize) -> usize {
        self.lock().accepted.iter().filter(|a| a.generation == generation).count()
    }

    pub fn refusals(&self) -> Vec<Refusal> {
        self.lock().refusals.clone()
    }

    /// A listener for a new worker process: its generation and port.
    pub async fn listen(&self) -> (usize, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the scripted SMTP server");
        let port = listener.local_addr().unwrap().port();
        let generation = {
            let mut state = self.lock();
            state.generations.push(Generation { alive: true, sessions: Vec::new() });
            state.generations.len() - 1
        };
        let server = self.clone();
        // The listener stays bound after its process died (its port is not
        // handed to a later one), and closes what comes in.
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut state = server.lock();
                if !state.generations[generation].alive {
                    drop(stream);
                    continue;
                }
                let session = server.clone();
                let task = tokio::spawn(async move {
                    let _ = session.serve(generation, stream).await;
                });
                state.generations[generation].sessions.push(task.abort_handle());
            }
        });
        (generation, port)
    }

    /// The process behind `generation` died: every one of its connections
    /// drops now, without another byte either way, and new ones are closed.
    pub fn kill(&self, generation: usize) {
        let mut state = self.lock();
        let dead = &mut state.generations[generation];
        dead.alive = false;
        for session in dead.sessions.drain(..) {
            session.abort();
        }
    }

    fn reply_for(&self, stage: Stage, recipient: &str) -> Reply {
        let state = self.lock();
        let replies = match stage {
            Stage::Rcpt => &state.script.rcpt,
            Stage::Data => &state.script.data,
        };
        replies.get(&recipient.to_ascii_lowercase()).copied().unwrap_or(Reply::Ok)
    }

    fn refused(&self, recipient: &str, code: &'static str) {
        self.lock().refusals.push(Refusal { recipient: recipient.to_string(), code });
    }

    async fn serve(&self, generation: usize, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 scripted ESMTP\r\n").await?;
        let mut recipient: Option<String> = None;
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let upper = command.to_ascii_uppercase();
            let reply: &str = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                "250-scripted\r\n250-PIPELINING\r\n250 8BITMIME"
            } else if upper.starts_with("MAIL FROM:") {
                recipient = None;
                "250 2.1.0 ok"
            } else if upper.starts_with("RCPT TO:") {
                let to = command[8..].trim().trim_matches(['<', '>']).to_string();
                match self.reply_for(Stage::Rcpt, &to) {
                    Reply::Ok | Reply::DropAfterDot { .. } => {
                        recipient = Some(to);
                        "250 2.1.5 ok"
                    }
                    refusal => match self.refuse(refusal, &to) {
                        Some(text) => text,
                        None => {
                            write.write_all(b"421 4.3.2 closing\r\n").await?;
                            return Ok(());
                        }
                    },
                }
            } else if upper == "DATA" {
                let Some(to) = recipient.take() else {
                    write.write_all(b"554 5.5.1 no valid recipients\r\n").await?;
                    continue;
                };
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
                    data.push_str(if line.starts_with("..") { &line[1..] } else { &line });
                }
                let take = |dropped_after_dot| {
                    let accepted = parse_message(generation, &to, &data, dropped_after_dot);
                    self.lock().accepted.push(accepted);
                };
                match self.reply_for(Stage::Data, &to) {
                    Reply::Ok => {
                        take(false);
                        "250 2.0.0 queued"
                    }
                    Reply::DropAfterDot { kept } => {
                        if kept {
                            take(true);
                        }
                        return Ok(());
                    }
                    refusal => match self.refuse(refusal, &to) {
                        Some(text) => text,
                        None => {
                            write.write_all(b"421 4.3.2 closing\r\n").await?;
                            return Ok(());
                        }
                    },
                }
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
                "250 2.0.0 ok"
            } else {
                "502 5.5.1 command not implemented"
            };
            write.write_all(format!("{reply}\r\n").as_bytes()).await?;
        }
    }

    /// Records a refusal and gives its reply text; `None` for 421 (close).
    fn refuse(&self, refusal: Reply, to: &str) -> Option<&'static str> {
        let (code, text) = match refusal {
            Reply::Close421 => ("4.3.2", None),
            Reply::Defer451 => ("4.3.0", Some("451 4.3.0 try again later")),
            Reply::Unknown511 => ("5.1.1", Some("550 5.1.1 no such mailbox here")),
            Reply::Policy571 => ("5.7.1", Some("550 5.7.1 refused by local policy")),
            Reply::Full522 => ("5.2.2", Some("552 5.2.2 mailbox full")),
            Reply::Ok | Reply::DropAfterDot { .. } => unreachable!("not a refusal"),
        };
        self.refused(to, code);
        text
    }
}

#[derive(Clone, Copy)]
enum Stage {
    Rcpt,
    Data,
}

fn parse_message(generation: usize, recipient: &str, data: &str, dropped_after_dot: bool) -> Accepted {
    let head = data.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let header = |name: &str| {
        unfolded
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim().to_string())
            })
            .unwrap_or_default()
    };
    Accepted {
        generation,
        recipient: recipient.to_string(),
        message_id: header("Message-ID"),
        subject: header("Subject"),
        text: text_part(data),
        dropped_after_dot,
    }
}

/// The decoded text/plain part.
fn text_part(data: &str) -> String {
    let Some(start) = data.find("Content-Type: text/plain") else { return String::new() };
    let rest = &data[start..];
    let Some(body_start) = rest.find("\r\n\r\n").map(|at| at + 4) else { return String::new() };
    let part_headers = rest[..body_start].to_ascii_lowercase();
    let body = &rest[body_start..];
    let body = &body[..body.find("\r\n--").unwrap_or(body.len())];
    if part_headers.contains("content-transfer-encoding: quoted-printable") {
        decode_quoted_printable(body)
    } else {
        body.to_string()
    }
}

fn decode_quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len() + 1
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok().and_then(|hex| u8::from_str_radix(hex, 16).ok()))
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
