//! Black-box tests: each starts the real application and talks to it over HTTP and SMTP.

mod admin_pages;
mod admin_subscribers;
mod alerts;
mod browser;
mod cli;
mod client_addresses;
mod delivery;
mod digest;
mod digest_delivery;
mod feed_safety;
mod health;
mod helpers;
mod invariants;
mod lifecycle;
mod model;
mod public_api;
mod quote_sanity;
mod replay;
mod scripted_smtp;
mod signup;
mod slow_clients;
mod smtp_client;
mod smtp_sink;
mod sources;
mod store;
mod test_send;
