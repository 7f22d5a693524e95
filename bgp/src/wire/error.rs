//! The two ways the codec fails: a received message that ends the session (with the
//! NOTIFICATION RFC 4271 §6 says to send), and a message we were asked to send that BGP cannot
//! carry.

use super::notification::Notification;

/// A received message that cannot be accepted: the session must be reset and this NOTIFICATION
/// sent (RFC 4271 §6, and RFC 7606 §2 "session reset" for UPDATEs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}; sending NOTIFICATION {notification}")]
pub struct DecodeError {
    /// What to send to the peer before closing the connection.
    pub notification: Notification,
    /// What was wrong, for the log.
    pub reason: String,
}

impl DecodeError {
    pub(crate) fn new(notification: Notification, reason: impl Into<String>) -> Self {
        DecodeError {
            notification,
            reason: reason.into(),
        }
    }
}

/// A message that cannot be put on the wire as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {length} octets exceeds the BGP maximum of 4096 (RFC 4271 §4.1)")]
    TooLong { length: usize },
    #[error("prefix {0} has bits set beyond its length; BGP sends only the network address")]
    HostBits(String),
    #[error(
        "AS number {0} does not fit in 2 octets and 4-octet AS was not negotiated \
         (RFC 6793 §4.2.2: send AS_TRANS with AS4_PATH/AS4_AGGREGATOR instead)"
    )]
    AsnTooLarge(u32),
    #[error("hold time {0} s is neither 0 nor at least 3 (RFC 4271 §4.2)")]
    HoldTime(u16),
    #[error("{what} is {length} octets, more than its length field can hold")]
    FieldTooLong { what: &'static str, length: usize },
    #[error("{0}")]
    Invalid(String),
}
