//! The crate's error type.

use thiserror::Error;

/// What can go wrong outside a job's own run (a job's own failure is an
/// [`crate::Outcome`], not an error).
#[derive(Debug, Error)]
pub enum JobError {
    /// The broker refused or dropped something.
    #[error("amqp: {0}")]
    Amqp(String),
    /// A message that is not one of ours.
    #[error("cannot decode a message: {0}")]
    Decode(String),
}

impl From<lapin::Error> for JobError {
    fn from(e: lapin::Error) -> Self {
        JobError::Amqp(describe(&e))
    }
}

/// An lapin error in words (lapin's messages carry no credentials).
pub fn describe(e: &lapin::Error) -> String {
    e.to_string().to_lowercase()
}
