//! Integration tests: the real app on a real port, a real SQLite file, real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod answers;
mod browser;
mod cli_schemes;
#[macro_use]
mod contract;
// After `contract`, whose macro they use.
mod aggregates;
mod aggregates_http;
mod answer_deadlines;
mod answer_store;
mod crash;
mod deploy;
mod domain;
mod faults;
mod forward;
mod helpers;
mod hostile;
mod inspector;
mod inspector_send;
mod layout;
mod nats;
mod openapi;
mod ownership;
mod pg;
mod process;
mod processing;
mod properties;
mod proxy;
mod query_api;
mod reads;
mod replicas;
mod secrets;
mod shell;
mod sources;
mod spool;
mod store_faults;
mod stream;
mod verify;
mod webhook;
