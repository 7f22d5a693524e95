//! The `projectcalico.org/v3` resources as Rust types: Calico's field names (so a user's YAML
//! round-trips), Calico's defaults and Calico's validation, plus the selector language.
//!
//! Main types: [`ResourceKind`] (the kind table: names, plurals, calicoctl aliases), the
//! [`Resource`] trait every kind implements, [`AnyResource`] (one value of any kind, read from
//! YAML or JSON by its `kind` field), [`ObjectMeta`], and [`selector::Selector`].
//!
//! This crate is pure: it never does I/O, never talks to a datastore, and never panics on user
//! input. Validation that needs other resources (overlapping pools, immutable fields) belongs to
//! the callers that can see them.

pub mod asn;
pub mod bgp_configuration;
pub mod bgp_filter;
pub mod bgp_peer;
pub mod cluster_information;
pub mod duration;
pub mod error;
pub mod felix_configuration;
pub mod host_endpoint;
pub mod ipam_config;
pub mod ippool;
pub mod ipreservation;
pub mod kind;
pub mod labels;
pub mod meta;
pub mod names;
pub mod net;
pub mod network_set;
pub mod node;
pub mod policy;
pub mod port;
pub mod profile;
pub mod protocol;
pub mod resource;
pub mod rule;
pub mod selector;
#[cfg(test)]
mod testing;
pub mod tier;
mod validation;
pub mod workload_endpoint;

pub use error::{ApiError, FieldError};
pub use kind::ResourceKind;
pub use meta::ObjectMeta;
pub use resource::{AnyResource, Kinded, Resource};

/// The `apiVersion` of every resource: `projectcalico.org/v3`.
pub const API_VERSION: &str = "projectcalico.org/v3";
/// The API group, as it appears in etcd keys (`/calico/resources/v3/projectcalico.org/...`).
pub const API_GROUP: &str = "projectcalico.org";
