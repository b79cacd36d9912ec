//! End to end through the real binary for the destination types that speak a binary protocol
//! through the host's `net` interface. For each type: a batch published through the vendor API is
//! delivered to a real local server and read back with an independent client (a Python library
//! from PyPI, under `host/tests/peers/`); a refused login is a `permanent_error`; a server that is
//! not there yet is a `retryable_error`, and the delivery succeeds once it is.
//!
//! Run with `scripts/test`, or alone with
//! `cargo test -p pushrail --test protocols` once `scripts/test` has built the plugins, set up the
//! Python venv and installed tansu (see `scripts/lib.sh`).

#[path = "../common/mod.rs"]
mod common;
mod google;
mod support;

mod aws_role;
mod azure_blob;
mod azure_service_bus;
mod bigquery;
mod eventbridge;
mod firehose;
mod gcp_pubsub;
mod gcs;
mod kafka;
mod kinesis;
mod mqtt;
mod nats;
mod postgres;
mod rabbitmq;
mod redis_streams;
mod s3;
mod sns;
mod sqs;
