//! `IPReservation`: addresses Calico IPAM must never hand out (`ipreservation.go`).

use serde::{Deserialize, Serialize};

use crate::ObjectMeta;
use crate::net::parse_cidr_or_ip;
use crate::validation::{Problems, kind_impls};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IPReservation {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: IPReservationSpec,
}

kind_impls!(IPReservation);

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct IPReservationSpec {
    /// CIDRs or single addresses; host bits are allowed (Calico's `cidrs` validator).
    #[serde(
        default,
        rename = "reservedCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    pub reserved_cidrs: Option<Vec<String>>,
}

impl IPReservationSpec {
    /// The reserved networks that parse (validation reports the others).
    pub fn networks(&self) -> impl Iterator<Item = ipnetwork::IpNetwork> + '_ {
        self.reserved_cidrs
            .iter()
            .flatten()
            .filter_map(|c| parse_cidr_or_ip(c))
    }
}

impl IPReservation {
    fn defaults(&mut self) {}

    fn check(&self, p: &mut Problems) {
        p.subdomain("metadata.name", &self.metadata.name);
        for (i, c) in self.spec.reserved_cidrs.iter().flatten().enumerate() {
            if parse_cidr_or_ip(c).is_none() {
                p.add(
                    format!("spec.reservedCIDRs[{i}]"),
                    c,
                    "invalid CIDR or IP address",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_round_trip, errors, parse_error};

    #[test]
    fn round_trip_unchanged() {
        assert_round_trip(
            "
apiVersion: projectcalico.org/v3
kind: IPReservation
metadata:
  name: my-ipreservation-1
spec:
  reservedCIDRs:
    - 192.168.2.3
    - 10.0.2.3/32
    - cafe:f00d::/123
",
            "",
        );
    }

    #[test]
    fn bad_cidr() {
        assert_eq!(
            errors(
                "apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: r}\n\
                 spec: {reservedCIDRs: [10.0.0.0/8, 10.0.0.0/40]}\n"
            ),
            ["error with field spec.reservedCIDRs[1] = '10.0.0.0/40' (invalid CIDR or IP address)"]
        );
        let (path, _) = parse_error(
            "apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: r}\n\
             spec: {reservedCidrs: [10.0.0.0/8]}\n",
        );
        assert_eq!(path, "spec.reservedCidrs");
    }
}
