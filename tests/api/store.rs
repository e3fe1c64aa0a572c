//! The outbox's guarantees, checked on the store directly: leases, and
//! claims that never overlap.

use std::collections::HashSet;
use std::time::Duration;

use tickermail::domain::{SubscriberEmail, SubscriberName, Watchlist};
use tickermail::store::{SignupOutcome, SignupRecord, Store};

use crate::helpers::fresh_database_url;

async fn fresh_store() -> Store {
    let store = Store::connect(&fresh_database_url().await).await.unwrap();
    store.migrate().await.unwrap();
    store
}

pub async fn queue_confirmations(store: &Store, count: usize) {
    for i in 0..count {
        let signup = SignupRecord {
            email: SubscriberEmail::parse(&format!("s{i}@example.com")).unwrap(),
            name: SubscriberName::default(),
            watchlist: Watchlist::default(),
            consent_ip: None,
            consent_user_agent: None,
            consent_source: "test".into(),
        };
        let outcomes = store.record_signups(&[&signup], Duration::from_secs(300)).await.unwrap();
        assert!(matches!(outcomes[..], [SignupOutcome::ConfirmationQueued { .. }]));
    }
}

#[tokio::test]
async fn a_claimed_delivery_is_not_claimed_again_until_its_lease_runs_out() {
    let store = fresh_store().await;
    queue_confirmations(&store, 1).await;
    let first = store.claim_due_deliveries(10, Duration::from_secs(1), 8).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempts, 1);
    assert!(store.claim_due_deliveries(10, Duration::from_secs(1), 8).await.unwrap().is_empty());

    // The first worker "died" without marking it: after the lease it is due again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = store.claim_due_deliveries(10, Duration::from_secs(60), 8).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(second[0].attempts, 2);

    // The dead worker's late mark is refused: only the current claim counts.
    assert_eq!(store.mark_deliveries_sent(first[0].claim_id, &[first[0].id], "example.com").await.unwrap(), 0);
    assert_eq!(store.mark_deliveries_sent(second[0].claim_id, &[second[0].id], "example.com").await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_claims_never_hand_out_the_same_delivery_twice() {
    let store = fresh_store().await;
    queue_confirmations(&store, 60).await;
    let claims = (0..4).map(|_| store.claim_due_deliveries(20, Duration::from_secs(60), 8));
    let batches = futures_util::future::try_join_all(claims).await.unwrap();
    let ids: Vec<_> = batches.iter().flatten().map(|d| d.id).collect();
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), distinct.len(), "a delivery was claimed twice");
    assert_eq!(ids.len(), 60);
}

#[tokio::test]
async fn the_sqlite_and_postgres_migrations_create_the_same_tables_and_columns() {
    let sqlite_dir = std::fs::read_dir("migrations/sqlite").unwrap();
    let postgres_dir = std::fs::read_dir("migrations/postgres").unwrap();
    let names = |dir: std::fs::ReadDir| -> Vec<String> {
        let mut names: Vec<String> = dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(names(sqlite_dir), names(postgres_dir));

    let store = fresh_store().await;
    let columns = store.table_columns().await.unwrap();
    assert!(columns.contains(&("deliveries".to_string(), "claim_id".to_string())));
    let other_url = match store.backend_name() {
        "postgres" => {
            let dir = std::env::temp_dir().join("tickermail-tests");
            format!("sqlite://{}", dir.join(format!("{}.db", uuid::Uuid::new_v4().simple())).display())
        }
        _ => match std::env::var("TEST_DATABASE_URL") {
            Ok(_) => unreachable!("with TEST_DATABASE_URL the fresh store is PostgreSQL"),
            // Without a PostgreSQL server only the file names can be compared here;
            // the PostgreSQL run of this suite compares the columns.
            Err(_) => return,
        },
    };
    let other = Store::connect(&other_url).await.unwrap();
    other.migrate().await.unwrap();
    assert_eq!(columns, other.table_columns().await.unwrap());
}
