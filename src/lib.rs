//! sinch-webhooks: a durable, verified receiver for Sinch callbacks.
//!
//! A callback's path through the crate: [`http`] reads the raw body and answers, after
//! [`signature`] verified it and [`callback`] classified it; [`journal`] commits it to the
//! [`store`] (group commit) before the answer; [`dispatch`] then hands it to [`handlers`],
//! whose effects the store applies together with marking it processed.

pub mod activity;
pub mod answer;
pub mod app;
pub mod auth;
pub mod backoff;
pub mod callback;
pub mod cli;
pub mod client;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod forward;
pub mod handlers;
pub mod health;
pub mod http;
pub mod journal;
pub mod metrics;
pub mod redact;
pub mod replay;
pub mod samples;
pub mod signature;
pub mod store;
pub mod sync;
pub mod telemetry;
