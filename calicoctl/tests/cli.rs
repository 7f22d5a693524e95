//! calicoctl as a user runs it: the built binary against a real etcd (started per test by the
//! workspace's one harness, `testutil`), checking what it prints, its exit status, and what is
//! in etcd afterwards (read directly, not through our code).

mod common;

use std::path::{Path, PathBuf};

use common::{Calicoctl, Run};
use serde_json::Value;

/// The shared harness plus a runtime for reading etcd directly.
struct Cluster {
    base: Calicoctl,
    rt: tokio::runtime::Runtime,
}

impl std::ops::Deref for Cluster {
    type Target = Calicoctl;
    fn deref(&self) -> &Calicoctl {
        &self.base
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let base = Calicoctl::start()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Some(Cluster { base, rt })
    }

    fn ctl(&self, args: &[&str]) -> Run {
        self.run(args, None)
    }

    fn ctl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        self.run(args, stdin)
    }

    fn apply_text(&self, yaml: &str) -> Run {
        self.ctl_stdin(&["apply", "-f", "-"], Some(yaml))
    }

    /// Every key under /calico and its value, and the store revision: read with etcd-client.
    fn etcd_state(&self) -> (i64, Vec<(String, String)>) {
        self.rt.block_on(async {
            let mut c = etcd_client::Client::connect([self.etcd.endpoint()], None)
                .await
                .unwrap();
            let opts = etcd_client::GetOptions::new().with_prefix();
            let resp = c.get("/calico/", Some(opts)).await.unwrap();
            let rev = resp.header().unwrap().revision();
            let kvs = resp
                .kvs()
                .iter()
                .map(|kv| {
                    (
                        kv.key_str().unwrap().to_string(),
                        kv.value_str().unwrap().to_string(),
                    )
                })
                .collect();
            (rev, kvs)
        })
    }

    fn etcd_json(&self, key: &str) -> Option<Value> {
        let (_, kvs) = self.etcd_state();
        kvs.into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| serde_json::from_str(&v).unwrap())
    }
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

const POOL: &str = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: NAME\n\
                    spec:\n  cidr: CIDR\n";

fn pool(name: &str, cidr: &str) -> String {
    POOL.replace("NAME", name).replace("CIDR", cidr)
}

#[test]
fn documented_manifests_apply_and_come_back_with_calicos_defaults() {
    let Some(c) = Cluster::start() else { return };
    let expected_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expected");
    let mut checked = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let manifest = yaml(&std::fs::read_to_string(&path).unwrap());
        let expected = yaml(&std::fs::read_to_string(expected_dir.join(&file)).unwrap());
        let kind = manifest["kind"].as_str().unwrap().to_string();
        let name = manifest["metadata"]["name"].as_str().unwrap().to_string();
        let namespace = manifest["metadata"]["namespace"]
            .as_str()
            .map(str::to_string);

        let r = c.ctl(&["apply", "-f", path.to_str().unwrap()]);
        ok(&r);
        assert_eq!(
            r.stdout,
            format!("Successfully applied 1 '{kind}' resource(s)\n"),
            "{file}"
        );

        let mut get = vec!["get", &kind, &name, "-o", "yaml"];
        if let Some(ns) = &namespace {
            get.extend(["-n", ns]);
        }
        let r = c.ctl(&get);
        ok(&r);
        let got = yaml(&r.stdout);
        assert_eq!(
            got["spec"], expected["spec"],
            "{file}: spec from calicoctl get"
        );
        assert_eq!(
            got["metadata"]["labels"], expected["labels"],
            "{file}: labels"
        );
        assert_eq!(got["apiVersion"], "projectcalico.org/v3");
        assert_eq!(got["kind"], kind.as_str());
        let meta = &got["metadata"];
        assert_eq!(meta["name"], name.as_str());
        assert!(
            meta["uid"].as_str().is_some_and(|u| u.len() == 36),
            "{file}: uid {meta}"
        );
        assert!(
            meta["resourceVersion"]
                .as_str()
                .is_some_and(|v| v.parse::<i64>().is_ok())
        );
        let ts = meta["creationTimestamp"].as_str().unwrap_or_default();
        assert!(chrono_like(ts), "{file}: creationTimestamp {ts}");

        // What etcd holds is Calico's: the key layout, and the object without resourceVersion.
        let plural = plural(&kind);
        let key = match &namespace {
            Some(ns) => format!("/calico/resources/v3/projectcalico.org/{plural}/{ns}/{name}"),
            None => format!("/calico/resources/v3/projectcalico.org/{plural}/{name}"),
        };
        let stored = c
            .etcd_json(&key)
            .unwrap_or_else(|| panic!("{file}: no etcd key {key}"));
        assert_eq!(stored["spec"], expected["spec"], "{file}: spec in etcd");
        assert_eq!(stored["kind"], kind.as_str());
        assert_eq!(stored["apiVersion"], "projectcalico.org/v3");
        assert!(
            stored["metadata"].get("resourceVersion").is_none(),
            "{file}: {stored}"
        );
        assert_eq!(stored["metadata"]["uid"], meta["uid"]);
        assert_eq!(
            stored["metadata"]["creationTimestamp"],
            meta["creationTimestamp"]
        );
        if kind.ends_with("NetworkPolicy") {
            // Calico 3.30+ keeps the policy's v3 name in an annotation in etcd.
            assert_eq!(
                stored["metadata"]["annotations"]["projectcalico.org/metadata"],
                Value::String(format!("{{\"name\":\"{name}\"}}"))
            );
            assert!(got["metadata"].get("annotations").is_none());
        }
        checked += 1;
    }
    assert_eq!(checked, 10, "one manifest per kind the issue names");
}

fn plural(kind: &str) -> String {
    match kind {
        "NetworkPolicy" => "networkpolicies".into(),
        "GlobalNetworkPolicy" => "globalnetworkpolicies".into(),
        k => format!("{}s", k.to_ascii_lowercase()),
    }
}

/// `2026-11-23T19:53:31Z`: RFC 3339, UTC, whole seconds, as Kubernetes' metav1.Time.
fn chrono_like(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z'
}

#[test]
fn bad_input_changes_nothing_and_says_what_is_wrong() {
    let Some(c) = Cluster::start() else { return };
    ok(&c.apply_text(&pool("existing", "10.0.0.0/16")));
    let stale = {
        let r = c.ctl(&["get", "ippool", "existing", "-o", "yaml"]);
        let mut v = yaml(&r.stdout);
        let rv: i64 = v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        // Move the stored pool on, so the version in hand is stale.
        ok(&c.ctl(&["label", "ippool", "existing", "moved=yes"]));
        v["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        v["metadata"]["labels"] = serde_json::json!({"changed": "no"});
        serde_yaml::to_string(&v).unwrap()
    };
    let before = c.etcd_state();

    let cases: Vec<(&str, String, &str, Vec<&str>)> = vec![
        (
            "invalid YAML",
            "kind: IPPool\nmetadata: [\n".into(),
            "apply",
            vec!["invalid YAML"],
        ),
        (
            "unknown field",
            pool("p1", "10.1.0.0/16").replace("spec:\n", "spec:\n  colour: blue\n"),
            "apply",
            vec!["IPPool", "spec.colour", "unknown field"],
        ),
        (
            "unknown kind",
            pool("p1", "10.1.0.0/16").replace("IPPool", "IPPond"),
            "apply",
            vec!["IPPond", "not supported"],
        ),
        (
            "invalid CIDR",
            pool("p1", "10.1.0.0/33"),
            "apply",
            vec!["IPPool(p1)", "spec.cidr"],
        ),
        (
            "overlapping pool",
            pool("p1", "10.0.128.0/17"),
            "apply",
            vec!["IPPool(p1)", "spec.cidr", "overlaps with IPPool(existing)"],
        ),
        (
            "ipipMode and vxlanMode",
            pool("p1", "10.1.0.0/16") + "  ipipMode: Always\n  vxlanMode: Always\n",
            "apply",
            vec!["IPPool(p1)", "ipipMode", "vxlanMode"],
        ),
        (
            "stale resourceVersion",
            stale,
            "replace",
            vec!["IPPool(existing)", "out of date"],
        ),
        (
            "selector that does not parse",
            pool("p1", "10.1.0.0/16") + "  nodeSelector: rack == \n",
            "apply",
            vec!["IPPool(p1)", "spec.nodeSelector", "position"],
        ),
    ];
    for (what, text, verb, needles) in cases {
        let r = c.ctl_stdin(&[verb, "-f", "-"], Some(&text));
        assert_eq!(
            r.code, 1,
            "{what}: exit status; stdout {} stderr {}",
            r.stdout, r.stderr
        );
        assert_eq!(r.stdout, "", "{what}: nothing reported as done");
        let line = r.stderr.trim_end();
        assert!(!line.contains('\n'), "{what}: one line, got {line:?}");
        for n in needles {
            assert!(line.contains(n), "{what}: {line:?} should mention {n:?}");
        }
        assert_eq!(c.etcd_state(), before, "{what}: etcd must be unchanged");
    }
}

#[test]
fn files_with_many_documents_json_lists_and_stdin() {
    let Some(c) = Cluster::start() else { return };
    let two = format!(
        "{}---\n{}",
        pool("a", "10.10.0.0/16"),
        pool("b", "10.11.0.0/16")
    );
    let r = c.apply_text(&two);
    ok(&r);
    assert_eq!(r.stdout, "Successfully applied 2 'IPPool' resource(s)\n");

    let list = serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "List",
        "items": [
            yaml(&pool("c", "10.12.0.0/16")),
            yaml(&examples_file("bgppeer.yaml")),
        ]
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("list.json");
    std::fs::write(&file, list.to_string()).unwrap();
    let r = c.ctl(&["create", "-f", file.to_str().unwrap()]);
    ok(&r);
    assert_eq!(r.stdout, "Successfully created 2 resource(s)\n");

    // Creating again fails per resource, unless told to skip what exists.
    let r = c.ctl(&["create", "-f", file.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("failed to create any resources: [resource already exists: IPPool(c)"),
        "{}",
        r.stderr
    );
    ok(&c.ctl(&["create", "-f", file.to_str().unwrap(), "--skip-exists"]));

    let r = c.ctl(&["delete", "ippool", "a", "b"]);
    ok(&r);
    assert_eq!(r.stdout, "Successfully deleted 2 'IPPool' resource(s)\n");
    let r = c.ctl(&["delete", "ippool", "a"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Failed to delete 'IPPool' resource: resource does not exist: IPPool(a)\n"
    );
    ok(&c.ctl(&["delete", "pool", "a", "--skip-not-exists"]));
}

fn examples_file(name: &str) -> String {
    std::fs::read_to_string(examples().join(name)).unwrap()
}

#[test]
fn get_prints_calicoctls_tables() {
    let Some(c) = Cluster::start() else { return };
    ok(&c.apply_text(&pool("default-ipv4-ippool", "192.168.0.0/16")));
    ok(&c.apply_text(
        &(pool("vxlan-pool", "10.244.0.0/16") + "  vxlanMode: Always\n  natOutgoing: true\n"),
    ));
    let r = c.ctl(&["get", "ippool"]);
    ok(&r);
    assert_eq!(
        r.stdout,
        "NAME                  CIDR             SELECTOR   \n\
         default-ipv4-ippool   192.168.0.0/16   all()      \n\
         vxlan-pool            10.244.0.0/16    all()      \n\n"
    );
    let r = c.ctl(&["get", "ipp", "-o", "wide"]);
    ok(&r);
    assert_eq!(
        r.stdout,
        "NAME                  CIDR             NAT     IPIPMODE   VXLANMODE   DISABLED   \
         DISABLEBGPEXPORT   SELECTOR   ASSIGNMENTMODE   \n\
         default-ipv4-ippool   192.168.0.0/16   false   Never      Never       false      \
         false              all()      Automatic        \n\
         vxlan-pool            10.244.0.0/16    true    Never      Always      false      \
         false              all()      Automatic        \n\n"
    );
    // The tiers Calico's client creates before the first write; orders print as Go's %v of a
    // float64 does.
    let r = c.ctl(&["get", "tiers"]);
    ok(&r);
    assert_eq!(
        r.stdout,
        "NAME            ORDER   \ndefault         1e+06   \nkube-admin      1000    \n\
         kube-baseline   1e+07   \n\n"
    );
    // A list as YAML is calicoctl's `<Kind>List`.
    let r = c.ctl(&["get", "pools", "-o", "yaml"]);
    ok(&r);
    let v = yaml(&r.stdout);
    assert_eq!(v["kind"], "IPPoolList");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let r = c.ctl(&["get", "ippool", "nope"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "resource does not exist: IPPool(nope)\n");
}

#[test]
fn pool_cidr_and_block_size_cannot_change() {
    let Some(c) = Cluster::start() else { return };
    ok(&c.apply_text(&pool("p", "10.20.0.0/16")));
    let before = c.etcd_state();
    let r = c.apply_text(&pool("p", "10.21.0.0/16"));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("IPPool CIDR cannot be modified"),
        "{}",
        r.stderr
    );
    let r = c.apply_text(&(pool("p", "10.20.0.0/16") + "  blockSize: 28\n"));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("IPPool BlockSize cannot be modified"),
        "{}",
        r.stderr
    );
    assert_eq!(c.etcd_state(), before);
    // Other fields may change.
    ok(&c.apply_text(&(pool("p", "10.20.0.0/16") + "  natOutgoing: true\n")));
}

#[test]
fn reserved_policy_names_are_refused() {
    let Some(c) = Cluster::start() else { return };
    ok(&c.apply_text(&pool("p", "10.30.0.0/16")));
    let before = c.etcd_state();
    let np = examples_file("networkpolicy.yaml").replace("allow-tcp-6379", "knp.default.allow");
    let r = c.apply_text(&np);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("knp.default.allow"), "{}", r.stderr);
    assert_eq!(c.etcd_state(), before);
}

#[test]
fn namespaces_label_and_patch() {
    let Some(c) = Cluster::start() else { return };
    ok(&c.ctl(&[
        "apply",
        "-f",
        examples().join("networkpolicy.yaml").to_str().unwrap(),
    ]));
    let np = examples_file("networkpolicy.yaml").replace("  namespace: production\n", "");
    ok(&c.ctl_stdin(&["apply", "-f", "-", "-n", "staging"], Some(&np)));
    let r = c.ctl(&["get", "networkpolicy", "-A"]);
    ok(&r);
    assert_eq!(
        r.stdout,
        "NAMESPACE    NAME             TIER      \nproduction   allow-tcp-6379   default   \n\
         staging      allow-tcp-6379   default   \n\n"
    );
    // Without -n, namespaced kinds are looked up in "default".
    let r = c.ctl(&["get", "networkpolicy", "allow-tcp-6379"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "resource does not exist: NetworkPolicy(default/allow-tcp-6379)\n"
    );
    let r = c.ctl(&["get", "ippool", "-n", "x"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "IPPool is not namespaced\n");

    ok(&c.apply_text(&pool("p", "10.40.0.0/16")));
    let r = c.ctl(&["label", "ippool", "p", "rack=1"]);
    ok(&r);
    assert_eq!(r.stdout, "Successfully set label rack on ippool p\n");
    let r = c.ctl(&["label", "ippool", "p", "rack=2"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("please use '--overwrite'"),
        "{}",
        r.stderr
    );
    ok(&c.ctl(&["label", "ippool", "p", "rack=2", "--overwrite"]));
    // Setting the value a label already has is an update, as in calicoctl.
    let r = c.ctl(&["label", "ippool", "p", "rack=2"]);
    ok(&r);
    assert_eq!(r.stdout, "Successfully updated label rack on ippool p\n");
    let r = c.ctl(&["label", "ippool", "nope", "rack=2"]);
    assert_eq!((r.code, r.stderr.as_str()), (1, "ippool nope not found\n"));
    let r = c.ctl(&[
        "patch",
        "ippool",
        "nope",
        "-p",
        r#"{"spec":{"natOutgoing":true}}"#,
    ]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "hit error: resource does not exist: IPPool(nope)\n")
    );
    let r = c.ctl(&["label", "ippool", "p", "rack", "--remove"]);
    ok(&r);
    assert_eq!(r.stdout, "Successfully removed label rack from ippool p\n");

    let r = c.ctl(&[
        "patch",
        "ippool",
        "p",
        "-p",
        r#"{"spec":{"natOutgoing":true}}"#,
    ]);
    ok(&r);
    assert_eq!(r.stdout, "Successfully patched 1 'IPPool' resource\n");
    let got = yaml(&c.ctl(&["get", "ippool", "p", "-o", "yaml"]).stdout);
    assert_eq!(got["spec"]["natOutgoing"], true);
    assert_eq!(got["spec"]["cidr"], "10.40.0.0/16");

    // replace goes on past a resource that fails, and says what it did.
    let two = format!(
        "{}---\n{}",
        pool("missing", "10.41.0.0/16"),
        pool("p", "10.40.0.0/16")
    );
    let r = c.ctl_stdin(&["replace", "-f", "-"], Some(&two));
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "Partial success: replaced the first 1 out of 2 'IPPool' resources:\n"
    );
    assert_eq!(
        r.stderr,
        "hit error: resource does not exist: IPPool(missing)\n"
    );
    let got = yaml(&c.ctl(&["get", "ippool", "p", "-o", "yaml"]).stdout);
    assert_eq!(
        got["spec"].get("natOutgoing"),
        None,
        "p was replaced by the file's version"
    );
}

#[test]
fn env_wins_over_the_config_file() {
    let Some(c) = Cluster::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("calicoctl.cfg");
    // The file points nowhere useful; ETCD_ENDPOINTS (set by ctl()) must win.
    std::fs::write(
        &cfg,
        "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  \
         datastoreType: etcdv3\n  etcdEndpoints: http://127.0.0.1:9\n",
    )
    .unwrap();
    ok(&c.ctl_stdin(
        &["apply", "-c", cfg.to_str().unwrap(), "-f", "-"],
        Some(&pool("e", "10.50.0.0/16")),
    ));
    let r = c.ctl(&["version"]);
    ok(&r);
    assert!(r.stdout.starts_with("Client Version:    "), "{}", r.stdout);
    assert!(
        r.stdout.contains("\nCluster Version:   unknown\n"),
        "{}",
        r.stdout
    );
}
