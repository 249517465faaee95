//! Integration tests: the real app on a real port, a real SQLite file, real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
mod helpers;
mod pg;
mod processing;
mod properties;
mod proxy;
mod replicas;
mod webhook;
