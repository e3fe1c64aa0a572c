//! Clients that send slowly, or hold many connections, cannot hold the server.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{TEST_ADMIN_TOKEN, TestApp, spawn_app_with};

const SIGNUP_HEAD: &str = "POST /subscriptions HTTP/1.1\r\nHost: test\r\n\
                           Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";

impl TestApp {
    fn port(&self) -> u16 {
        self.address.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// A raw connection to the app from `source` (any 127.x.y.z is this host).
    async fn connect_from(&self, source: &str) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(format!("127.0.0.1:{}", self.port()).parse().unwrap()).await.expect("connects")
    }
}

/// Everything the server sends until it closes (a reset counts as closing).
async fn read_until_closed(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buffer).await {
        answer.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `head`, then the body a byte a second; the answer, how long after
/// the head it began (or the connection closed), and when it closed.
async fn trickle(app: &TestApp, head: String, body: &'static [u8]) -> (String, Duration, Duration) {
    let (mut read, mut write) = app.connect_from("127.0.0.1").await.into_split();
    write.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for byte in body {
            if write.write_all(std::slice::from_ref(byte)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut first = [0u8; 1];
    let answered = tokio::time::timeout(Duration::from_secs(30), read.read(&mut first))
        .await
        .unwrap_or_else(|_| panic!("no answer after {:?}", started.elapsed()));
    let answered_after = started.elapsed();
    let rest = tokio::time::timeout(Duration::from_secs(30), read_until_closed(&mut read))
        .await
        .unwrap_or_else(|_| panic!("still open after {:?}", started.elapsed()));
    writer.abort();
    let answer = match answered {
        Ok(1) => format!("{}{rest}", first[0] as char),
        _ => String::new(),
    };
    (answer, answered_after, started.elapsed())
}

/// The status of `GET /health` over `stream`, or 0 when it is closed unanswered.
async fn health_status(mut stream: TcpStream) -> u16 {
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn a_body_trickled_one_byte_a_second_is_cut_at_the_deadline() {
    let app = spawn_app_with(&[("BODY_TIMEOUT_SECONDS", "3")]).await;
    let (answer, answered, closed) = trickle(&app, SIGNUP_HEAD.into(), &[b'e'; 100]).await;
    eprintln!("a trickling body was answered after {answered:?}, its connection closed after {closed:?}");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answered >= Duration::from_millis(2900), "not before the deadline: {answered:?}");
    assert!(answered < Duration::from_millis(4500), "at the deadline: {answered:?}");
    // actix then gives the client a second (client_disconnect_timeout) to close its end.
    assert!(closed < Duration::from_secs(6), "closed soon after: {closed:?}");
}

#[tokio::test]
async fn the_admin_import_may_send_its_body_for_longer_than_a_public_form() {
    let app = spawn_app_with(&[("BODY_TIMEOUT_SECONDS", "1"), ("IMPORT_BODY_TIMEOUT_SECONDS", "30")]).await;
    let csv: &[u8] = b"email\nslow@example.com\n";
    let head = format!(
        "POST /admin/api/subscribers/import?consent=yes HTTP/1.1\r\nHost: test\r\n\
         Authorization: Bearer {TEST_ADMIN_TOKEN}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        csv.len()
    );
    // Three seconds a byte at a time, then the rest at once.
    let (mut read, mut write) = app.connect_from("127.0.0.1").await.into_split();
    write.write_all(head.as_bytes()).await.unwrap();
    for byte in &csv[..3] {
        write.write_all(std::slice::from_ref(byte)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    write.write_all(&csv[3..]).await.unwrap();
    let answer = read_until_closed(&mut read).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"imported\":1"), "{answer}");

    let (answer, answered, _) = trickle(&app, SIGNUP_HEAD.into(), &[b'e'; 100]).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answered < Duration::from_secs(3), "a public form gets its own deadline: {answered:?}");
}

#[tokio::test]
async fn more_connections_than_the_cap_from_one_address_are_refused_while_another_is_served() {
    let app = spawn_app_with(&[("MAX_CONNECTIONS_PER_CLIENT", "4")]).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = app.connect_from("127.0.0.1").await;
        stream.write_all(SIGNUP_HEAD.as_bytes()).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(health_status(app.connect_from("127.0.0.1").await).await, 429, "a fifth from the same address");
    assert_eq!(health_status(app.connect_from("127.0.0.2").await).await, 200, "another address is served");
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(health_status(app.connect_from("127.0.0.1").await).await, 200, "served again once they are gone");
}
