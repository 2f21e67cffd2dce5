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
                previous_secret_env: w.previous_secret_env.clone(),
                signature: w.signature,
            })
            .collect()
    }

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::deprovision::policy;
    use crate::deprovision::tombstone::TombstoneKeys;
    use std::sync::Arc;

    fn hook(url: &str, secret_env: &str) -> Webhook {
        Webhook {
            url: url.into(),
            secret_env: secret_env.into(),
            previous_secret_env: None,
            signature: Default::default(),
        }
    }

    /// The relay sees each tenant's own endpoints (or the default's), the
    /// policy swapped in by a reload from then on, and the service's clock.
    #[test]
    fn the_relay_reads_the_policy_in_force_and_the_clock() {
        let parse = |text: &str| policy::parse(text, "policy.toml").expect("policy");
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let deprov = Deprov::new(
            parse(
                "[default]\nwebhooks = [{ url = \"https://d.example/h\", secret_env = \"D\" }]\n\
                 [tenants.acme]\nwebhooks = [{ url = \"https://a.example/h\", secret_env = \"A\" }]\n",
            ),
            TombstoneKeys::from_spec(&"ab".repeat(32)).expect("key"),
            clock.clone(),
        );
        assert_eq!(deprov.webhooks("acme"), [hook("https://a.example/h", "A")]);
        assert_eq!(deprov.webhooks("other"), [hook("https://d.example/h", "D")]);
        deprov.replace_policies(parse("[default]\n"));
        assert!(deprov.webhooks("acme").is_empty());
        let before = Context::clock(&deprov).now();
        clock.advance(chrono::Duration::hours(1));
        assert!(Context::clock(&deprov).now() - before >= chrono::Duration::hours(1));
    }
}
