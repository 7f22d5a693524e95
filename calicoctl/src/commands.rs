//! What each calicoctl command does, with calicoctl's flow and wording: the resources come from
//! a file (`-f FILE`, `-f -` for stdin) or from `KIND [NAME...]`; each is acted on in turn;
//! the summary line and the errors are calicoctl's; the exit status is 0 only if every
//! resource succeeded.
//!
//! One difference, on purpose: every resource read from a file is validated before anything
//! is written, so a file with one invalid resource changes nothing (calicoctl would write the
//! valid ones). Failures that depend on the datastore (an existing resource, an overlapping
//! pool, a stale resourceVersion) are still reported per resource as calicoctl does.

use std::collections::BTreeMap;
use std::io::Read;

use api::{AnyResource, Resource, ResourceKind};
use datastore::config::DatastoreConfig;
use datastore::{Client, Error as StoreError, ListKey, ResourceKey, Revision};
use serde_json::Value;

use crate::{documents, table};

/// What a command printed and how it ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Outcome {
    pub(crate) fn ok(stdout: String) -> Self {
        Outcome {
            stdout,
            stderr: String::new(),
            code: 0,
        }
    }
    pub(crate) fn fail(stdout: String, stderr: impl Into<String>) -> Self {
        let mut stderr = stderr.into();
        if !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        Outcome {
            stdout,
            stderr,
            code: 1,
        }
    }
}

/// The commands that write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Apply,
    Replace,
    Delete,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Apply => "apply",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }
    fn past(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Apply => "applied",
            Action::Replace => "replaced",
            Action::Delete => "deleted",
        }
    }
}

/// Where the resources come from and how to treat them (the CRUD commands' flags).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub filename: Option<String>,
    pub kind: Option<String>,
    pub names: Vec<String>,
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub skip_exists: bool,
    pub skip_not_exists: bool,
    pub skip_empty: bool,
    /// `-R`: also the files in subdirectories of a `-f` directory.
    pub recursive: bool,
}

/// How `get` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Table { wide: bool },
    Columns(Vec<String>),
    Yaml,
    Json,
}

impl Output {
    pub fn parse(s: &str) -> Result<Output, String> {
        match s {
            "ps" => Ok(Output::Table { wide: false }),
            "wide" => Ok(Output::Table { wide: true }),
            "yaml" | "yml" => Ok(Output::Yaml),
            "json" => Ok(Output::Json),
            _ => match s.split_once('=') {
                Some(("custom-columns", "")) => Err("need to specify at least one column".into()),
                Some(("custom-columns", cols)) => Ok(Output::Columns(
                    cols.split(',').map(str::to_string).collect(),
                )),
                Some(("go-template" | "go-template-file", _)) => Err(format!(
                    "output format '{s}' is not supported by this calicoctl"
                )),
                _ => Err(format!("unrecognized output format '{s}'")),
            },
        }
    }
}

/// The datastore connection, made on first use so that file errors are reported first.
pub struct Session {
    config: Option<std::path::PathBuf>,
    client: Option<Client>,
}

impl Session {
    pub fn new(config: Option<std::path::PathBuf>) -> Self {
        Session {
            config,
            client: None,
        }
    }

    pub(crate) async fn client(&mut self) -> Result<Client, String> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let cfg = DatastoreConfig::load_from_env(self.config.as_deref())
            .map_err(|e| format!("Failed to create Calico API client: {e}"))?;
        let client = Client::connect(&cfg)
            .await
            .map_err(|e| format!("Failed to create Calico API client: {e}"))?;
        self.client = Some(client.clone());
        Ok(client)
    }
}

/// The files `-f` names: the file itself, or a directory's `.yaml`, `.yml` and `.json` files in
/// name order (with `-R`, also those of its subdirectories), as calicoctl walks them.
fn files(name: &str, recursive: bool) -> Result<Vec<std::path::PathBuf>, String> {
    let path = std::path::Path::new(name);
    if name == "-" || !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| format!("open {name}: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive {
                out.extend(files(&p.to_string_lossy(), true)?);
            }
            continue;
        }
        let ext = p
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(ext.as_str(), "yaml" | "yml" | "json") {
            out.push(p);
        }
    }
    Ok(out)
}

/// calicoctl prints a client it cannot create on stdout (then exits 1).
pub(crate) fn client_failure(e: String) -> Outcome {
    Outcome {
        stdout: format!("{e}\n"),
        stderr: String::new(),
        code: 1,
    }
}

/// Read the resources a file names (`-` is stdin).
fn read_file(name: &str) -> Result<Vec<AnyResource>, String> {
    let text = if name == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("reading stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(name).map_err(|e| e.to_string())?
    };
    documents::parse(&text).map_err(|e| e.to_string())
}

/// calicoctl's namespace rules for one resource (`handleNamespace`).
fn handle_namespace(r: &mut AnyResource, sel: &Selection) -> Result<(), String> {
    let cli = sel.namespace.as_deref().filter(|s| !s.is_empty());
    let kind = r.kind();
    let meta = r.metadata_mut();
    let res = meta.namespace.clone().filter(|s| !s.is_empty());
    if kind.namespaced() {
        match (res, cli, sel.all_namespaces) {
            (_, Some(_), true) => {
                return Err(
                    "cannot use both --namespace and --all-namespaces flags at the same time"
                        .into(),
                );
            }
            (None, Some(c), _) => meta.namespace = Some(c.to_string()),
            (Some(_), None, true) => meta.namespace = None,
            (None, None, true) => {}
            (None, None, false) => meta.namespace = Some("default".into()),
            (Some(_), None, false) => {}
            (Some(r), Some(c), _) if r == c => {}
            (Some(r), Some(c), _) => {
                return Err(format!(
                    "resource namespace does not match client namespace. {r} != {c}"
                ));
            }
        }
    } else if res.is_some() {
        return Err(format!(
            "namespace should not be specified for a non-namespaced resource. {kind} is not a \
             namespaced resource"
        ));
    } else if sel.all_namespaces || cli.is_some() {
        return Err(format!("{kind} is not namespaced"));
    }
    Ok(())
}

/// The resources a command acts on: from the file, or from `KIND [NAME...]`; with `list`, a
/// kind without names stands for all resources of the kind (`get`). The flag says whether
/// they came from the command line (one kind by construction).
fn select(sel: &Selection, list: bool) -> Result<(Vec<AnyResource>, bool), Outcome> {
    if let Some(name) = &sel.filename {
        let fail =
            |e: String| Outcome::fail(String::new(), format!("failed to execute command: {e}"));
        let mut rs = Vec::new();
        for file in files(name, sel.recursive).map_err(fail)? {
            let file = file.to_string_lossy().into_owned();
            let found = read_file(&file).map_err(|e| fail(format!("{file}: {e}")))?;
            if found.is_empty() && !sel.skip_empty {
                return Err(fail(format!("no resources specified in file {file}")));
            }
            rs.extend(found);
        }
        if rs.is_empty() && !sel.skip_empty {
            return Err(fail(format!("no resources specified in directory {name}")));
        }
        return Ok((rs, false));
    }
    let Some(kind_arg) = &sel.kind else {
        return Err(Outcome::fail(String::new(), "no resources specified"));
    };
    let Some(kind) = ResourceKind::from_cli_name(kind_arg) else {
        return Err(Outcome::fail(
            String::new(),
            format!("failed to get resources: resource type '{kind_arg}' is not supported"),
        ));
    };
    if sel.names.iter().any(String::is_empty) {
        return Err(Outcome::fail(
            String::new(),
            "resource name may not be empty",
        ));
    }
    let names: Vec<&str> = if sel.names.is_empty() && list {
        vec![""]
    } else {
        sel.names.iter().map(String::as_str).collect()
    };
    if names.is_empty() {
        return Err(Outcome::fail(
            String::new(),
            "resource name may not be empty",
        ));
    }
    Ok((
        names
            .into_iter()
            .map(|n| AnyResource::new_named(kind, None, n))
            .collect(),
        true,
    ))
}

/// Summary of a multi-resource write, as calicoctl words it.
struct Results {
    kinds: Vec<ResourceKind>,
    single_kind_arg: bool,
    handled: usize,
    errors: Vec<String>,
}

impl Results {
    fn single_kind(&self) -> Option<ResourceKind> {
        let first = *self.kinds.first()?;
        (self.single_kind_arg || self.kinds.iter().all(|k| *k == first)).then_some(first)
    }
}

/// Go's `%v` of a slice of errors: `[e1 e2]`.
fn go_list(errors: &[String]) -> String {
    format!("[{}]", errors.join(" "))
}

/// `create`, `apply`, `replace` and `delete`.
pub async fn write(session: &mut Session, action: Action, sel: &Selection) -> Outcome {
    let (mut resources, from_args) = match select(sel, false) {
        Ok(r) => r,
        Err(o) => return o,
    };
    if resources.is_empty() {
        return Outcome::ok("No resources specified\n".into());
    }
    // Namespaces, then validation of every resource before anything is written.
    let mut invalid = Vec::new();
    for r in resources.iter_mut() {
        if let Err(e) = handle_namespace(r, sel) {
            invalid.push(e);
            continue;
        }
        if action != Action::Delete {
            let mut check = r.clone();
            check.apply_defaults();
            if let Err(e) = check.validate() {
                invalid.push(e.to_string());
            }
        }
    }
    let mut results = Results {
        kinds: resources.iter().map(|r| r.kind()).collect(),
        single_kind_arg: from_args,
        handled: 0,
        errors: Vec::new(),
    };
    if !invalid.is_empty() {
        results.errors = invalid;
        return summarize(action, &results, resources.len());
    }
    let client = match session.client().await {
        Ok(c) => c,
        Err(e) => return client_failure(e),
    };
    if matches!(action, Action::Create | Action::Apply | Action::Replace)
        && let Err(e) = client.ensure_initialized("", "").await
    {
        tracing::info!(error = %e, "unable to initialize datastore");
    }
    for r in &resources {
        let res = match action {
            Action::Create => create(&client, r).await,
            Action::Apply => apply(&client, r).await,
            Action::Replace => replace(&client, r).await,
            Action::Delete => delete(&client, r).await,
        };
        match res {
            Ok(()) => results.handled += 1,
            Err(StoreError::AlreadyExists(_)) if sel.skip_exists => results.handled += 1,
            Err(StoreError::NotFound(_)) if sel.skip_not_exists => results.handled += 1,
            Err(e) => results.errors.push(e.to_string()),
        }
    }
    summarize(action, &results, resources.len())
}

fn summarize(action: Action, results: &Results, total: usize) -> Outcome {
    let (verb, past) = (action.verb(), action.past());
    let kind = results.single_kind();
    // calicoctl reports create/apply failures as a Go list (`[e1 e2]`) and a replace failure
    // as the error itself.
    let errs = if action == Action::Replace {
        results.errors.join("; ")
    } else {
        go_list(&results.errors)
    };
    if action == Action::Delete {
        let mut out = String::new();
        if results.handled > 0 {
            out = match kind {
                Some(k) => format!(
                    "Successfully deleted {} '{k}' resource(s)\n",
                    results.handled
                ),
                None => format!("Successfully deleted {} resource(s)\n", results.handled),
            };
        }
        if results.errors.is_empty() {
            return Outcome::ok(out);
        }
        let err: String = results
            .errors
            .iter()
            .map(|e| match kind {
                Some(k) => format!("Failed to delete '{k}' resource: {e}\n"),
                None => format!("Failed to delete resource: {e}\n"),
            })
            .collect();
        return Outcome::fail(out, err);
    }
    if results.errors.is_empty() {
        return Outcome::ok(match kind {
            Some(k) => format!(
                "Successfully {past} {} '{k}' resource(s)\n",
                results.handled
            ),
            None => format!("Successfully {past} {} resource(s)\n", results.handled),
        });
    }
    if results.handled == 0 {
        let msg = match (total, kind) {
            (1, Some(k)) => format!("failed to {verb} '{k}' resource: {errs}"),
            (_, Some(k)) => format!("failed to {verb} any '{k}' resources: {errs}"),
            (_, None) => format!("failed to {verb} any resources: {errs}"),
        };
        return Outcome::fail(String::new(), msg);
    }
    let out = match kind {
        Some(k) => format!(
            "Partial success: {past} the first {} out of {total} '{k}' resources:\n",
            results.handled
        ),
        None => format!(
            "Partial success: {past} the first {} out of {total} resources:\n",
            results.handled
        ),
    };
    Outcome::fail(out, format!("hit error: {errs}"))
}

/// calicoctl's create: only name, namespace, resourceVersion, labels and annotations of the
/// user's metadata are kept (`prepareMetadataForCreate`).
async fn create(client: &Client, r: &AnyResource) -> Result<(), StoreError> {
    let mut r = r.clone();
    let m = r.metadata().clone();
    *r.metadata_mut() = api::ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        resource_version: m.resource_version,
        labels: m.labels,
        annotations: m.annotations,
        ..Default::default()
    };
    client.create(&r).await.map(|_| ())
}

/// calicoctl's apply: create, and if the resource exists, update it.
async fn apply(client: &Client, r: &AnyResource) -> Result<(), StoreError> {
    if r.kind() == ResourceKind::ClusterInformation {
        return Err(StoreError::Invalid(
            "operation apply is not supported on ClusterInformation: resource is readonly".into(),
        ));
    }
    let mut first = r.clone();
    first.metadata_mut().resource_version = None;
    match create(client, &first).await {
        Err(StoreError::AlreadyExists(_)) => replace(client, r).await,
        other => other,
    }
}

/// calicoctl's update: with the user's resourceVersion if given (which must be the latest),
/// else with the latest, retried on conflict. The stored metadata is kept except labels and
/// annotations (`mergeMetadataForUpdate`).
async fn replace(client: &Client, r: &AnyResource) -> Result<(), StoreError> {
    let key = key_of(r)?;
    let given = r
        .metadata()
        .resource_version
        .clone()
        .filter(|s| !s.is_empty());
    // calicoctl retries an update without a resourceVersion up to 5 times on conflict.
    let attempts = if given.is_some() { 1 } else { 5 };
    let mut last = None;
    for _ in 0..attempts {
        let stored: AnyResource = client.get(&key).await?;
        if let Some(rv) = &given {
            let latest = stored
                .metadata()
                .resource_version
                .clone()
                .unwrap_or_default();
            if *rv != latest {
                return Err(StoreError::Invalid(format!(
                    "update conflict: {key}: resource version '{rv}' is out of date (latest: \
                     {latest}). Update the resource YAML/JSON in order to make changes"
                )));
            }
        }
        let mut update = r.clone();
        let mut meta = stored.metadata().clone();
        meta.labels = r.metadata().labels.clone();
        meta.annotations = r.metadata().annotations.clone();
        *update.metadata_mut() = meta;
        match client.update(&update).await {
            Err(e) if e.is_conflict() => last = Some(e),
            other => return other.map(|_| ()),
        }
    }
    Err(last.unwrap_or_else(|| StoreError::Conflict(key.into())))
}

/// What Calico's client deletes with a Node (after releasing its addresses): its workload
/// endpoints, the BGP peers specific to it, and its `node.<name>` FelixConfiguration and
/// BGPConfiguration. Gone already is fine.
async fn delete_node_dependents(client: &Client, node: &str) -> Result<(), StoreError> {
    fn gone_ok<T>(r: Result<T, StoreError>) -> Result<(), StoreError> {
        match r {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
    let (weps, _) = client
        .list::<api::workload_endpoint::WorkloadEndpoint>(&ListKey::Resources {
            kind: ResourceKind::WorkloadEndpoint,
            namespace: None,
        })
        .await?;
    for wep in weps.iter().filter(|w| w.spec.node.as_deref() == Some(node)) {
        let key = datastore::client::resource_key(wep)?;
        gone_ok(
            client
                .delete::<api::workload_endpoint::WorkloadEndpoint>(&key, None)
                .await,
        )?;
    }
    let (peers, _) = client
        .list::<api::bgp_peer::BGPPeer>(&ListKey::kind(ResourceKind::BGPPeer))
        .await?;
    for peer in peers
        .iter()
        .filter(|p| p.spec.node.as_deref() == Some(node))
    {
        let key = datastore::client::resource_key(peer)?;
        gone_ok(client.delete::<api::bgp_peer::BGPPeer>(&key, None).await)?;
    }
    let per_node = format!("node.{node}");
    gone_ok(
        client
            .delete::<api::felix_configuration::FelixConfiguration>(
                &ResourceKey::new(ResourceKind::FelixConfiguration, None, &per_node),
                None,
            )
            .await,
    )?;
    gone_ok(
        client
            .delete::<api::bgp_configuration::BGPConfiguration>(
                &ResourceKey::new(ResourceKind::BGPConfiguration, None, &per_node),
                None,
            )
            .await,
    )
}

async fn delete(client: &Client, r: &AnyResource) -> Result<(), StoreError> {
    let key = key_of(r)?;
    if r.kind() == ResourceKind::Node {
        // As Calico's client: a node's addresses and block affinities go before the node.
        ipam::Ipam::new(client.backend().clone())
            .release_node(&key.name)
            .await
            .map_err(|e| {
                StoreError::Invalid(format!("releasing the IPAM of node {}: {e}", key.name))
            })?;
        delete_node_dependents(client, &key.name).await?;
    }
    let revision = match r
        .metadata()
        .resource_version
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        Some(rv) => Some(rv.parse::<Revision>()?),
        None => None,
    };
    client
        .delete::<AnyResource>(&key, revision)
        .await
        .map(|_| ())
}

fn key_of(r: &AnyResource) -> Result<ResourceKey, StoreError> {
    datastore::client::resource_key(r)
}

/// One thing `get` found: a named resource, or the list of a kind.
enum Found {
    One(Box<AnyResource>),
    List {
        kind: ResourceKind,
        items: Vec<AnyResource>,
        revision: Revision,
    },
}

/// `get`.
pub async fn get(session: &mut Session, sel: &Selection, output: &Output, export: bool) -> Outcome {
    let (mut resources, _) = match select(sel, true) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let print_namespace = sel.all_namespaces || sel.namespace.is_some();
    let client = match session.client().await {
        Ok(c) => c,
        Err(e) => return client_failure(e),
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for r in resources.iter_mut() {
        if let Err(e) = handle_namespace(r, sel) {
            errors.push(e);
            continue;
        }
        let kind = r.kind();
        let meta = r.metadata();
        if meta.name.is_empty() {
            let list = ListKey::Resources {
                kind,
                namespace: meta.namespace.clone(),
            };
            match client.list::<AnyResource>(&list).await {
                Ok((items, revision)) => found.push(Found::List {
                    kind,
                    items,
                    revision,
                }),
                Err(e) => errors.push(e.to_string()),
            }
        } else if kind.namespaced() && meta.namespace.is_none() {
            errors.push("cannot use --all-namespace flag for getting a single resource".into());
        } else {
            let key = ResourceKey::new(kind, meta.namespace.as_deref(), &meta.name);
            match client.get::<AnyResource>(&key).await {
                Ok(mut r) => {
                    if export {
                        strip_for_export(&mut r);
                    }
                    found.push(Found::One(Box::new(r)));
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    let stdout = match render(&client, &found, output, print_namespace).await {
        Ok(s) => s,
        Err(e) => return Outcome::fail(String::new(), e),
    };
    if errors.is_empty() {
        Outcome::ok(stdout)
    } else {
        Outcome::fail(stdout, errors.join("\n"))
    }
}

/// `--export`: drop what belongs to this cluster's copy of the resource.
fn strip_for_export(r: &mut AnyResource) {
    let m = r.metadata_mut();
    m.namespace = None;
    m.uid = None;
    m.resource_version = None;
    m.creation_timestamp = None;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
}

async fn render(
    client: &Client,
    found: &[Found],
    output: &Output,
    print_namespace: bool,
) -> Result<String, String> {
    match output {
        Output::Yaml | Output::Json => {
            let values: Vec<Value> = found.iter().map(to_value).collect();
            let value = match <[Value; 1]>::try_from(values) {
                Ok([one]) => one,
                Err(many) => Value::Array(many),
            };
            if *output == Output::Json {
                let mut s = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
                s.push('\n');
                Ok(s)
            } else {
                serde_yaml::to_string(&sorted(value)).map_err(|e| e.to_string())
            }
        }
        Output::Table { .. } | Output::Columns(_) => {
            let needs_as = found.iter().any(|f| match f {
                Found::One(r) => r.kind() == ResourceKind::Node,
                Found::List { kind, .. } => *kind == ResourceKind::Node,
            });
            let ctx = table::Context {
                global_as_number: if needs_as {
                    global_as_number(client).await
                } else {
                    "".into()
                },
            };
            let mut out = String::new();
            for f in found {
                let (kind, items) = match f {
                    Found::One(r) => (r.kind(), std::slice::from_ref(r.as_ref())),
                    Found::List { kind, items, .. } => (*kind, items.as_slice()),
                };
                out.push_str(&match output {
                    Output::Table { wide } => {
                        table::render(kind, items, *wide, print_namespace, &ctx)
                    }
                    Output::Columns(cols) => table::render_columns(kind, items, cols, &ctx)?,
                    _ => String::new(),
                });
            }
            Ok(out)
        }
    }
}

fn to_value(f: &Found) -> Value {
    match f {
        Found::One(r) => serde_json::to_value(r.as_ref()).unwrap_or(Value::Null),
        Found::List {
            kind,
            items,
            revision,
        } => serde_json::json!({
            "apiVersion": api::API_VERSION,
            "kind": kind.list_name(),
            "metadata": { "resourceVersion": revision.to_string() },
            "items": items.iter().map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
                .collect::<Vec<_>>(),
        }),
    }
}

/// Keys in sorted order at every level, as calicoctl's YAML printer writes them.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let b: BTreeMap<String, Value> = m.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(b.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The cluster's AS number: BGPConfiguration `default`'s, else Calico's default (64512).
async fn global_as_number(client: &Client) -> String {
    use api::bgp_configuration::{BGPConfiguration, DEFAULT_AS_NUMBER, GLOBAL_NAME};
    let key = ResourceKey::new(ResourceKind::BGPConfiguration, None, GLOBAL_NAME);
    match client.get::<BGPConfiguration>(&key).await {
        Ok(c) => c.spec.as_number.unwrap_or(DEFAULT_AS_NUMBER).to_string(),
        Err(StoreError::NotFound(_)) => DEFAULT_AS_NUMBER.to_string(),
        Err(_) => "unknown".into(),
    }
}

/// `patch KIND NAME --patch P --type strategic|json|merge`.
pub async fn patch(
    session: &mut Session,
    sel: &Selection,
    patch_text: &str,
    patch_type: &str,
) -> Outcome {
    let (mut resources, _) = match select(sel, false) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let Some(r) = resources.first_mut() else {
        return Outcome::fail(String::new(), "no resources specified");
    };
    let kind = r.kind();
    // calicoctl reports a failed patch as `hit error: <error>`.
    let fail = |e: String| Outcome::fail(String::new(), format!("hit error: {e}"));
    if let Err(e) = handle_namespace(r, sel) {
        return fail(e);
    }
    let client = match session.client().await {
        Ok(c) => c,
        Err(e) => return client_failure(e),
    };
    let key = match key_of(r) {
        Ok(k) => k,
        Err(e) => return fail(e.to_string()),
    };
    let stored: AnyResource = match client.get(&key).await {
        Ok(s) => s,
        Err(e) => return fail(e.to_string()),
    };
    let mut doc = match serde_json::to_value(&stored) {
        Ok(v) => v,
        Err(e) => return fail(e.to_string()),
    };
    let applied = match patch_type {
        // Calico's v3 types declare no merge keys, so a strategic merge is a JSON merge patch.
        "strategic" | "merge" => serde_json::from_str::<Value>(patch_text)
            .map_err(|e| format!("invalid patch: {e}"))
            .map(|p| json_patch::merge(&mut doc, &p)),
        "json" => serde_json::from_str::<json_patch::Patch>(patch_text)
            .map_err(|e| format!("invalid JSON patch: {e}"))
            .and_then(|p| json_patch::patch(&mut doc, &p).map_err(|e| e.to_string())),
        other => Err(format!(
            "unknown patch type '{other}': expected strategic, json or merge"
        )),
    };
    if let Err(e) = applied {
        return fail(e);
    }
    let mut patched = match AnyResource::from_value(doc) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    // Identity and bookkeeping stay the stored ones (`mergeMetadataForPatch`).
    let labels = patched.metadata().labels.clone();
    let annotations = patched.metadata().annotations.clone();
    *patched.metadata_mut() = stored.metadata().clone();
    patched.metadata_mut().labels = labels;
    patched.metadata_mut().annotations = annotations;
    match client.update(&patched).await {
        Ok(_) => Outcome::ok(format!("Successfully patched 1 '{kind}' resource\n")),
        Err(e) => fail(e.to_string()),
    }
}

/// `label KIND NAME key=value [--overwrite]` and `label KIND NAME key --remove`.
pub async fn label(
    session: &mut Session,
    sel: &Selection,
    label: &str,
    overwrite: bool,
    remove: bool,
) -> Outcome {
    let kind_arg = sel.kind.clone().unwrap_or_default();
    let name = sel.names.first().cloned().unwrap_or_default();
    let (key, value) = match (remove, label.split_once('=')) {
        (true, None) => (label.to_string(), None),
        (false, Some((k, v))) if !k.is_empty() => (k.to_string(), Some(v.to_string())),
        _ => return Outcome::fail(String::new(), format!("invalid label {label}")),
    };
    let (mut resources, _) = match select(sel, false) {
        Ok(r) => r,
        Err(o) => return o,
    };
    let Some(r) = resources.first_mut() else {
        return Outcome::fail(String::new(), "no resources specified");
    };
    if let Err(e) = handle_namespace(r, sel) {
        return Outcome::fail(String::new(), format!("failed to execute command: {e}"));
    }
    let client = match session.client().await {
        Ok(c) => c,
        Err(e) => return client_failure(e),
    };
    let rkey = match key_of(r) {
        Ok(k) => k,
        Err(e) => return Outcome::fail(String::new(), e.to_string()),
    };
    // Read-modify-write, retried on conflict as calicoctl's update is.
    for _ in 0..5 {
        let mut stored: AnyResource = match client.get(&rkey).await {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => {
                return Outcome::fail(String::new(), format!("{kind_arg} {name} not found"));
            }
            Err(e) => {
                return Outcome::fail(
                    String::new(),
                    format!("failed to get {kind_arg} {name}, error {e}"),
                );
            }
        };
        let labels = stored
            .metadata_mut()
            .labels
            .get_or_insert_with(Default::default);
        let message = match (&value, labels.get(&key)) {
            (None, None) => {
                return Outcome::fail(
                    String::new(),
                    format!("cannot remove label of {kind_arg} {name}, key {key} does not exist"),
                );
            }
            (None, Some(_)) => {
                labels.remove(&key);
                format!("Successfully removed label {key} from {kind_arg} {name}\n")
            }
            // Setting the value a label already has counts as an update, as in calicoctl.
            (Some(v), Some(old)) if !overwrite && old != v => {
                return Outcome::fail(
                    String::new(),
                    format!(
                        "failed to update label of {kind_arg} {name}, key {key} is already \
                         present. please use '--overwrite' to set a new value"
                    ),
                );
            }
            (Some(v), Some(_)) => {
                labels.insert(key.clone(), v.clone());
                format!("Successfully updated label {key} on {kind_arg} {name}\n")
            }
            (Some(v), None) => {
                labels.insert(key.clone(), v.clone());
                format!("Successfully set label {key} on {kind_arg} {name}\n")
            }
        };
        if stored
            .metadata()
            .labels
            .as_ref()
            .is_some_and(BTreeMap::is_empty)
        {
            stored.metadata_mut().labels = None;
        }
        match client.update(&stored).await {
            Ok(_) => return Outcome::ok(message),
            Err(e) if e.is_conflict() => continue,
            Err(e) => {
                tracing::info!(error = %e, "label update failed");
                return Outcome::fail(
                    String::new(),
                    format!("failed to update {kind_arg} {name}, label not changed"),
                );
            }
        }
    }
    Outcome::fail(
        String::new(),
        format!("failed to update {kind_arg} {name}, label not changed"),
    )
}

/// `version`: ours, and the cluster's from ClusterInformation `default`.
pub async fn version(session: &mut Session, client_only: bool) -> Outcome {
    let mut out = format!(
        "Client Version:    {}\nGit commit:        {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("CALICOCTL_GIT_COMMIT").unwrap_or("unknown")
    );
    if client_only {
        return Outcome::ok(out);
    }
    let client = match session.client().await {
        Ok(c) => c,
        Err(_) => {
            out.push_str("Unable to detect installed Calico version\n");
            return Outcome::ok(out);
        }
    };
    let key = ResourceKey::new(ResourceKind::ClusterInformation, None, "default");
    match client.get::<AnyResource>(&key).await {
        Ok(ci) => {
            let v = serde_json::to_value(&ci).unwrap_or(Value::Null);
            let field = |p: &str| {
                v.pointer(p)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("unknown")
                    .to_string()
            };
            out.push_str(&format!(
                "Cluster Version:   {}\n",
                field("/spec/calicoVersion")
            ));
            out.push_str(&format!(
                "Cluster Type:      {}\n",
                field("/spec/clusterType")
            ));
            Outcome::ok(out)
        }
        Err(e) => Outcome::fail(
            out,
            format!("unable to retrieve Cluster Version or Type: {e}"),
        ),
    }
}
