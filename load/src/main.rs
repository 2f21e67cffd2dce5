//! custodian-load: Custodian's load driver and dataset generator.
//!
//! Runs as its own process against a live server (Custodian or a peer such as
//! scim2-server) over HTTP/1.1 keep-alive connections, with fixed request
//! counts, a warm-up, a time limit and verification of every answer.
//! See BENCHMARKS.md and bench/run.sh.

mod client;
mod crud;
mod ctx;
mod hostile;
mod payloads;
mod report;
mod rss;
mod run;
mod scale;
mod seed;

use clap::{Args, Parser, Subcommand};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "custodian-load",
    version,
    about = "Load driver and dataset generator for Custodian benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Workloads 1–6 on users this run creates: create, lookups, PATCH active
    /// (Entra and Okta shapes), paging (startIndex and cursor), DELETE, gate.
    Crud {
        #[command(flatten)]
        common: Common,
        /// Users created (and then patched, paged, deleted)
        #[arg(long, default_value_t = 5000)]
        users: usize,
        /// Requests per read workload (each lookup kind, gate)
        #[arg(long, default_value_t = 20000)]
        requests: usize,
        /// Run each lookup kind and the closed-loop gate for this many seconds
        /// instead of --requests (0: by --requests). The open-loop gate still
        /// sends --requests.
        #[arg(long, default_value_t = 0)]
        seconds: u64,
        /// Full paging walks per paging workload
        #[arg(long, default_value_t = 4)]
        page_walks: usize,
        /// Skip cursor paging (servers without RFC 9865)
        #[arg(long)]
        no_cursor: bool,
        /// Offered rate of the open-loop gate run (req/s)
        #[arg(long, default_value_t = 10000.0)]
        gate_rate: f64,
        /// Workloads to run after create: lookup,patch,page,delete,gate
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "lookup,patch,page,delete,gate"
        )]
        workloads: Vec<String>,
    },
    /// Workloads on a tenant loaded by `seed`: lookups, paging at depth,
    /// member add/remove on the big group, disposal of owners of K items.
    Scale {
        #[command(flatten)]
        common: Common,
        /// Users the tenant was seeded with
        #[arg(long, default_value_t = 1_000_000)]
        users: usize,
        /// Requests per lookup kind and for the group GET
        #[arg(long, default_value_t = 20000)]
        requests: usize,
        /// Members of the seeded group
        #[arg(long, default_value_t = 100_000)]
        group_size: usize,
        /// Member adds (and as many removes)
        #[arg(long, default_value_t = 500)]
        member_ops: usize,
        /// startIndex pages fetched at random depths
        #[arg(long, default_value_t = 100)]
        index_samples: usize,
        /// Owners to dispose, by item count (seeded with the same list)
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        owners: Vec<usize>,
        /// Workloads: lookup,page,members,dispose
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "lookup,page,members,dispose"
        )]
        workloads: Vec<String>,
    },
    /// Calibration: one GET path, N times (e.g. /healthz: the ceiling of the
    /// driver and the HTTP stack on this machine, with no database work).
    Raw {
        #[command(flatten)]
        common: Common,
        /// Path and query, sent as is with the SCIM token
        #[arg(long, default_value = "/healthz")]
        path: String,
        #[arg(long, default_value_t = 50000)]
        requests: usize,
    },
    /// Tenant A (--token) attacks with its own valid token while tenant B
    /// (--b-token, --gate-token) runs paced lookups, PATCH writes and gate
    /// checks; reports B's p50/p99 and status codes per operation, and A's
    /// status codes, for each attack.
    ///
    /// Attacks (--attacks, in this order): baseline (no attack), emails (PATCH
    /// add of --emails bare-string emails), members (group PATCH, path-less
    /// key " members", --member-ids ids), search (--search-conns parallel POST
    /// /Users/.search with an --attr-bytes attributes list over --search-users
    /// users), extension (--ext-conns threads looking up, by a shared email,
    /// --ext-users users carrying an --ext-bytes unknown extension), secrets
    /// (--secret-conns threads presenting A's token id with random secrets),
    /// flood (POST /Users at --flood-conns connections), dispose (SCIM DELETE
    /// of the seeded owner of --dispose-owner items: run `seed` on tenant A
    /// first; skipped when 0), webhook (A's webhook receiver, run by this
    /// driver on 127.0.0.1:--hook-a-port, answers each event after
    /// --hook-delay s with --hook-a-suspends suspensions' events queued; B
    /// suspends --hook-b-suspends users over the window and each
    /// user.suspended is timed to B's receiver on --hook-b-port; the server's
    /// policy must send A's and B's webhooks there; skipped without ports).
    ///
    /// Every attack sends a bounded number of requests and starts none after
    /// --window (each request gives up after --attack-timeout); A's requests
    /// may well be refused (400/413/429): their codes are recorded, not
    /// judged. Traffic goes to --url only (127.0.0.1 in bench/run.sh).
    #[command(verbatim_doc_comment)]
    Hostile {
        #[command(flatten)]
        common: Common,
        /// Tenant B's SCIM bearer token (the victim; --token is tenant A's)
        #[arg(long, env = "LOAD_B_SCIM_TOKEN", hide_env_values = true)]
        b_token: Option<String>,
        /// Attacks to run, in the fixed order above
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "baseline,emails,members,search,extension,secrets,flood,dispose,webhook"
        )]
        attacks: Vec<String>,
        /// Seconds each attack may start requests for (and B's traffic lasts at least)
        #[arg(long, default_value_t = 10)]
        window: u64,
        /// Seconds before one request is given up on (counted as "timeout")
        #[arg(long, default_value_t = 120)]
        attack_timeout: u64,
        /// Users tenant B creates for its traffic
        #[arg(long, default_value_t = 200)]
        b_users: usize,
        /// Tenant B's connections (lookup, PATCH and gate in turn), each paced
        /// at --b-rate / --b-concurrency: with 24 at 300 req/s, a connection
        /// falls behind only when its answers take over 80 ms
        #[arg(long, default_value_t = 24)]
        b_concurrency: usize,
        /// Tenant B's total offered rate (req/s)
        #[arg(long, default_value_t = 300.0)]
        b_rate: f64,
        #[arg(long, default_value_t = 16_000)]
        emails: usize,
        #[arg(long, default_value_t = 20_000)]
        member_ids: usize,
        #[arg(long, default_value_t = 300)]
        search_users: usize,
        #[arg(long, default_value_t = 8)]
        search_conns: usize,
        /// Size of the attributes list (bytes, about)
        #[arg(long, default_value_t = 900_000)]
        attr_bytes: usize,
        #[arg(long, default_value_t = 100)]
        ext_users: usize,
        /// Size of each user's unknown extension (bytes)
        #[arg(long, default_value_t = 900_000)]
        ext_bytes: usize,
        #[arg(long, default_value_t = 4)]
        ext_conns: usize,
        #[arg(long, default_value_t = 16)]
        secret_conns: usize,
        #[arg(long, default_value_t = 128)]
        flood_conns: usize,
        /// Creates the flood sends at most
        #[arg(long, default_value_t = 200_000)]
        flood_requests: usize,
        /// Items of the seeded owner disposed by the dispose attack (0: skip)
        #[arg(long, default_value_t = 0)]
        dispose_owner: usize,
        /// Port of tenant A's (slow) webhook receiver on 127.0.0.1 (0: skip the webhook attack)
        #[arg(long, default_value_t = 0)]
        hook_a_port: u16,
        /// Port of tenant B's webhook receiver on 127.0.0.1
        #[arg(long, default_value_t = 0)]
        hook_b_port: u16,
        /// Seconds A's receiver takes to answer each event
        #[arg(long, default_value_t = 9)]
        hook_delay: u64,
        /// Users A suspends before the attack (two events each)
        #[arg(long, default_value_t = 10)]
        hook_a_suspends: usize,
        /// Users B suspends over the window (each delivery timed)
        #[arg(long, default_value_t = 20)]
        hook_b_suspends: usize,
    },
    /// Loads the scale dataset directly into a database (not over HTTP).
    Seed {
        /// sqlite://PATH or postgres://… (migrated if needed)
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value = "scale")]
        tenant: String,
        #[arg(long, default_value_t = 1_000_000)]
        users: usize,
        /// Members of the big group (the first N users)
        #[arg(long, default_value_t = 100_000)]
        group_size: usize,
        /// Content items owned by each ordinary user
        #[arg(long, default_value_t = 2)]
        items_per_user: usize,
        /// Extra users owning exactly K items each, for the disposal workload
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        owners: Vec<usize>,
    },
}

#[derive(Args)]
struct Common {
    /// Server base URL (http://host:port)
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Path of the SCIM endpoints under the base URL
    #[arg(long, default_value = "/scim/v2")]
    scim_path: String,
    /// SCIM bearer token (none: no Authorization header)
    #[arg(long, env = "LOAD_SCIM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Gate bearer token
    #[arg(long, env = "LOAD_GATE_TOKEN", hide_env_values = true)]
    gate_token: Option<String>,
    /// Admin bearer token (verification of disposals)
    #[arg(long, env = "LOAD_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Connections (closed-loop workers)
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Unmeasured requests before each measured workload
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// The server's pid, for its peak RSS (/proc/PID/status VmHWM)
    #[arg(long)]
    server_pid: Option<u32>,
    /// Name of this run in the report
    #[arg(long, default_value = "custodian")]
    label: String,
    /// Write the JSON report here
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write the markdown table here (it is always printed on stdout)
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
    /// Give up after this many seconds (requests left count as errors)
    #[arg(long, default_value_t = 1800)]
    time_limit: u64,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("custodian-load: {e}");
        std::process::exit(2);
    }
}

fn real_main() -> Result<(), String> {
    let cli = Cli::parse();
    if let Cmd::Seed {
        database_url,
        tenant,
        users,
        group_size,
        items_per_user,
        owners,
    } = &cli.cmd
    {
        return seed::run(&seed::Seed {
            database_url: database_url.clone(),
            tenant: tenant.clone(),
            users: *users,
            group_size: *group_size,
            items_per_user: *items_per_user,
            owners: owners.clone(),
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let ok = rt.block_on(drive(&cli))?;
    if !ok {
        return Err("verification failed: see the report".into());
    }
    Ok(())
}

async fn drive(cli: &Cli) -> Result<bool, String> {
    let (common, mode) = match &cli.cmd {
        Cmd::Crud { common, .. } => (common, "crud"),
        Cmd::Scale { common, .. } => (common, "scale"),
        Cmd::Raw { common, .. } => (common, "raw"),
        Cmd::Hostile { common, .. } => (common, "hostile"),
        Cmd::Seed { .. } => return Ok(true),
    };
    let (endpoint, base_path) = client::Endpoint::parse(&common.url)?;
    let bearer = |t: &Option<String>| t.as_ref().map(|t| format!("Bearer {t}"));
    let ctx = ctx::Ctx::new(
        endpoint,
        format!("{base_path}{}", common.scim_path.trim_end_matches('/')),
        bearer(&common.token),
        bearer(&common.gate_token),
        bearer(&common.admin_token),
        common.concurrency.max(1),
        common.warmup,
        Instant::now() + Duration::from_secs(common.time_limit),
        rss::Server::new(common.server_pid),
    );
    let started_at = chrono::Utc::now().to_rfc3339();
    let config = match &cli.cmd {
        Cmd::Crud {
            users,
            requests,
            seconds,
            page_walks,
            no_cursor,
            gate_rate,
            workloads,
            ..
        } => {
            crud::run(
                &ctx,
                &crud::Crud {
                    users: *users,
                    requests: *requests,
                    seconds: (*seconds > 0).then(|| Duration::from_secs(*seconds)),
                    page_walks: *page_walks,
                    cursor: !*no_cursor,
                    gate_rate: *gate_rate,
                    workloads: workloads.clone(),
                },
            )
            .await?;
            serde_json::json!({"users": users, "requests": requests, "seconds": seconds, "page_walks": page_walks,
                "cursor": !no_cursor, "gate_rate": gate_rate, "workloads": workloads})
        }
        Cmd::Scale {
            users,
            requests,
            group_size,
            member_ops,
            index_samples,
            owners,
            workloads,
            ..
        } => {
            scale::run(
                &ctx,
                &scale::Scale {
                    users: *users,
                    requests: *requests,
                    group_size: *group_size,
                    member_ops: *member_ops,
                    index_samples: *index_samples,
                    owners: owners.clone(),
                    workloads: workloads.clone(),
                },
            )
            .await?;
            serde_json::json!({"users": users, "requests": requests, "group_size": group_size,
                "member_ops": member_ops, "owners": owners, "workloads": workloads})
        }
        Cmd::Hostile {
            common,
            b_token,
            attacks,
            window,
            attack_timeout,
            b_users,
            b_concurrency,
            b_rate,
            emails,
            member_ids,
            search_users,
            search_conns,
            attr_bytes,
            ext_users,
            ext_bytes,
            ext_conns,
            secret_conns,
            flood_conns,
            flood_requests,
            dispose_owner,
            hook_a_port,
            hook_b_port,
            hook_delay,
            hook_a_suspends,
            hook_b_suspends,
        } => {
            let cfg = hostile::Hostile {
                b_scim_auth: bearer(b_token),
                a_token: common.token.clone(),
                attacks: attacks.clone(),
                window: Duration::from_secs(*window),
                attack_timeout: Duration::from_secs(*attack_timeout),
                b_users: *b_users,
                b_concurrency: *b_concurrency,
                b_rate: *b_rate,
                emails: *emails,
                member_ids: *member_ids,
                search_users: *search_users,
                search_conns: *search_conns,
                attr_bytes: *attr_bytes,
                ext_users: *ext_users,
                ext_bytes: *ext_bytes,
                ext_conns: *ext_conns,
                secret_conns: *secret_conns,
                flood_conns: *flood_conns,
                flood_requests: *flood_requests,
                dispose_owner: *dispose_owner,
                hook_a_port: *hook_a_port,
                hook_b_port: *hook_b_port,
                hook_delay: Duration::from_secs(*hook_delay),
                hook_a_suspends: *hook_a_suspends,
                hook_b_suspends: *hook_b_suspends,
            };
            if let Some(bad) = attacks
                .iter()
                .find(|a| !hostile::ATTACKS.contains(&a.as_str()))
            {
                return Err(format!(
                    "unknown attack '{bad}' (known: {})",
                    hostile::ATTACKS.join(",")
                ));
            }
            hostile::run(&ctx, &cfg).await?;
            serde_json::json!({"attacks": attacks, "window_s": window, "attack_timeout_s": attack_timeout,
                "b_users": b_users, "b_concurrency": b_concurrency, "b_rate": b_rate, "emails": emails,
                "member_ids": member_ids, "search_users": search_users, "search_conns": search_conns,
                "attr_bytes": attr_bytes, "ext_users": ext_users, "ext_bytes": ext_bytes,
                "ext_conns": ext_conns, "secret_conns": secret_conns, "flood_conns": flood_conns,
                "flood_requests": flood_requests, "dispose_owner": dispose_owner,
                "hook_a_port": hook_a_port, "hook_b_port": hook_b_port, "hook_delay_s": hook_delay,
                "hook_a_suspends": hook_a_suspends, "hook_b_suspends": hook_b_suspends})
        }
        Cmd::Raw { path, requests, .. } => {
            let make = |_| run::Req {
                method: hyper::Method::GET,
                path: path.clone(),
                auth: ctx.scim_auth.clone(),
                body: None,
            };
            let check = |_: usize, r: &client::Response| {
                if r.status == 200 {
                    Ok(())
                } else {
                    Err(format!("status {}", r.status))
                }
            };
            ctx.warm(ctx.warmup, make, check).await?;
            ctx.measure(
                &format!("GET {path}"),
                *requests,
                ctx.concurrency,
                make,
                check,
            )
            .await?;
            serde_json::json!({"path": path, "requests": requests})
        }
        Cmd::Seed { .. } => serde_json::Value::Null,
    };
    let mut config = config;
    config["concurrency"] = common.concurrency.into();
    config["warmup"] = common.warmup.into();
    config["url"] = common.url.clone().into();
    let results = ctx.results.borrow();
    let verifications = ctx.verifications.borrow();
    let md = report::markdown(&common.label, &results, &verifications);
    print!("{md}");
    if let Some(p) = &common.markdown {
        std::fs::write(p, &md).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &common.json {
        let r = report::Report {
            label: &common.label,
            mode,
            started_at,
            config,
            results: &results,
            verifications: &verifications,
        };
        let text = serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?;
        std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(verifications.iter().all(|v| v.failed == 0))
}
