//! The command line (clap). `main.rs` only dispatches.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Exit codes of every command (README "Command line"); `--help` lists them.
pub const EXIT_CODES: &str = "Exit codes: 0 success; 1 runtime error (database, I/O, a refused \
operation); 2 usage or configuration error (bad arguments, an invalid config file or \
variable); 3 `policy check`: the policy file is invalid or unreadable; 4 a named tenant, \
token or tombstone does not exist (`token create` for an unknown tenant without \
--create-tenant, `token revoke`, `tombstone list|lift`).";

#[derive(Parser, Debug)]
#[command(
    name = "custodian",
    version,
    about = "SCIM 2.0 provisioning endpoint with safe, policy-driven deprovisioning",
    after_help = EXIT_CODES
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
    /// SIGTERM or SIGINT stops it gracefully (within `shutdown_timeout`); SIGHUP reloads the policy file.
    /// Serves the admin console at /console/ unless `console = false`.
    /// Refuses to start while the disposal journal holds changes the database lacks
    /// (a restored backup): run `custodian disposals reapply` first.
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
    /// Probe a running server's /healthz (for a container HEALTHCHECK: no
    /// curl needed). Exits 0 when it answers 200 within the timeout, else 1.
    Healthcheck {
        /// The URL to probe. Default: /healthz on the configured `bind`
        /// address (a wildcard address probes loopback).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3, value_name = "SECONDS")]
        timeout: u64,
    },
    /// SQLite: write a consistent, verified copy of the database while it serves
    /// (never overwrites FILE), and say which key file to keep with it.
    /// PostgreSQL: prints the pg_dump command to use and exits non-zero.
    Backup {
        /// Where to write the copy (must not exist).
        file: PathBuf,
    },
    /// SQLite: replace the database with a verified backup. Refuses while a server
    /// uses the database. Then run `custodian disposals reapply` if it says so.
    Restore {
        /// A file written by `custodian backup`.
        file: PathBuf,
    },
    /// The disposal journal kept outside the database.
    Disposals {
        #[command(subcommand)]
        command: DisposalsCommand,
    },
    /// Print the OpenAPI 3.1 document of the admin, ledger, events and gate APIs
    /// (as served at /admin/v1/openapi.json); `custodian openapi > docs/openapi.json`.
    Openapi,
}

/// How a command failed, and so its exit code (`EXIT_CODES`).
#[derive(Debug)]
pub enum Failure {
    /// The database, I/O, or a refused operation: 1.
    Runtime(String),
    /// Configuration that cannot be used: 2, like clap's usage errors.
    Usage(String),
    /// `policy check` found the policy invalid or unreadable: 3.
    PolicyInvalid(String),
    /// A named tenant, token or tombstone does not exist: 4.
    NotFound(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Runtime(_) => 1,
            Failure::Usage(_) => 2,
            Failure::PolicyInvalid(_) => 3,
            Failure::NotFound(_) => 4,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Runtime(m)
            | Failure::Usage(m)
            | Failure::PolicyInvalid(m)
            | Failure::NotFound(m) => m,
        }
    }
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::Runtime(m)
    }
}

#[derive(Subcommand, Debug)]
pub enum DisposalsCommand {
    /// Write back every journaled disposal, tombstone, lift and release the
    /// database lacks (after restoring a backup): people it still holds are
    /// disposed again, tombstones come back from their hashes. Idempotent.
    /// Run with the servers stopped; prints what it did as JSON.
    Reapply,
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
        /// One JSON document on stdout, valid or not: `valid`, `source`,
        /// `default`, `tenants` (each with its `digest`) and `warnings`; or
        /// `valid: false` with `error: {file, line, message}` (exit code 3).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token and print it once, alone, as the last line of stdout.
    /// Only an argon2id hash is stored. An unknown tenant is an error (exit
    /// code 4) unless --create-tenant is given.
    Create {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Create the tenant if it does not exist (an existing one is used as it
        /// is), so a mistyped name never makes a new tenant by accident.
        #[arg(long)]
        create_tenant: bool,
        /// What the token may call: scim (identity providers), gate (SSO login checks),
        /// ledger (content-ledger writes, receipts, the events feed), admin (the admin
        /// API), auditor (the admin API's reads; changes nothing).
        #[arg(long, value_parser = ["scim", "gate", "ledger", "admin", "auditor"])]
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
        /// A JSON array on stdout, newest first: `id`, `tenant`, `scope`, `name`,
        /// `actsAs`, `createdAt`, `revokedAt` (null when live).
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; takes effect on the next request (SQLite), within
    /// one second on every replica (PostgreSQL). Its console sessions end at once.
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
        /// A JSON array on stdout: `id`, `disposalId`, `createdAt`, `liftedAt`
        /// (null while live), `identifierTypes`.
        #[arg(long)]
        json: bool,
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
