//! tickermail: a self-hosted newsletter and stock-alert mailer for finance news sites.

pub mod config;
pub mod domain;
pub mod jobs;
pub mod mailer;
pub mod sources;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod web;
