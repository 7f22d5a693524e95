//! Collecting a resource's field errors, and the checks several kinds share.

use crate::{ApiError, FieldError, ResourceKind};

/// The problems found in one resource, in the order they were found.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<FieldError>);

impl Problems {
    pub(crate) fn new() -> Self {
        Problems::default()
    }

    pub(crate) fn add(
        &mut self,
        field: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) {
        self.0.push(FieldError::new(field, value, reason));
    }

    pub(crate) fn check(&mut self, result: Result<(), FieldError>) {
        if let Err(e) = result {
            self.0.push(e);
        }
    }

    /// `Ok` when nothing was found, else the Calico-shaped validation error.
    pub(crate) fn finish(self, kind: ResourceKind, name: &str) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation {
                kind,
                name: name.to_string(),
                errors: self.0,
            })
        }
    }

    /// A selector field: it must parse. Calico's IPPool, BGPPeer and FelixConfiguration
    /// selectors all use the same language.
    pub(crate) fn selector(&mut self, field: &str, value: Option<&str>) {
        let Some(v) = value else { return };
        if let Err(e) = crate::selector::parse(v) {
            self.add(
                field,
                v,
                format!("invalid selector: {} at position {}", e.reason, e.position),
            );
        }
    }

    /// An IP address of one family (`v4` or not); empty or absent is fine.
    pub(crate) fn ip_of_family(&mut self, field: &str, value: Option<&str>, v4: bool) {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return;
        };
        if !v
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_ipv4() == v4)
        {
            let family = if v4 { "IPv4" } else { "IPv6" };
            self.add(field, v, format!("must be an {family} address"));
        }
    }

    /// A name-like reference to another resource (Calico's `name` validator: a DNS-1123
    /// subdomain).
    pub(crate) fn subdomain(&mut self, field: &str, value: &str) {
        self.check(crate::names::check_subdomain(field, value));
    }
}

/// The trait impls every typed kind shares. The type must have `api_version`, `kind`,
/// `metadata` and `spec` fields (plus the `extra` ones, defaulted), and inherent methods
/// `defaults(&mut self)` and `check(&self, &mut Problems)` for its own rules; type meta is
/// checked here first.
macro_rules! kind_impls {
    ($ty:ident $(, $extra:ident)*) => {
        impl Default for $ty {
            fn default() -> Self {
                $ty {
                    api_version: $crate::API_VERSION.to_string(),
                    kind: $crate::ResourceKind::$ty.name().to_string(),
                    metadata: Default::default(),
                    spec: Default::default(),
                    $($extra: Default::default(),)*
                }
            }
        }

        impl $crate::Resource for $ty {
            fn kind(&self) -> $crate::ResourceKind {
                $crate::ResourceKind::$ty
            }
            fn metadata(&self) -> &$crate::ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut $crate::ObjectMeta {
                &mut self.metadata
            }
            fn apply_defaults(&mut self) {
                self.defaults();
            }
            fn validate(&self) -> Result<(), $crate::ApiError> {
                $crate::resource::check_type_meta(
                    $crate::ResourceKind::$ty,
                    &self.api_version,
                    &self.kind,
                )?;
                let mut problems = $crate::validation::Problems::new();
                self.check(&mut problems);
                problems.finish($crate::ResourceKind::$ty, &self.metadata.name)
            }
        }

        impl $crate::Kinded for $ty {
            const KIND: $crate::ResourceKind = $crate::ResourceKind::$ty;
        }
    };
}
pub(crate) use kind_impls;
