//! Logging into the host's log; lines are tagged with the delivery being worked on.

use crate::bindings::pushrail::destination::log::{log, Level};

pub fn debug(message: &str) {
    log(Level::Debug, message);
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn error(message: &str) {
    log(Level::Error, message);
}
