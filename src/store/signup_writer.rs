//! Group commit for sign-ups. Every sign-up is a write, and SQLite has one
//! writer: handing its lock from request to request costs more than the
//! writes. So sign-ups go to one task that writes whatever has queued up
//! meanwhile in a single transaction, and answers each request.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{SignupOutcome, SignupRecord, Store, StoreError, StoreResult};

/// The most sign-ups one transaction takes.
const MAX_BATCH: usize = 256;

struct PendingSignup {
    record: SignupRecord,
    reply: oneshot::Sender<StoreResult<SignupOutcome>>,
}

#[derive(Clone)]
pub struct SignupWriter {
    queue: mpsc::Sender<PendingSignup>,
}

impl SignupWriter {
    /// Starts the writing task; it ends when the last `SignupWriter` is dropped.
    pub fn start(store: Store, resend_interval: Duration) -> Self {
        let (queue, pending) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(store, resend_interval, pending));
        Self { queue }
    }

    /// Records one sign-up (and queues its confirmation) once its batch commits.
    pub async fn record(&self, record: SignupRecord) -> StoreResult<SignupOutcome> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the sign-up writer has stopped".into());
        self.queue.send(PendingSignup { record, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batches(store: Store, resend_interval: Duration, mut pending: mpsc::Receiver<PendingSignup>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let records: Vec<&SignupRecord> = batch.iter().map(|p| &p.record).collect();
        match store.record_signups(&records, resend_interval).await {
            Ok(outcomes) => {
                for (signup, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = signup.reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::error!(%error, signups = batch.len(), "sign-up batch failed");
                let message = error.to_string();
                for signup in batch.drain(..) {
                    let _ = signup.reply.send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
}
