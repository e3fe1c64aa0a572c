//! The outbox's guarantees, checked on the store directly: leases, and
//! claims that never overlap.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::Connection;
use tickermail::domain::{DeliveryStatus, EditionState, SubscriberEmail, SubscriberName, SubscriberStatus, Watchlist};
use tickermail::store::{ColumnType, SignupOutcome, SignupRecord, Store};

use crate::helpers::fresh_database_url;

async fn fresh_store() -> Store {
    fresh_store_at(&fresh_database_url().await).await
}

async fn fresh_store_at(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
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
async fn the_sqlite_and_postgres_migrations_create_the_same_schema() {
    let sqlite_dir = std::fs::read_dir("migrations/sqlite").unwrap();
    let postgres_dir = std::fs::read_dir("migrations/postgres").unwrap();
    let names = |dir: std::fs::ReadDir| -> Vec<String> {
        let mut names: Vec<String> = dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(names(sqlite_dir), names(postgres_dir));

    let store = fresh_store().await;
    let schema = store.schema().await.unwrap();
    let claim_id = schema.columns.iter().find(|c| c.table == "deliveries" && c.name == "claim_id").unwrap();
    assert_eq!((&claim_id.column_type, claim_id.nullable), (&ColumnType::Blob, true));
    let due = schema.indexes.iter().find(|i| i.name == "deliveries_due").unwrap();
    assert_eq!(due.predicate.as_deref(), Some("status in 'queued', 'sending'"), "{due:?}");
    assert!(schema.unique_constraints.iter().any(|u| u.table == "subscribers" && u.columns == ["email"]));
    let other_url = match store.backend_name() {
        "postgres" => {
            let dir = std::env::temp_dir().join("tickermail-tests");
            format!("sqlite://{}", dir.join(format!("{}.db", uuid::Uuid::new_v4().simple())).display())
        }
        _ => match std::env::var("TEST_DATABASE_URL") {
            Ok(_) => unreachable!("with TEST_DATABASE_URL the fresh store is PostgreSQL"),
            // Without a PostgreSQL server only the file names can be compared here;
            // the PostgreSQL run of this suite compares the schemas.
            Err(_) => return,
        },
    };
    let other = Store::connect(&other_url).await.unwrap();
    other.migrate().await.unwrap();
    let other_schema = other.schema().await.unwrap();
    assert_same(store.backend_name(), &schema.columns, &other_schema.columns);
    assert_same(store.backend_name(), &schema.indexes, &other_schema.indexes);
    assert_same(store.backend_name(), &schema.unique_constraints, &other_schema.unique_constraints);
}

/// Fails with what only one of two backends' lists has, if anything.
fn assert_same<T: PartialEq + std::fmt::Debug>(backend: &str, ours: &[T], theirs: &[T]) {
    let only_ours: Vec<&T> = ours.iter().filter(|item| !theirs.contains(item)).collect();
    let only_theirs: Vec<&T> = theirs.iter().filter(|item| !ours.contains(item)).collect();
    assert!(
        only_ours.is_empty() && only_theirs.is_empty(),
        "only on {backend}: {only_ours:#?}\nonly on the other backend: {only_theirs:#?}"
    );
}

/// Binds each value into its column (through the column's CHECK), then reads
/// it back as the enum and as the text stored, which must be its `as_str`.
macro_rules! assert_stored_as_text {
    ($db:expr, $insert:literal, $select:literal, [$($value:expr),+]) => {{
        $(
            let id = uuid::Uuid::new_v4();
            sqlx::query($insert)
                .bind(id)
                .bind($value)
                .bind(tickermail::store::now())
                .bind(id.simple().to_string())
                .execute(&mut $db)
                .await
                .unwrap();
            let (value, text): (_, String) = sqlx::query_as($select).bind(id).fetch_one(&mut $db).await.unwrap();
            assert_eq!((value, text.as_str()), ($value, $value.as_str()));
        )+
    }};
}

macro_rules! assert_statuses_stored_as_text {
    ($db:expr) => {{
        assert_stored_as_text!(
            $db,
            "INSERT INTO subscribers (id, email, status, token_nonce, created_at, updated_at) \
             VALUES ($1, $4, $2, $4, $3, $3)",
            "SELECT status, status FROM subscribers WHERE id = $1",
            [
                SubscriberStatus::Pending,
                SubscriberStatus::Confirmed,
                SubscriberStatus::Unsubscribed,
                SubscriberStatus::Bounced
            ]
        );
        assert_stored_as_text!(
            $db,
            "INSERT INTO deliveries (id, kind, recipient, status, next_attempt_at, created_at, updated_at) \
             VALUES ($1, 'welcome', $4, $2, $3, $3, $3)",
            "SELECT status, status FROM deliveries WHERE id = $1",
            [
                DeliveryStatus::Queued,
                DeliveryStatus::Sending,
                DeliveryStatus::Sent,
                DeliveryStatus::Failed,
                DeliveryStatus::Suppressed
            ]
        );
        assert_stored_as_text!(
            $db,
            "INSERT INTO editions (id, kind, slot, created_at, state) VALUES ($1, 'daily', $4, $3, $2)",
            "SELECT state, state FROM editions WHERE id = $1",
            [EditionState::Sending, EditionState::Paused, EditionState::Cancelled]
        );
    }};
}

#[tokio::test]
async fn statuses_are_stored_as_the_text_the_migrations_allow() {
    let url = fresh_database_url().await;
    fresh_store_at(&url).await;
    if url.starts_with("postgres") {
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        assert_statuses_stored_as_text!(db);
    } else {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        assert_statuses_stored_as_text!(db);
    }
}

fn signup_of(email: &str) -> SignupRecord {
    SignupRecord {
        email: SubscriberEmail::parse(email).unwrap(),
        name: SubscriberName::default(),
        watchlist: Watchlist::default(),
        consent_ip: None,
        consent_user_agent: None,
        consent_source: "test".into(),
    }
}

#[tokio::test]
async fn two_identical_signups_in_one_batch_queue_one_confirmation() {
    let store = fresh_store().await;
    let signup = signup_of("same@example.com");
    let outcomes = store.record_signups(&[&signup, &signup], Duration::from_secs(300)).await.unwrap();
    let [SignupOutcome::ConfirmationQueued { subscriber_id }, SignupOutcome::RecentlyAsked { subscriber_id: again }] =
        outcomes[..]
    else {
        panic!("{outcomes:?}");
    };
    assert_eq!(subscriber_id, again);
    assert_eq!(store.subscriber_history(subscriber_id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_newer_signup_suppresses_the_confirmation_still_queued_for_an_older_one() {
    let store = fresh_store().await;
    let signup = signup_of("again@example.com");
    let first = store.record_signups(&[&signup], Duration::ZERO).await.unwrap();
    let second = store.record_signups(&[&signup], Duration::ZERO).await.unwrap();
    let [SignupOutcome::ConfirmationQueued { subscriber_id }] = first[..] else { panic!("{first:?}") };
    assert!(matches!(second[..], [SignupOutcome::ConfirmationQueued { .. }]), "{second:?}");
    let history = store.subscriber_history(subscriber_id).await.unwrap();
    let seen: Vec<(&str, &str, Option<&str>)> =
        history.iter().map(|d| (d.kind.as_str(), d.status.as_str(), d.last_error.as_deref())).collect();
    assert_eq!(
        seen,
        [("confirmation", "queued", None), ("confirmation", "suppressed", Some("superseded by a newer sign-up"))]
    );
}

/// Runs `$body` with `$pool` bound to the store's (writing) pool, whichever the backend.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            Store::Sqlite { writer: $pool, .. } => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

#[tokio::test]
async fn the_migration_merges_readers_whose_addresses_differ_only_in_letter_case() {
    use chrono::{DateTime, Duration as Span, Utc};
    use sqlx::migrate::Migrator;
    use uuid::Uuid;

    let store = Store::connect(&fresh_database_url().await).await.unwrap();
    let folder = format!("migrations/{}", store.backend_name());
    let mut before = Migrator::new(std::path::Path::new(&folder)).await.unwrap();
    before.migrations = before.migrations.iter().filter(|m| m.version <= 20261125000007).cloned().collect();
    on_pool!(&store, |pool| before.run(pool).await.unwrap());

    // At the schema before: the consent is a cell of subscribers.
    let t0: DateTime<Utc> = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    let readers = [
        ("Ann@X.com", "confirmed", 1, "form"),
        ("ann@x.com", "unsubscribed", 2, "api"),
        ("ANN@X.COM", "pending", 0, "import"),
        ("bo@x.com", "pending", 3, "form"),
        ("Cy@Y.com", "confirmed", 4, "form"),
        ("dee@x.com", "bounced", 5, "form"),
        ("DEE@x.com", "confirmed", 6, "form"),
    ];
    let ids: Vec<Uuid> = readers.iter().map(|_| Uuid::new_v4()).collect();
    for ((email, status, hours, source), id) in readers.iter().zip(&ids) {
        on_pool!(&store, |pool| sqlx::query(
            "INSERT INTO subscribers (id, email, status, token_nonce, consent_at, consent_ip, consent_source, \
                 created_at, updated_at) VALUES ($1, $2, $3, 'nonce', $4, '10.0.0.1', $5, $4, $4)"
        )
        .bind(id)
        .bind(email)
        .bind(status)
        .bind(t0 + Span::hours(*hours))
        .bind(source)
        .execute(pool)
        .await
        .map(drop)
        .unwrap());
    }
    let (edition_1, edition_2) = (Uuid::new_v4(), Uuid::new_v4());
    for (edition, slot) in [(edition_1, "digest:1"), (edition_2, "digest:2")] {
        on_pool!(&store, |pool| sqlx::query(
            "INSERT INTO editions (id, kind, slot, created_at) VALUES ($1, 'digest', $2, $3)"
        )
        .bind(edition)
        .bind(slot)
        .bind(t0)
        .execute(pool)
        .await
        .map(drop)
        .unwrap());
    }
    // Ann@X.com and ANN@X.COM both got edition 1; ann@x.com (the one kept)
    // and Ann@X.com both got edition 2.
    let deliveries = [
        (ids[0], Some(edition_1), "digest"),
        (ids[2], Some(edition_1), "digest"),
        (ids[0], None, "confirmation"),
        (ids[1], Some(edition_2), "digest"),
        (ids[0], Some(edition_2), "digest"),
    ];
    for (subscriber, edition, kind) in deliveries {
        on_pool!(&store, |pool| sqlx::query(
            "INSERT INTO deliveries (id, kind, subscriber_id, recipient, status, next_attempt_at, created_at, \
                 updated_at, edition_id) VALUES ($1, $2, $3, 'someone', 'sent', $4, $4, $4, $5)"
        )
        .bind(Uuid::new_v4())
        .bind(kind)
        .bind(subscriber)
        .bind(t0)
        .bind(edition)
        .execute(pool)
        .await
        .map(drop)
        .unwrap());
    }

    store.migrate().await.unwrap();

    let rows: Vec<(Uuid, String, String, DateTime<Utc>)> =
        on_pool!(&store, |pool| sqlx::query_as("SELECT id, email, status, created_at FROM subscribers ORDER BY email")
            .fetch_all(pool)
            .await
            .unwrap());
    let seen: Vec<(&str, &str)> = rows.iter().map(|(_, email, status, _)| (email.as_str(), status.as_str())).collect();
    assert_eq!(
        seen,
        [("ann@x.com", "unsubscribed"), ("bo@x.com", "pending"), ("cy@y.com", "confirmed"), ("dee@x.com", "bounced")]
    );
    assert_eq!(rows[0].0, ids[1], "the most restrictive row is kept");
    assert_eq!(rows[0].3, t0, "known since the earliest of the rows");
    assert_eq!(rows[3].0, ids[5]);

    let consents: Vec<(String, DateTime<Utc>)> =
        on_pool!(&store, |pool| sqlx::query_as("SELECT source, at FROM consents WHERE subscriber_id = $1 ORDER BY at")
            .bind(ids[1])
            .fetch_all(pool)
            .await
            .unwrap());
    let sources: Vec<&str> = consents.iter().map(|(source, _)| source.as_str()).collect();
    assert_eq!(sources, ["import", "form", "api"], "every merged row's consent is kept");
    assert_eq!(consents[0].1, t0);
    let all_consents: i64 =
        on_pool!(&store, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM consents").fetch_one(pool).await.unwrap());
    assert_eq!(all_consents, 7);

    let kept: Vec<(Option<Uuid>, String)> = on_pool!(&store, |pool| sqlx::query_as(
        "SELECT edition_id, kind FROM deliveries WHERE subscriber_id = $1 ORDER BY kind, edition_id"
    )
    .bind(ids[1])
    .fetch_all(pool)
    .await
    .unwrap());
    let mut editions: Vec<Option<Uuid>> = kept.iter().map(|(edition, _)| *edition).collect();
    editions.sort();
    let mut expected = vec![None, Some(edition_1), Some(edition_2)];
    expected.sort();
    assert_eq!(editions, expected, "one delivery per edition moves over, and the confirmation");
    let total: i64 =
        on_pool!(&store, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM deliveries").fetch_one(pool).await.unwrap());
    assert_eq!(total, 5, "deliveries that would collide stay, without a reader");
}

#[tokio::test]
async fn a_worker_extends_the_leases_it_holds_and_no_one_else_s() {
    let store = fresh_store().await;
    queue_confirmations(&store, 2).await;
    let mine = store.claim_due_deliveries(1, Duration::from_millis(300), 8).await.unwrap();
    let theirs = store.claim_due_deliveries(1, Duration::from_millis(300), 8).await.unwrap();
    let held: Vec<(uuid::Uuid, uuid::Uuid)> = mine.iter().map(|d| (d.id, d.claim_id)).collect();
    // Someone else's claim, named with one of mine, is not extended.
    let forged = [(theirs[0].id, mine[0].claim_id)];
    assert_eq!(store.extend_leases(&held, Duration::from_secs(60)).await.unwrap(), 1);
    assert_eq!(store.extend_leases(&forged, Duration::from_secs(60)).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken_over = store.claim_due_deliveries(10, Duration::from_secs(60), 8).await.unwrap();
    let ids: Vec<_> = taken_over.iter().map(|d| d.id).collect();
    assert_eq!(ids, [theirs[0].id], "only the lease nobody extended ran out");
}
