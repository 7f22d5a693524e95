//! calicoctl: manage `projectcalico.org/v3` resources in the datastore as Calico's calicoctl
//! does, with its commands, flags, output formats and messages.
//!
//! Main pieces: [`documents`] (resources from YAML/JSON files), [`commands`] (create, apply,
//! replace, delete, get, patch, label, version; each returns an [`commands::Outcome`]: what to
//! print and the exit status), [`ipam`] (`ipam show`, `check`, `release`, `configure`,
//! `split`), [`node`] (`node status`, from the BGP speaker's status socket), [`datastore_cmd`] (`datastore migrate lock|unlock`) and [`table`] (calicoctl's
//! `ps`/`wide` tables, and the boxed `ipam` tables). The binary only parses flags and prints
//! outcomes.
//!
//! It must never write anything when the input is invalid, and never report success unless
//! every resource succeeded.

pub mod commands;
pub mod datastore_cmd;
pub mod documents;
pub mod ipam;
pub mod node;
pub mod table;
