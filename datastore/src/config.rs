//! How calicoctl and calico-node find the datastore: Calico's `CalicoAPIConfig` file
//! (`/etc/calico/calicoctl.cfg` by default) and its environment variables.
//!
//! As the issue asks, environment variables win over the file: the file is read first (when
//! given, or when the default one exists), then every variable that is set replaces its field.
//! With neither, the datastore is etcd v3 at `http://127.0.0.1:2379` (Calico would pick the
//! Kubernetes datastore; ours is etcd until the Kubernetes backend lands, see README).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;

/// The default config file calicoctl reads.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/calico/calicoctl.cfg";
/// Where etcd is assumed to be when nothing says otherwise.
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

/// Which datastore, and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatastoreConfig {
    Etcd(EtcdConfig),
    /// Recognised so the error can say what is missing; the backend comes with its issue.
    Kubernetes {
        kubeconfig: Option<String>,
    },
}

/// etcd connection settings, as `CalicoAPIConfig.spec.etcd*` (or the `ETCD_*` variables) has
/// them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `http://host:2379`, or `https://` with TLS files.
    pub endpoints: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM client key and certificate, together, for mutual TLS.
    pub key_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    /// PEM CA bundle to verify the servers with.
    pub ca_cert_file: Option<PathBuf>,
}

/// `CalicoAPIConfig` as written in the file (unknown fields are an error, as Calico's strict
/// YAML parsing makes them).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ApiConfigFile {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    spec: ApiConfigSpec,
}

// Every field of Calico's spec is accepted so a user's existing file parses; the Kubernetes
// ones are read when that backend lands.
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct ApiConfigSpec {
    datastore_type: Option<String>,
    etcd_endpoints: Option<String>,
    etcd_discovery_srv: Option<String>,
    etcd_username: Option<String>,
    etcd_password: Option<String>,
    etcd_key_file: Option<String>,
    etcd_cert_file: Option<String>,
    #[serde(rename = "etcdCACertFile")]
    etcd_ca_cert_file: Option<String>,
    etcd_key: Option<String>,
    etcd_cert: Option<String>,
    #[serde(rename = "etcdCACert")]
    etcd_ca_cert: Option<String>,
    kubeconfig: Option<String>,
    #[serde(rename = "k8sAPIEndpoint")]
    k8s_api_endpoint: Option<String>,
    k8s_key_file: Option<String>,
    k8s_cert_file: Option<String>,
    #[serde(rename = "k8sCAFile")]
    k8s_ca_file: Option<String>,
    #[serde(rename = "k8sAPIToken")]
    k8s_api_token: Option<String>,
    k8s_insecure_skip_tls_verify: Option<bool>,
    k8s_disable_node_poll: Option<bool>,
    #[serde(rename = "usePodCIDR")]
    use_pod_cidr: Option<bool>,
    kubeconfig_inline: Option<String>,
    #[serde(rename = "k8sClientQPS")]
    k8s_client_qps: Option<f64>,
    k8s_client_burst: Option<i64>,
    k8s_current_context: Option<String>,
    #[serde(rename = "calicoAPIGroup")]
    calico_api_group: Option<String>,
}

impl DatastoreConfig {
    /// Load the configuration as calicoctl does: `file` (an explicit `-c`, which must exist),
    /// else the default file if it exists; then the environment on top.
    pub fn load(file: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        Self::load_with_default(file, Path::new(DEFAULT_CONFIG_FILE), env)
    }

    fn load_with_default(
        file: Option<&Path>,
        default: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let path = match file {
            Some(p) => Some(p),
            None if default.exists() => Some(default),
            None => None,
        };
        let mut spec = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| Error::Config(format!("cannot read {}: {e}", p.display())))?;
                parse_file(&text)
                    .map_err(|e| Error::Config(format!("syntax error in {}: {e}", p.display())))?
            }
            None => ApiConfigSpec::default(),
        };
        let set = |field: &mut Option<String>, var: &str| {
            if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                *field = Some(v);
            }
        };
        set(&mut spec.datastore_type, "DATASTORE_TYPE");
        set(&mut spec.etcd_endpoints, "ETCD_ENDPOINTS");
        set(&mut spec.etcd_username, "ETCD_USERNAME");
        set(&mut spec.etcd_password, "ETCD_PASSWORD");
        set(&mut spec.etcd_key_file, "ETCD_KEY_FILE");
        set(&mut spec.etcd_cert_file, "ETCD_CERT_FILE");
        set(&mut spec.etcd_ca_cert_file, "ETCD_CA_CERT_FILE");
        set(&mut spec.kubeconfig, "KUBECONFIG");
        from_spec(spec)
    }

    /// Load with the process environment.
    pub fn load_from_env(file: Option<&Path>) -> Result<Self, Error> {
        Self::load(file, |k| std::env::var(k).ok())
    }
}

fn parse_file(text: &str) -> Result<ApiConfigSpec, String> {
    let file: ApiConfigFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let _ = &file.metadata;
    match file.api_version.as_deref() {
        Some(api::API_VERSION) => {}
        other => {
            return Err(format!(
                "unknown APIVersion '{}'",
                other.unwrap_or_default()
            ));
        }
    }
    match file.kind.as_deref() {
        Some("CalicoAPIConfig") => {}
        other => {
            return Err(format!(
                "expected kind 'CalicoAPIConfig', got '{}'",
                other.unwrap_or_default()
            ));
        }
    }
    Ok(file.spec)
}

fn from_spec(spec: ApiConfigSpec) -> Result<DatastoreConfig, Error> {
    match spec.datastore_type.as_deref() {
        None | Some("etcdv3") => {
            let endpoints: Vec<String> = spec
                .etcd_endpoints
                .as_deref()
                .unwrap_or(DEFAULT_ETCD_ENDPOINT)
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect();
            if endpoints.is_empty() {
                return Err(Error::Config("etcdEndpoints is empty".into()));
            }
            if spec.etcd_key.is_some() || spec.etcd_cert.is_some() || spec.etcd_ca_cert.is_some() {
                return Err(Error::Config(
                    "inline etcdKey/etcdCert/etcdCACert are not supported; \
                     use etcdKeyFile/etcdCertFile/etcdCACertFile"
                        .into(),
                ));
            }
            Ok(DatastoreConfig::Etcd(EtcdConfig {
                endpoints,
                username: spec.etcd_username,
                password: spec.etcd_password,
                key_file: spec.etcd_key_file.map(PathBuf::from),
                cert_file: spec.etcd_cert_file.map(PathBuf::from),
                ca_cert_file: spec.etcd_ca_cert_file.map(PathBuf::from),
            }))
        }
        Some("kubernetes") => Ok(DatastoreConfig::Kubernetes {
            kubeconfig: spec.kubeconfig,
        }),
        Some(other) => Err(Error::Config(format!(
            "unknown datastoreType '{other}': expected 'etcdv3' or 'kubernetes'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<DatastoreConfig, Error> {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("calicoctl.cfg");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let absent_default = dir.join("absent.cfg");
        DatastoreConfig::load_with_default(file.map(|_| path.as_path()), &absent_default, |k| {
            env.get(k).cloned()
        })
    }

    const FILE: &str = "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\n\
        spec:\n  datastoreType: etcdv3\n  etcdEndpoints: http://10.0.0.1:2379,http://10.0.0.2:2379\n";

    #[test]
    fn file_is_read() {
        let DatastoreConfig::Etcd(c) = load(Some(FILE), &[]).unwrap() else {
            panic!()
        };
        assert_eq!(
            c.endpoints,
            ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
    }

    #[test]
    fn env_wins_over_file() {
        let DatastoreConfig::Etcd(c) =
            load(Some(FILE), &[("ETCD_ENDPOINTS", "http://127.0.0.1:23790")]).unwrap()
        else {
            panic!()
        };
        assert_eq!(c.endpoints, ["http://127.0.0.1:23790"]);
    }

    #[test]
    fn bad_files_say_why() {
        let e = load(Some("apiVersion: v1\nkind: CalicoAPIConfig\n"), &[]).unwrap_err();
        assert!(e.to_string().contains("unknown APIVersion 'v1'"), "{e}");
        let e = load(Some(&FILE.replace("etcdEndpoints", "etcdEndpoint")), &[]).unwrap_err();
        assert!(
            e.to_string().contains("unknown field `etcdEndpoint`"),
            "{e}"
        );
        let e = load(None, &[("DATASTORE_TYPE", "consul")]).unwrap_err();
        assert!(
            e.to_string().contains("unknown datastoreType 'consul'"),
            "{e}"
        );
    }

    #[test]
    fn nothing_configured_means_local_etcd() {
        assert_eq!(
            load(None, &[]).unwrap(),
            DatastoreConfig::Etcd(EtcdConfig {
                endpoints: vec![DEFAULT_ETCD_ENDPOINT.into()],
                ..Default::default()
            })
        );
    }
}
