//! Which address a request counts as behind a reverse proxy: the one the
//! trusted proxy appended, never one the client wrote itself. The test client
//! connects from 127.0.0.1, a trusted proxy by default.

use crate::helpers::{TEST_ADMIN_EMAIL, TestApp, spawn_app_with};

impl TestApp {
    /// The address stored with the (newest) consent of `email`, read through the admin API.
    async fn consent_ip_of(&self, email: &str) -> serde_json::Value {
        let found =
            self.admin_get_json(&format!("/admin/api/subscribers?email={}", crate::helpers::urlencode(email))).await;
        let id = found["subscribers"][0]["id"].as_str().unwrap_or_else(|| panic!("{email} not found: {found}"));
        let record = self.admin_get_json(&format!("/admin/api/subscribers/{id}")).await;
        record["consents"][0]["ip"].clone()
    }
}

#[tokio::test]
async fn wrong_admin_logins_with_a_rotating_first_forwarded_entry_are_still_limited() {
    let app = spawn_app_with(&[("TRUST_PROXY_HEADERS", "true"), ("ADMIN_LOGIN_ATTEMPTS_PER_MINUTE", "5")]).await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let forwarded = format!("203.0.113.{i}, 198.51.100.7");
        let response = app
            .post_admin_login_with_headers(TEST_ADMIN_EMAIL, "wrong-password-123", &[("X-Forwarded-For", &forwarded)])
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
}

#[tokio::test]
async fn signups_with_a_rotating_first_forwarded_entry_hit_the_hourly_limit() {
    let app = spawn_app_with(&[("TRUST_PROXY_HEADERS", "true"), ("SIGNUP_LIMIT_PER_HOUR", "3")]).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let forwarded = format!("203.0.113.{i}, 198.51.100.7");
        let response = app
            .post_subscriptions_form_with_headers(
                &format!("email=r{i}%40example.com"),
                &[("X-Forwarded-For", &forwarded)],
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429]);
}

#[tokio::test]
async fn an_unparseable_forwarded_header_falls_back_to_the_peer_and_is_still_limited() {
    for mode in ["true", "forwarded"] {
        let app = spawn_app_with(&[("TRUST_PROXY_HEADERS", mode), ("SIGNUP_LIMIT_PER_HOUR", "2")]).await;
        let mut statuses = Vec::new();
        for i in 0..4 {
            let garbage = format!("unknown-{i}");
            let header = if mode == "true" { "X-Forwarded-For" } else { "Forwarded" };
            let value = if mode == "true" { garbage.clone() } else { format!("for={garbage}") };
            let response = app
                .post_subscriptions_form_with_headers(&format!("email=g{i}%40example.com"), &[(header, &value)])
                .await;
            statuses.push(response.status().as_u16());
        }
        assert_eq!(statuses, [200, 200, 429, 429], "TRUST_PROXY_HEADERS={mode}");
        assert_eq!(app.consent_ip_of("g0@example.com").await, "127.0.0.1", "the peer is recorded");
    }
}

#[tokio::test]
async fn two_ipv6_addresses_in_one_64_share_a_limit() {
    let app = spawn_app_with(&[("TRUST_PROXY_HEADERS", "true"), ("SIGNUP_LIMIT_PER_HOUR", "1")]).await;
    let first = app
        .post_subscriptions_form_with_headers("email=v1%40example.com", &[("X-Forwarded-For", "2001:db8:1:2::1")])
        .await;
    assert_eq!(first.status(), 200);
    let same_64 = app
        .post_subscriptions_form_with_headers(
            "email=v2%40example.com",
            &[("X-Forwarded-For", "2001:db8:1:2:ffff:eeee:dddd:9")],
        )
        .await;
    assert_eq!(same_64.status(), 429, "a neighbour in the same /64 is the same client");
    let other_64 = app
        .post_subscriptions_form_with_headers("email=v3%40example.com", &[("X-Forwarded-For", "2001:db8:1:3::1")])
        .await;
    assert_eq!(other_64.status(), 200, "the next /64 is someone else");
    assert_eq!(app.consent_ip_of("v1@example.com").await, "2001:db8:1:2::1", "the full address is recorded");
}

#[tokio::test]
async fn the_consent_record_stores_the_rightmost_address_that_is_not_a_trusted_proxy() {
    let app =
        spawn_app_with(&[("TRUST_PROXY_HEADERS", "true"), ("TRUSTED_PROXIES", "127.0.0.0/8, 10.1.0.0/16, ::1")]).await;
    // The client wrote the first entry; the edge proxy appended the client's
    // real address, and an inner proxy (10.1.2.3) its own.
    let forwarded = [("X-Forwarded-For", "203.0.113.9, 198.51.100.7, 10.1.2.3")];
    assert_eq!(app.post_subscriptions_form_with_headers("email=ann%40example.com", &forwarded).await.status(), 200);
    assert_eq!(app.consent_ip_of("ann@example.com").await, "198.51.100.7");
    // A proxy may add a line of its own rather than extend the client's.
    let two_lines = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-For", "198.51.100.8")];
    assert_eq!(app.post_subscriptions_form_with_headers("email=bob%40example.com", &two_lines).await.status(), 200);
    assert_eq!(app.consent_ip_of("bob@example.com").await, "198.51.100.8");
}

#[tokio::test]
async fn forwarded_is_read_only_when_configured_and_x_forwarded_for_then_is_not() {
    let both = [("Forwarded", "for=203.0.113.50"), ("X-Forwarded-For", "198.51.100.7")];
    let app = spawn_app_with(&[("TRUST_PROXY_HEADERS", "true")]).await;
    assert_eq!(app.post_subscriptions_form_with_headers("email=xff%40example.com", &both).await.status(), 200);
    assert_eq!(app.consent_ip_of("xff@example.com").await, "198.51.100.7");

    let app = spawn_app_with(&[("TRUST_PROXY_HEADERS", "forwarded")]).await;
    assert_eq!(app.post_subscriptions_form_with_headers("email=fwd%40example.com", &both).await.status(), 200);
    assert_eq!(app.consent_ip_of("fwd@example.com").await, "203.0.113.50");
    let v6 = [("Forwarded", "for=192.0.2.1;proto=https, for=\"[2001:db8:cafe::17]:4711\";by=127.0.0.1")];
    assert_eq!(app.post_subscriptions_form_with_headers("email=fwd6%40example.com", &v6).await.status(), 200);
    assert_eq!(app.consent_ip_of("fwd6@example.com").await, "2001:db8:cafe::17");
}

#[tokio::test]
async fn proxy_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored() {
    let app = spawn_app_with(&[("TRUST_PROXY_HEADERS", "true"), ("TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    let forwarded = [("X-Forwarded-For", "198.51.100.7")];
    assert_eq!(app.post_subscriptions_form_with_headers("email=direct%40example.com", &forwarded).await.status(), 200);
    assert_eq!(app.consent_ip_of("direct@example.com").await, "127.0.0.1");
}
