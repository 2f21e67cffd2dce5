//! What webhook delivery (`events::relay`) reads from deprovisioning: each
//! tenant's endpoints from the policy in force, and the clock.

use super::service::Deprov;
use crate::clock::Clock;
use crate::events::relay::{Context, Webhook};

impl Context for Deprov {
    fn webhooks(&self, tenant_name: &str) -> Vec<Webhook> {
        self.policies()
            .for_tenant(tenant_name)
            .webhooks
            .iter()
            .map(|w| Webhook {
                url: w.url.clone(),
                secret_env: w.secret_env.clone(),
            })
            .collect()
    }

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
}
