//! The Pushrail host: tenancy, sessions, the credential vault, ingest, the delivery engine,
//! delivery logs and replay, all around sandboxed destination plugins.

pub mod api;
pub mod auth;
pub mod aws_roles;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod engine;
pub mod error;
pub mod ids;
pub mod operator;
pub use pushrail_sandbox as sandbox;
pub mod scope;
pub mod store;
pub mod vault;
