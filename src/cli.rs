//! The command line (clap). `main.rs` only dispatches.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "custodian",
    version,
    about = "SCIM 2.0 provisioning endpoint with safe, policy-driven deprovisioning"
)]
pub struct Cli {
    /// Config file (TOML). Default: $CUSTODIAN_CONFIG, else ./custodian.toml when present, else built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (default: SQLite file ./data/custodian.db, 127.0.0.1:8080). Applies migrations first.
    Serve {
        /// Address to listen on (overrides `bind` and $CUSTODIAN_BIND).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Apply pending database migrations and exit (creates the SQLite file if missing).
    Migrate,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Tombstones of disposed people (keyed hashes; identifiers are never stored).
    Tombstone {
        #[command(subcommand)]
        command: TombstoneCommand,
    },
    /// Deprovisioning policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Print the OpenAPI 3.1 document of the admin, ledger, events and gate APIs
    /// (as served at /admin/v1/openapi.json); `custodian openapi > docs/openapi.json`.
    Openapi,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate a policy file and print the effective policy of the default and of
    /// every tenant it names, with warnings. Exits non-zero with the file, line and
    /// key of the first error. Default: the configured `policy_file`, else the
    /// built-in policy.
    Check {
        /// Policy file (TOML).
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it once, alone, as the last line of stdout.
    /// Creates the tenant if missing. Only an argon2id hash is stored.
    Create {
        /// Tenant name (created if it does not exist).
        #[arg(long)]
        tenant: String,
        /// What the token may call: scim (identity providers), gate (SSO login checks),
        /// ledger (content-ledger writes), admin (the admin API).
        #[arg(long, value_parser = ["scim", "gate", "ledger", "admin"])]
        scope: String,
        /// A name for the token; recorded as the actor in logs and audit rows.
        #[arg(long)]
        name: String,
        /// userName of the account this token acts as (the `caller` target of a transfer policy).
        #[arg(long, value_name = "USERNAME")]
        acts_as: Option<String>,
    },
    /// List tokens (id, tenant, scope, name, created, revoked). Never prints secrets.
    List {
        /// Only this tenant's tokens.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by id; takes effect on the next request, on every replica.
    Revoke {
        /// The token id (the 16 hex characters after `cust_`, as `token list` shows).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TombstoneCommand {
    /// List a tenant's tombstones: id, created, lifted, identifier types (never values).
    List {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
    },
    /// Lift the live tombstones matching an identifier (audited): the person may be
    /// provisioned again and the gate stops denying them.
    Lift {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// The person's userName (matched case-insensitively).
        #[arg(long, value_name = "USERNAME")]
        user_name: Option<String>,
        /// One of the person's emails (matched case-insensitively).
        #[arg(long)]
        email: Option<String>,
        /// The person's externalId (exact).
        #[arg(long)]
        external_id: Option<String>,
        /// SSO issuer (with --subject).
        #[arg(long, requires = "subject")]
        issuer: Option<String>,
        /// SSO subject (with --issuer).
        #[arg(long, requires = "issuer")]
        subject: Option<String>,
    },
}
