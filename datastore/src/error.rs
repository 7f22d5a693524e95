//! Datastore errors, worded as Calico words them so users recognise them.

use thiserror::Error;

use crate::Key;

#[derive(Debug, Error)]
pub enum Error {
    #[error("resource does not exist: {0}")]
    NotFound(Key),
    #[error("resource already exists: {0}")]
    AlreadyExists(Key),
    /// The object moved since the revision the caller read: re-read and retry.
    #[error("update conflict: {0}")]
    Conflict(Key),
    /// The revision a watch or read asked for has been compacted away: re-list.
    #[error("required revision has been compacted (oldest available: {compact_revision})")]
    Compacted { compact_revision: i64 },
    #[error("invalid resourceVersion '{0}': expected a positive integer")]
    InvalidRevision(String),
    /// The store could not be reached or failed the request.
    #[error("datastore unavailable: {0}")]
    Unavailable(String),
    /// A stored value is not what its key says it is.
    #[error("failed to parse datastore entry {key}: {reason}")]
    Decode { key: Key, reason: String },
    /// A resource cannot be written as given (missing name, wrong namespace, ...).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Api(#[from] api::ApiError),
    /// The datastore configuration is unusable.
    #[error("datastore configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether retrying the same operation on fresh state may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }
}
