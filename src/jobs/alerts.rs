//! Price alerts: when a watchlist ticker's daily move crosses a reader's
//! threshold, that reader gets one alert for that ticker, direction and
//! trading day. It alerts again the same day only when the move reaches a
//! higher tier (2× the threshold, 3×, …). Only fresh quotes count, so a
//! closed market's last price never alerts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::{Listing, PriceAlert, StoredQuote, Watchlist};
use crate::store::{AlertWatcher, DueAlert, Store, StoreResult};

/// Readers are read this many at a time, so memory stays flat as the list grows.
const WATCHERS_PER_PAGE: u32 = 1000;

/// Which way a move went, and how many thresholds it spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoveTier {
    pub direction: &'static str,
    pub tier: i64,
}

/// The tier of a move of `change_percent` for a reader whose threshold is
/// `threshold_percent`: none below it, 1 from 1×, 2 from 2×, and so on.
pub fn move_tier(change_percent: f64, threshold_percent: f64) -> Option<MoveTier> {
    if !(change_percent.is_finite() && threshold_percent > 0.0) {
        return None;
    }
    let tier = (change_percent.abs() / threshold_percent).floor() as i64;
    (tier >= 1).then_some(MoveTier { direction: if change_percent > 0.0 { "up" } else { "down" }, tier })
}

/// A fresh quote and the trading day it belongs to, at its exchange.
struct FreshMove {
    quote: StoredQuote,
    change_percent: f64,
    trading_day: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AlertReport {
    /// Symbols with a quote fresh enough to alert on.
    pub fresh_quotes: usize,
    /// Alerts due (new, or a higher tier than already sent today).
    pub due: usize,
    /// The deliveries queued (none on a dry run; fewer than due if another instance queued some first).
    pub queued: Vec<uuid::Uuid>,
}

/// Checks every watching reader against the quotes as of `now - max_quote_age`
/// or later, and queues their due alerts (or only counts them, on a dry run).
pub async fn check_alerts(
    store: &Store,
    now: DateTime<Utc>,
    max_quote_age: std::time::Duration,
    dry_run: bool,
) -> StoreResult<AlertReport> {
    let moves = fresh_moves(store, now, max_quote_age).await?;
    let mut report = AlertReport { fresh_quotes: moves.len(), ..AlertReport::default() };
    if moves.is_empty() {
        return Ok(report);
    }
    let mut days: Vec<String> = moves.values().map(|m| m.trading_day.clone()).collect();
    days.sort();
    days.dedup();
    let sent = store.alert_tiers(&days).await?;
    let mut after = None;
    loop {
        let watchers = store.alert_watchers(after, WATCHERS_PER_PAGE).await?;
        let Some(last) = watchers.last() else { break };
        after = Some(last.id);
        let due: Vec<DueAlert> = watchers.iter().flat_map(|watcher| due_alerts(watcher, &moves, &sent)).collect();
        report.due += due.len();
        if !dry_run && !due.is_empty() {
            report.queued.extend(store.queue_alerts(&due).await?);
        }
    }
    tracing::info!(
        fresh_quotes = report.fresh_quotes,
        due = report.due,
        queued = report.queued.len(),
        dry_run,
        "alert check done"
    );
    Ok(report)
}

/// Today's moves of the symbols with a quote as of `now - max_quote_age` or later.
async fn fresh_moves(
    store: &Store,
    now: DateTime<Utc>,
    max_quote_age: std::time::Duration,
) -> StoreResult<HashMap<String, FreshMove>> {
    let since = now - chrono::Duration::from_std(max_quote_age).unwrap_or_default();
    Ok(store
        .fresh_quotes(since)
        .await?
        .into_iter()
        .filter_map(|quote| {
            let zone = Listing::parse_key(&quote.symbol)?.time_zone();
            let trading_day = quote.as_of.with_timezone(&zone).format("%Y-%m-%d").to_string();
            let change_percent = quote.change_percent();
            Some((quote.symbol.clone(), FreshMove { quote, change_percent, trading_day }))
        })
        .collect())
}

/// A reader who starts following tickers (confirming, or adding them to
/// their watchlist) is not alerted to a move that had already happened:
/// today's moves of those tickers count as alerted, and only a higher tier
/// alerts them.
pub async fn mark_current_moves_seen(
    store: &Store,
    watcher: &AlertWatcher,
    now: DateTime<Utc>,
    max_quote_age: std::time::Duration,
) -> StoreResult<()> {
    let moves = fresh_moves(store, now, max_quote_age).await?;
    let seen = due_alerts(watcher, &moves, &crate::store::AlertTiers::new());
    if !seen.is_empty() {
        store.mark_alerts_seen(&seen).await?;
    }
    Ok(())
}

fn due_alerts(
    watcher: &AlertWatcher,
    moves: &HashMap<String, FreshMove>,
    sent: &crate::store::AlertTiers,
) -> Vec<DueAlert> {
    let watchlist = Watchlist::from_stored(&watcher.tickers);
    watchlist
        .tickers()
        .iter()
        .filter_map(|ticker| {
            let fresh = moves.get(ticker.as_str())?;
            let tier = move_tier(fresh.change_percent, watcher.alert_threshold_pct)?;
            let key = (watcher.id, ticker.to_string(), fresh.trading_day.clone(), tier.direction.to_string());
            if sent.get(&key).is_some_and(|&alerted| alerted >= tier.tier) {
                return None;
            }
            let alert = PriceAlert {
                symbol: ticker.to_string(),
                price: fresh.quote.price,
                previous_close: fresh.quote.previous_close,
                change_percent: fresh.change_percent,
                direction: tier.direction.to_string(),
                tier: tier.tier,
                threshold_percent: watcher.alert_threshold_pct,
                as_of: fresh.quote.as_of,
            };
            Some(DueAlert {
                subscriber_id: watcher.id,
                recipient: watcher.email.clone(),
                symbol: ticker.to_string(),
                trading_day: fresh.trading_day.clone(),
                direction: tier.direction,
                tier: tier.tier,
                alert,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_alerts_from_the_threshold_and_again_at_each_multiple() {
        assert_eq!(move_tier(4.9, 5.0), None);
        assert_eq!(move_tier(5.0, 5.0), Some(MoveTier { direction: "up", tier: 1 }));
        assert_eq!(move_tier(-9.99, 5.0), Some(MoveTier { direction: "down", tier: 1 }));
        assert_eq!(move_tier(-10.0, 5.0), Some(MoveTier { direction: "down", tier: 2 }));
        assert_eq!(move_tier(16.0, 5.0), Some(MoveTier { direction: "up", tier: 3 }));
        assert_eq!(move_tier(f64::NAN, 5.0), None);
        assert_eq!(move_tier(50.0, 0.0), None);
    }
}
