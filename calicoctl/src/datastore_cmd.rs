//! `calicoctl datastore migrate lock|unlock`: mark the datastore not ready (or ready again) in
//! ClusterInformation `default`, as Calico does before operations that must not race with
//! running nodes (`ipam split`, `ipam release --from-report`).

use api::ResourceKind;
use api::cluster_information::ClusterInformation;
use datastore::ResourceKey;

use crate::commands::{Outcome, Session};

/// Set `datastoreReady` to `!locked`, creating ClusterInformation first if it does not exist.
pub async fn set_locked(session: &mut Session, locked: bool) -> Outcome {
    let verb = if locked { "locking" } else { "unlocking" };
    let client = match session.client().await {
        Ok(c) => c,
        Err(e) => return crate::commands::client_failure(e),
    };
    if locked && let Err(e) = client.ensure_initialized("", "").await {
        return Outcome::fail(
            String::new(),
            format!("unable to initialize cluster information for the datastore migration: {e}"),
        );
    }
    let key = ResourceKey::new(ResourceKind::ClusterInformation, None, "default");
    let mut info: ClusterInformation = match client.get(&key).await {
        Ok(i) => i,
        Err(e) => {
            return Outcome::fail(
                String::new(),
                format!("error retrieving ClusterInformation for {verb}: {e}"),
            );
        }
    };
    info.spec.datastore_ready = Some(!locked);
    match client.update(&info).await {
        Ok(_) if locked => Outcome::ok("Datastore locked.\n".into()),
        Ok(_) => Outcome::ok("Datastore unlocked.\n".into()),
        Err(e) => Outcome::fail(
            String::new(),
            format!("error updating ClusterInformation for {verb}: {e}"),
        ),
    }
}
