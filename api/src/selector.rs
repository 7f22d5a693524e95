//! Calico's selector language: parsing (with an error that says where), evaluation against a
//! label map, and a canonical printed form. Filled in by the selector work of the foundation
//! issue.
