//! The `.eml` transport: each message a file in a folder, named after what it
//! is, for when no SMTP server is configured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use uuid::Uuid;

use super::{Email, SendError, SendGate};

/// The longest writing an `.eml` file may take, for its gate.
const WRITE_TIME: Duration = Duration::from_secs(5);

/// The label in a test send's file name, by which `forget` knows one.
const TEST_SEND_LABEL: &str = "test";

/// What a message is, which its file is named after.
#[derive(Debug, Clone, Copy)]
pub enum MessageOrigin<'a> {
    /// A delivery from the queue, of the kind as stored. Its file ends in its
    /// id, by which an erasure finds it.
    Delivery { id: Uuid, kind: &'a str },
    /// A message sent at once, not queued, under a label.
    Unqueued(&'a str),
}

impl MessageOrigin<'_> {
    pub const TEST_SEND: MessageOrigin<'static> = MessageOrigin::Unqueued(TEST_SEND_LABEL);

    /// When it was written, what it is, and an id: the files sort by time and
    /// never collide.
    fn file_stem(&self) -> String {
        let written = Utc::now().format("%Y%m%dT%H%M%S%.6f");
        match self {
            MessageOrigin::Delivery { id, kind } => format!("{written}-{kind}-{}", id.simple()),
            MessageOrigin::Unqueued(label) => format!("{written}-{label}-{}", Uuid::new_v4().simple()),
        }
    }
}

#[derive(Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("MAIL_OUTBOX_DIR: cannot create {}: {e}", dir.display()))?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    pub fn describe(&self) -> String {
        format!(".eml files in {}", self.dir.display())
    }

    /// Writes one message once `gate` lets it.
    pub async fn send(&self, email: Email, origin: MessageOrigin<'_>, gate: &dyn SendGate) -> Result<(), SendError> {
        if !gate.open(WRITE_TIME).await {
            return Err(SendError::NotStarted);
        }
        let file_stem = origin.file_stem();
        // Write then rename, so a reader of the folder never sees half a message.
        let partial = self.dir.join(format!(".{file_stem}.eml.partial"));
        let done = self.dir.join(format!("{file_stem}.eml"));
        let write = async {
            tokio::fs::write(&partial, email.to_eml()).await?;
            tokio::fs::rename(&partial, &done).await
        };
        write.await.map_err(|e| SendError::Transient(format!("cannot write {}: {e}", done.display())))
    }

    /// Removes the files of an erased reader's deliveries, and of test sends
    /// to their address. Returns how many were removed.
    pub async fn forget(&self, deliveries: Vec<Uuid>, address: String) -> std::io::Result<usize> {
        let dir = self.dir.clone();
        let forget = move || {
            let endings: Vec<String> = deliveries.iter().map(|id| format!("-{}.eml", id.simple())).collect();
            let test_send = format!("-{TEST_SEND_LABEL}-");
            let mut removed = 0;
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_string();
                let theirs = endings.iter().any(|ending| name.ends_with(ending.as_str()))
                    || (name.contains(&test_send)
                        && std::fs::read(&path)?
                            .to_ascii_lowercase()
                            .windows(address.len())
                            .any(|w| w == address.as_bytes()));
                if theirs {
                    std::fs::remove_file(&path)?;
                    removed += 1;
                }
            }
            Ok(removed)
        };
        tokio::task::spawn_blocking(forget).await.map_err(std::io::Error::other)?
    }
}
