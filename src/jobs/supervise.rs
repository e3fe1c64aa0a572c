//! Keeps a background task running: if it dies (a panic), that is logged and
//! it is started again, and meanwhile it is reported as not running.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long a task that died waits before it is started again, so a task
/// that dies at once does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Runs `start()` until `stop` is cancelled and it returns, starting it again
/// whenever it ends otherwise; `running` says whether it runs now.
pub async fn supervise<F, Fut>(name: &'static str, running: Arc<AtomicBool>, stop: CancellationToken, start: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        running.store(true, Ordering::Release);
        let ended = tokio::spawn(start()).await;
        running.store(false, Ordering::Release);
        if stop.is_cancelled() {
            return;
        }
        match ended {
            Err(error) => tracing::error!(task = name, %error, "background task died; starting it again"),
            Ok(()) => tracing::error!(task = name, "background task ended by itself; starting it again"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RESTART_DELAY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    #[tokio::test]
    async fn a_task_that_dies_is_started_again_and_is_not_running_meanwhile() {
        let running = Arc::new(AtomicBool::new(false));
        let starts = Arc::new(AtomicU32::new(0));
        let stop = CancellationToken::new();
        let supervisor = {
            let (running, starts, stop) = (running.clone(), starts.clone(), stop.clone());
            tokio::spawn(supervise("test", running, stop.clone(), move || {
                let (starts, stop) = (starts.clone(), stop.clone());
                async move {
                    if starts.fetch_add(1, Ordering::SeqCst) == 0 {
                        panic!("the first run dies");
                    }
                    stop.cancelled().await;
                }
            }))
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(!running.load(Ordering::Acquire), "reported as not running while it waits to start again");
        tokio::time::sleep(RESTART_DELAY + Duration::from_millis(300)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 2, "started again");
        assert!(running.load(Ordering::Acquire));
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), supervisor).await.unwrap().unwrap();
        assert!(!running.load(Ordering::Acquire));
    }
}
