//! `fakes`: every service the demo config watches, on 127.0.0.1, so a newcomer
//! sees a daemon doing real work with all four connectors and no vendor
//! account: the example connector's document services, Snowflake's SQL API,
//! dbt Cloud, Looker, a document API for the generic `http` connector, and a
//! folder of dbt Core artifacts (the real ones of `tests/fixtures/dbt/shop/`);
//! and a webhook receiver (`--alerts`, 127.0.0.1:9420) that verifies the
//! daemon's signed alerts and prints one line for each; and an OpenLineage
//! producer that replays real `dbt-ol` events to the daemon at each phase
//! (`--daemon`, [`openlineage`]): the failing build while dbt Core's run2 is
//! up, the green one otherwise.
//!
//! Everything follows one cycle of eight phases (`--phase` seconds each, 60
//! by default), so health moves within minutes and comes back:
//!
//! | phase | documents | snowflake | dbt Core (artifacts) | dbt Cloud | looker | document API |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | 0 | healthy | healthy | run1: green | healthy | healthy | healthy |
//! | 1 | healthy | healthy | run1: green | healthy | healthy | healthy |
//! | 2 | warehouse lags 2% | stale | run2: failures | healthy | failing | healthy |
//! | 3 | warehouse lags 2% | stale | run2: failures | failing | failing | failing |
//! | 4 | warehouse lags 10% | healthy | run3: recovering | failing | healthy | healthy |
//! | 5 | healthy | failing | run3: recovering | healthy | healthy | stale |
//! | 6 | intake stalls | healthy | run1: green | stale | stale | healthy |
//! | 7 | intake down | rate limited | run1: green | healthy | unauthorized | rate limited |
//!
//! Two client apps push to the daemon (`--daemon`) instead of being polled
//! ([`client_apps`]): a mobile app (3% of its uploads lost in phase 4) and an
//! export job whose heartbeat stops in phase 6.

mod client_apps;
mod documents;
mod openlineage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use plugin_sdk::harness::TestServer;
use tributary_tests::fakes::dbt_cloud::DbtCloudFake;
use tributary_tests::fakes::looker::LookerFake;
use tributary_tests::fakes::service::{Credentials, ServiceFake};
use tributary_tests::fakes::snowflake::{FakeSetup, SnowflakeFake};
use tributary_tests::fakes::webhook::WebhookFake;
use tributary_tests::fakes::{FakeClock, Scenario, ScenarioSwitch};

use Scenario::{Failing, Healthy, RateLimited, Stale, Unauthorized};

#[derive(Debug, Parser)]
#[command(about = "Fake services for the Tributary demo")]
struct Args {
    /// The intake document service (example connector).
    #[arg(long, default_value = "127.0.0.1:9400")]
    intake: SocketAddr,
    /// The warehouse loader's document service (example connector).
    #[arg(long, default_value = "127.0.0.1:9401")]
    warehouse: SocketAddr,
    /// Snowflake's SQL API.
    #[arg(long, default_value = "127.0.0.1:9410")]
    snowflake: SocketAddr,
    /// dbt Cloud: the Admin API and the Discovery API.
    #[arg(long, default_value = "127.0.0.1:9411")]
    dbt_cloud: SocketAddr,
    /// Looker's API 4.0.
    #[arg(long, default_value = "127.0.0.1:9412")]
    looker: SocketAddr,
    /// The document API the `http` connector watches.
    #[arg(long, default_value = "127.0.0.1:9413")]
    documents_api: SocketAddr,
    /// The alert webhook receiver: prints each alert the daemon delivers.
    #[arg(long, default_value = "127.0.0.1:9420")]
    alerts: SocketAddr,
    /// The receiver's signing secret (the demo config's
    /// `config/demo-secrets/alert_webhook_secret`).
    #[arg(
        long,
        env = "DEMO_ALERT_SECRET",
        default_value = "whsec_ZGVtby1hbGVydC1zZWNyZXQtZm9yLXRoZS1mYWtlcw=="
    )]
    alert_secret: String,
    /// Where the dbt Core artifacts are written (the dbt check's `read_dir`).
    #[arg(long, default_value = "data/demo-dbt")]
    dbt_dir: PathBuf,
    /// The bearer token the document services expect.
    #[arg(long, env = "DEMO_TOKEN", default_value = "demo-token")]
    token: String,
    /// The demo daemon, to which the client apps push and OpenLineage
    /// events are sent.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    daemon: String,
    /// The token of the demo config's `dbt-lineage` check.
    #[arg(
        long,
        env = "DEMO_OPENLINEAGE_TOKEN",
        default_value = "demo-openlineage-token"
    )]
    openlineage_token: String,
    /// The mobile app's push token (the demo config holds its SHA-256).
    #[arg(long, default_value = "demo-mobile-push-token")]
    mobile_token: String,
    /// The export job's push token.
    #[arg(long, default_value = "demo-export-push-token")]
    export_token: String,
    /// Length of one phase of the cycle (8 phases).
    #[arg(long, default_value = "60", value_name = "SECONDS")]
    phase: u64,
}

/// The scenario each vendor fake plays in each phase.
const SNOWFLAKE: [Scenario; 8] = [
    Healthy,
    Healthy,
    Stale,
    Stale,
    Healthy,
    Failing,
    Healthy,
    RateLimited,
];
const DBT_CLOUD: [Scenario; 8] = [
    Healthy, Healthy, Healthy, Failing, Failing, Healthy, Stale, Healthy,
];
const LOOKER: [Scenario; 8] = [
    Healthy,
    Healthy,
    Failing,
    Failing,
    Healthy,
    Healthy,
    Stale,
    Unauthorized,
];
const DOCUMENT_API: [Scenario; 8] = [
    Healthy,
    Healthy,
    Healthy,
    Failing,
    Healthy,
    Stale,
    Healthy,
    RateLimited,
];
/// The dbt Core run whose artifacts lie in the folder in each phase.
const DBT_CORE: [&str; 8] = [
    "run1-green",
    "run1-green",
    "run2-failures",
    "run2-failures",
    "run3-recovering",
    "run3-recovering",
    "run1-green",
    "run1-green",
];

/// Writes `run`'s artifacts into `dir`, each by a rename so the plugin never
/// reads a half-written file.
fn write_artifacts(run: &str, dir: &Path) -> std::io::Result<()> {
    let from = tributary_tests::repo_root()
        .join("tests/fixtures/dbt/shop")
        .join(run);
    std::fs::create_dir_all(dir)?;
    for file in ["manifest.json", "run_results.json", "sources.json"] {
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::copy(from.join(file), &tmp)?;
        std::fs::rename(&tmp, dir.join(file))?;
    }
    Ok(())
}

async fn bind(
    what: &str,
    addr: SocketAddr,
    handler: impl Fn(&plugin_sdk::harness::Recorded) -> plugin_sdk::harness::Reply
    + Send
    + Sync
    + 'static,
) -> std::io::Result<TestServer> {
    let server = TestServer::bind(addr, handler).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot serve the {what} fake on {addr}: {e}"),
        )
    })?;
    eprintln!("fakes: {what} on {}", server.url());
    Ok(server)
}

/// One line per alert delivery: what it says, or why it was refused.
fn print_alert(req: &plugin_sdk::harness::Recorded, status: u16) {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let id = req.header("webhook-id").unwrap_or("?");
    match status {
        204 => println!(
            "alert {id}: {}",
            body["data"]["summary"].as_str().unwrap_or("(no summary)")
        ),
        _ => println!("alert refused ({status}): the signature or timestamp did not verify"),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let phase = Duration::from_secs(args.phase.max(1));
    let clock = FakeClock::system();
    let switches = [(); 4].map(|()| ScenarioSwitch::default());
    let [snowflake, dbt_cloud, looker, documents_api] = switches.clone();

    let snowflake_fake = SnowflakeFake::new(clock.clone(), snowflake, FakeSetup::example());
    let dbt_fake = DbtCloudFake::new(clock.clone(), dbt_cloud);
    let looker_fake = LookerFake::new(clock.clone(), looker);
    // The bearer token the demo config gives the http check.
    let api_fake = ServiceFake::new(clock.clone(), documents_api).with_credentials(Credentials {
        token: args.token.clone(),
        ..Credentials::default()
    });
    let alerts_fake = WebhookFake::new(&[args.alert_secret.as_str()]);
    let servers = [
        bind("Snowflake SQL API", args.snowflake, move |r| {
            snowflake_fake.handle(r)
        })
        .await?,
        bind("dbt Cloud", args.dbt_cloud, move |r| dbt_fake.handle(r)).await?,
        bind("Looker API", args.looker, move |r| looker_fake.handle(r)).await?,
        bind("document API", args.documents_api, move |r| {
            api_fake.handle(r)
        })
        .await?,
        bind("alert receiver", args.alerts, move |r| {
            let reply = alerts_fake.handle(r);
            print_alert(r, reply.status);
            reply
        })
        .await?,
    ];
    write_artifacts(DBT_CORE[0], &args.dbt_dir)?;
    eprintln!(
        "fakes: dbt Core artifacts in {} ({}s phases, 8 to a cycle)",
        args.dbt_dir.display(),
        phase.as_secs()
    );

    let daemon = tributary_tests::gql::Client::new(args.daemon.clone());
    let started = Instant::now();
    let cycle = async {
        let mut current = None;
        loop {
            let n = (started.elapsed().as_secs() / phase.as_secs()) as usize % 8;
            if current != Some(n) {
                current = Some(n);
                let plan = [SNOWFLAKE[n], DBT_CLOUD[n], LOOKER[n], DOCUMENT_API[n]];
                for (switch, scenario) in switches.iter().zip(plan) {
                    switch.set(scenario);
                }
                if let Err(err) = write_artifacts(DBT_CORE[n], &args.dbt_dir) {
                    eprintln!("fakes: cannot write the dbt artifacts: {err}");
                }
                eprintln!(
                    "fakes: phase {n}: snowflake {}, dbt Core {}, dbt Cloud {}, looker {}, document API {}",
                    plan[0], DBT_CORE[n], plan[1], plan[2], plan[3]
                );
                let (daemon, token) = (daemon.clone(), args.openlineage_token.clone());
                let build = openlineage::build_of(DBT_CORE[n]);
                let replay = started.elapsed().as_secs() / phase.as_secs();
                tokio::spawn(async move {
                    let said = openlineage::replay(&daemon, &token, build, replay).await;
                    eprintln!("fakes: OpenLineage replay {said}");
                });
                // The fakes record every request; the demo never reads them.
                for server in &servers {
                    server.take_requests();
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let apps = client_apps::Apps {
        daemon: args.daemon.clone(),
        mobile_token: args.mobile_token.clone(),
        export_token: args.export_token.clone(),
    };
    tokio::select! {
        served = documents::serve_both(args.intake, args.warehouse, args.token.clone(), phase) => served,
        () = cycle => Ok(()),
        () = client_apps::run(apps, phase) => Ok(()),
    }
}
