//! The `abuse` scenario: honest users load `page` at half of its peak rate while one attacker
//! sends the most expensive document the cost limit lets through and floods `signIn`, both
//! from one address, as fast as the gateway answers.
//!
//! It runs against a second gateway started for it with the production limits (the main
//! one's rate limits are lifted so the load generator, one address, is never refused). Each
//! honest virtual user comes from an address of its own (`X-Real-IP`, from the documentation
//! prefix 2001:db8::/32: a label in a header, never a destination), as real users would;
//! the attacker's address is one more. The honest run is measured without the attacker, then
//! with it; the attacker runs on a thread and runtime of its own, so its work in the load
//! generator does not delay the honest requests' clock.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;

use super::{
    load::{self, Stats},
    procs::Watched,
    report::ProcessFigures,
    scenarios::{self, GraphqlClient, Scenario, VirtualUser},
    seed,
};
use crate::system::{self, Ports, Spec, System};

/// The attacker's expensive document: a page of 100 hangouts with everything on them, just
/// under the default cost limit (about 9,500 of 12,000).
const EXPENSIVE: &str = "query Expensive { hangouts(first: 100) { totalCount nodes { id title \
    description descriptionHtml date status owner { id name } activities { id name } \
    memories(first: 20) { totalCount nodes { id fileName contentType size downloadUrl } } } } }";

const SIGN_IN: &str =
    "mutation SignIn($input: SignInInput!) { signIn(input: $input) { accessToken } }";

/// The attacker's address.
const ATTACKER: &str = "2001:db8:ffff::1";

/// Concurrent requests of each of the attacker's two floods.
const ATTACKER_CONCURRENCY: usize = 8;

/// How the attacker's requests were answered.
#[derive(Clone, Debug, Default)]
pub struct Outcomes {
    pub answered: u64,
    /// 429 or 503: refused by a limit.
    pub refused: u64,
    /// Anything else: errors, timeouts.
    pub other: u64,
}

/// What the scenario measured.
#[derive(Clone, Debug)]
pub struct AbuseFigures {
    /// Honest requests started per second.
    pub rate: f64,
    pub unattacked: Stats,
    pub attacked: Stats,
    pub expensive: Outcomes,
    pub sign_ins: Outcomes,
    /// Each process during the attacked run (the gateway is the one with production limits).
    pub processes: Vec<ProcessFigures>,
}

impl AbuseFigures {
    /// The honest p99 under attack over the honest p99 without, when both are known.
    pub fn p99_ratio(&self) -> f64 {
        let unattacked = self.unattacked.percentile_ms(0.99);
        if unattacked > 0.0 {
            self.attacked.percentile_ms(0.99) / unattacked
        } else {
            0.0
        }
    }
}

/// The bench's settings the scenario uses.
pub struct Settings<'a> {
    pub binaries: &'a Path,
    pub ports: Ports,
    pub data: &'a Path,
    pub window: Duration,
    pub in_flight: usize,
    pub ticks: f64,
}

/// Runs the scenario at `rate` honest `page` requests per second.
///
/// # Errors
/// When the second gateway does not start or its users cannot sign in.
pub async fn run(
    settings: &Settings<'_>,
    backends: &[Watched],
    active: &[seed::ActiveUser],
    rate: f64,
) -> anyhow::Result<AbuseFigures> {
    let [port, metrics] = system::free_ports::<2>()?;
    let spec = gateway_spec(settings.ports, settings.data, port, metrics)?;
    let mut gateway = System::start(&[spec], settings.binaries, system::Output::Quiet).await?;
    let outcome = run_against(settings, &gateway, backends, active, rate, port).await;
    gateway.stop().await;
    outcome
}

/// The main gateway's spec on other ports, with the production limits (those of its own
/// configuration: nothing lifted).
fn gateway_spec(ports: Ports, data: &Path, port: u16, metrics: u16) -> anyhow::Result<Spec> {
    let mut spec = system::specs(ports, data)
        .into_iter()
        .find(|spec| spec.package == "gateway")
        .context("no gateway spec")?;
    spec.listens_on = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    for (variable, value) in &mut spec.env {
        match variable.as_str() {
            "GATEWAY_LISTEN_ADDR" => *value = spec.listens_on.to_string(),
            "GATEWAY_METRICS_ADDR" => *value = format!("127.0.0.1:{metrics}"),
            _ => {}
        }
    }
    Ok(spec)
}

async fn run_against(
    settings: &Settings<'_>,
    gateway: &System,
    backends: &[Watched],
    active: &[seed::ActiveUser],
    rate: f64,
    port: u16,
) -> anyhow::Result<AbuseFigures> {
    let http = reqwest::Client::builder()
        .timeout(scenarios::REQUEST_TIMEOUT)
        .pool_idle_timeout(scenarios::IDLE_CONNECTION_TIMEOUT)
        .build()?;
    super::wait_ready(&http, port).await?;
    let (attacker, honest) = active
        .split_last()
        .context("the abuse scenario needs at least two active users")?;
    anyhow::ensure!(
        !honest.is_empty(),
        "the abuse scenario needs two active users"
    );
    // This gateway signs with a key of its own: its users sign in again, through it, each
    // from the address it then sends from.
    let mut honest_users = Vec::with_capacity(honest.len());
    for (slot, user) in honest.iter().enumerate() {
        let address = scenarios::own_address(slot);
        let access_token =
            scenarios::sign_in_from(&http, port, &user.email, seed::PASSWORD, Some(&address))
                .await?;
        honest_users.push(VirtualUser {
            user_id: user.user_id.clone(),
            access_token,
            detail_hangout: user.detail_hangout.clone(),
            upload_hangout: user.upload_hangout.clone(),
        });
    }
    let attacker_token =
        scenarios::sign_in_from(&http, port, &attacker.email, seed::PASSWORD, Some(ATTACKER))
            .await?;
    let mut watched: Vec<Watched> = backends
        .iter()
        .filter(|process| process.name != "gateway")
        .cloned()
        .collect();
    for (_, pid) in gateway.pids() {
        watched.push(Watched {
            name: "gateway",
            pid,
        });
    }
    let client = GraphqlClient::new(port, honest_users)?.with_own_addresses();
    let honest_load = |client: GraphqlClient| {
        let users = client.users();
        load::open_loop(
            rate,
            users,
            settings.in_flight,
            settings.window,
            move |user| {
                let client = client.clone();
                async move { client.send(Scenario::Page(20), user).await.map(drop) }
            },
        )
    };
    println!("\n== abuse: honest `page` at {rate:.0}/s, no attacker");
    let unattacked = honest_load(client.clone()).await?;
    super::print_run(Scenario::Page(20), "abuse, unattacked", &unattacked);

    println!("== abuse: the same with the attacker");
    let stop = Arc::new(AtomicBool::new(false));
    let attack = spawn_attacker(port, attacker_token, Arc::clone(&stop))?;
    let attacked = super::sampled(&watched, settings.ticks, honest_load(client)).await;
    stop.store(true, Ordering::Relaxed);
    let (expensive, sign_ins) = attack
        .join()
        .map_err(|_| anyhow::anyhow!("the attacker thread panicked"))??;
    let (attacked, processes) = attacked?;
    super::print_run(Scenario::Page(20), "abuse, attacked", &attacked);
    println!(
        "   attacker: expensive {} answered, {} refused, {} other; sign-ins {} answered, {} \
         refused, {} other",
        expensive.answered,
        expensive.refused,
        expensive.other,
        sign_ins.answered,
        sign_ins.refused,
        sign_ins.other
    );
    Ok(AbuseFigures {
        rate,
        unattacked,
        attacked,
        expensive,
        sign_ins,
        processes,
    })
}

/// Starts the attacker on a thread of its own; it runs until `stop`.
fn spawn_attacker(
    port: u16,
    token: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<(Outcomes, Outcomes)>>> {
    let thread = std::thread::Builder::new()
        .name("attacker".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(attack(port, token, stop))
        })?;
    Ok(thread)
}

/// Both floods, until `stop`.
async fn attack(
    port: u16,
    token: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Outcomes, Outcomes)> {
    let http = reqwest::Client::builder()
        .timeout(scenarios::REQUEST_TIMEOUT)
        .pool_idle_timeout(scenarios::IDLE_CONNECTION_TIMEOUT)
        .build()?;
    let url = format!("http://127.0.0.1:{port}/graphql");
    let expensive = serde_json::json!({ "query": EXPENSIVE }).to_string();
    let sign_in = serde_json::json!({
        "query": SIGN_IN,
        "variables": { "input": { "email": seed::email(0), "password": "a wrong guess" } },
    })
    .to_string();
    let floods = [(expensive, Some(token)), (sign_in, None)].map(|(body, token)| {
        let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..ATTACKER_CONCURRENCY {
            let (http, url, body, token) = (http.clone(), url.clone(), body.clone(), token.clone());
            let (counts, stop) = (Arc::clone(&counts), Arc::clone(&stop));
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let mut request = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-real-ip", ATTACKER)
                        .body(body.clone());
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    let slot = match request.send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            // Read the body, as a client would: it is what costs the gateway.
                            let read = response.bytes().await.is_ok();
                            match status {
                                200 if read => 0,
                                429 | 503 => 1,
                                _ => 2,
                            }
                        }
                        Err(_) => 2,
                    };
                    counts[slot].fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        (tasks, counts)
    });
    let mut outcomes = Vec::new();
    for (tasks, counts) in floods {
        tasks.join_all().await;
        outcomes.push(Outcomes {
            answered: counts[0].load(Ordering::Relaxed),
            refused: counts[1].load(Ordering::Relaxed),
            other: counts[2].load(Ordering::Relaxed),
        });
    }
    let sign_ins = outcomes.pop().unwrap_or_default();
    let expensive = outcomes.pop().unwrap_or_default();
    Ok((expensive, sign_ins))
}
