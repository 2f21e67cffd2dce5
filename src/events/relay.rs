//! Webhook delivery (placeholder until the relay lands).
