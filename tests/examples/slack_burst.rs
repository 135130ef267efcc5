//! Load benchmark of `scalebot serve`'s Slack HTTP endpoint.
//!
//! Starts redis-server, kubesim (scenario `butterfly`), the fake Slack Web
//! API and `scalebot serve` in Slack HTTP mode, all on 127.0.0.1, then posts
//! signed slash commands to `POST /slack/commands` at a fixed rate for a
//! fixed time. Sends are scheduled by the clock (open loop): a slow response
//! never delays the next send. Each request is timed from the moment it is
//! handed to the HTTP client until its whole response body has arrived.
//!
//! Slack shows the user an error when a slash command gets no response
//! within 3 seconds. The run fails (exit status 1) when any response takes
//! longer than that, is not HTTP 200 or never arrives, and when any command
//! fails because the bot reports Redis as unreachable.
//!
//! Run it with `bench/slack-burst [--rate N] [--seconds N] ...`; `--help`
//! lists the options.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use commands::coordination::Coordinator;
use commands::coordination::testing::RedisServer;
use commands::engine::{FLOOD_LIMIT, FLOOD_WINDOW};
use integration_tests::fake_slack::{
    self, BOT_TOKEN, FakeSlack, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use integration_tests::serve::ServeProcess;
use integration_tests::{KubesimProcess, TempDir, test_config};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Signing secret shared by the bot and this load generator.
const SIGNING_SECRET: &str = "load-benchmark-signing-secret";
/// Channel that the commands come from, and the only channel that the bot
/// takes requests in.
const CHANNEL: &str = "C0LOAD0001";
/// Slack user group that makes every load user a requester.
const LOAD_GROUP: &str = "S0LOADERS";

/// Time within which Slack expects the response to a slash command.
const SLACK_DEADLINE: Duration = Duration::from_secs(3);
/// Time after which the load generator gives up on one response. Longer
/// than [`SLACK_DEADLINE`], so that slow responses are measured, not cut.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for opening one TCP connection to the bot.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time for the bot to report ready on `GET /readyz` after it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time the scheduler waits for a free in-flight slot before it counts the
/// request as not sent.
const PERMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time after the last response for the bot to post its late ephemeral
/// messages before the fake Slack's records are read. Messages posted later
/// are not counted.
const SETTLE_TIME: Duration = Duration::from_secs(3);
/// Seed of the command mix, fixed so that two runs send the same sequence.
const MIX_SEED: u64 = 0x5ca1_eb07;

/// `/scale` texts: six valid targets, then a target above the safe maximum
/// (synapse allows 2 to 12), one below the safe minimum (capsule allows 2
/// to 12), a letter O in place of a zero, and an unknown service.
const SCALE_TEXTS: [&str; 10] = [
    "synapse 4",
    "capsule 4",
    "nexus 4",
    "plato 3",
    "perception 5",
    "odyssey-core +1",
    "synapse 99",
    "capsule 1",
    "nexus O",
    "synapsis 4",
];
/// `/scalebot` texts.
const SCALEBOT_TEXTS: [&str; 2] = ["status", "status synapse"];

const USAGE: &str = "\
Usage: slack_burst [OPTIONS]

Posts signed Slack slash commands to a local `scalebot serve` at a fixed
rate and reports the response times. Exits with status 1 when any response
is not HTTP 200, takes longer than 3 seconds or never arrives, and when
any command fails because the bot reports Redis as unreachable.

Options:
  --rate N            requests per second (default 200)
  --seconds N         duration of the burst in seconds (default 30)
  --users N           distinct Slack users sending, 1 to 9999 (default 400)
  --max-in-flight N   maximum requests awaiting a response (default 2000)
  -h, --help          print this help";

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    /// Requests per second.
    rate: u32,
    /// Duration of the burst, in seconds.
    seconds: u32,
    /// Number of distinct Slack user ids, which the requests rotate through.
    users: u32,
    /// Maximum requests sent and still awaiting a response.
    max_in_flight: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate: 200,
            seconds: 30,
            users: 400,
            max_in_flight: 2000,
        }
    }
}

/// Parses the options. `Ok(None)` means that `--help` was given.
fn parse_options(mut arguments: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options::default();
    while let Some(argument) = arguments.next() {
        if argument == "-h" || argument == "--help" {
            return Ok(None);
        }
        let (name, inline_value) = match argument.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (argument.clone(), None),
        };
        let mut value = || {
            inline_value
                .clone()
                .or_else(|| arguments.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--rate" => options.rate = parse_positive(&name, &value()?)?,
            "--seconds" => options.seconds = parse_positive(&name, &value()?)?,
            "--users" => {
                options.users = parse_positive(&name, &value()?)?;
                if options.users > 9999 {
                    return Err(format!(
                        "--users {} is too large: user ids have four digits, so use at most 9999",
                        options.users
                    ));
                }
            }
            "--max-in-flight" => {
                let limit: u32 = parse_positive(&name, &value()?)?;
                options.max_in_flight = limit as usize;
            }
            other => return Err(format!("unknown option {other:?}; see --help")),
        }
    }
    Ok(Some(options))
}

fn parse_positive(name: &str, value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(format!(
            "invalid value {value:?} for {name}: expected a whole number above 0"
        )),
    }
}

/// The processes under load; all stop when this is dropped.
struct Environment {
    bot: ServeProcess,
    fake: FakeSlack,
    _kubesim: KubesimProcess,
    redis: RedisServer,
    _dir: TempDir,
}

/// Returns the Slack user id of load user `index` (from 0): `U0LOAD0001`
/// and up.
fn user_id(index: u32) -> String {
    format!("U0LOAD{:04}", index + 1)
}

/// Writes the test configuration with the load group as requesters and a
/// `slack` section in HTTP mode.
fn write_config(dir: &Path) -> PathBuf {
    let path = test_config(dir);
    let mut text = std::fs::read_to_string(&path).expect("read the test config");
    let requesters = "  requesters:\n";
    assert!(
        text.contains(requesters),
        "the test config has no requesters list"
    );
    text = text.replacen(
        requesters,
        &format!("{requesters}    - slack-group:{LOAD_GROUP}\n"),
        1,
    );
    text.push_str(&format!(
        "\nslack:\n  mode: http\n  channels: [{CHANNEL}]\n"
    ));
    std::fs::write(&path, text).expect("write the benchmark config");
    path
}

async fn start_environment(options: &Options) -> Environment {
    let dir = TempDir::new("slack-burst");
    let config = write_config(dir.path());
    let redis = RedisServer::start();
    let kubesim = KubesimProcess::start("butterfly");
    let fake = FakeSlack::start().await;
    let users: Vec<String> = (0..options.users).map(user_id).collect();
    let user_refs: Vec<&str> = users.iter().map(String::as_str).collect();
    fake.set_usergroup(LOAD_GROUP, &user_refs);

    let env = vec![
        ("SLACK_BOT_TOKEN", BOT_TOKEN.to_string()),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET.to_string()),
        ("SLACK_API_URL", fake.api_url()),
        // The default level of `scalebot serve`. The harness default adds
        // debug lines, which a production bot does not write.
        ("RUST_LOG", "info".to_string()),
    ];
    let redis_url = redis.url();
    let kubeconfig = kubesim.kubeconfig.clone();
    let bot = tokio::task::spawn_blocking(move || {
        ServeProcess::start(&config, &kubeconfig, &redis_url, &env)
    })
    .await
    .expect("start scalebot serve");
    Environment {
        bot,
        fake,
        _kubesim: kubesim,
        redis,
        _dir: dir,
    }
}

/// Polls `GET /readyz` until it returns 200 or [`READY_TIMEOUT`] passes.
async fn wait_until_ready(client: &reqwest::Client, bot: &ServeProcess) -> Result<(), String> {
    let url = format!("{}/readyz", bot.url);
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last_result = String::from("no response yet");
    while Instant::now() < deadline {
        match client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(response) if response.status() == reqwest::StatusCode::OK => return Ok(()),
            Ok(response) => last_result = format!("HTTP {}", response.status()),
            Err(error) => last_result = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "{url} did not return 200 within {READY_TIMEOUT:?}; last result: {last_result}"
    ))
}

/// One slash command of the mix.
#[derive(Debug, Clone, Copy)]
struct SlashCommand {
    command: &'static str,
    text: &'static str,
}

impl SlashCommand {
    /// Returns the command as a user types it, such as `/scale synapse 4`.
    fn label(self) -> String {
        format!("{} {}", self.command, self.text).trim().to_string()
    }
}

/// splitmix64: a small, fast generator with a fixed seed, so that the
/// command mix is the same in every run. Not for anything secret.
struct MixGenerator {
    state: u64,
}

impl MixGenerator {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Picks a command: 70% `/scale`, 20% `/scalebot status`, 10% `/capacity`.
    fn pick(&mut self) -> SlashCommand {
        let roll = self.next() % 100;
        let variant = self.next() as usize;
        if roll < 70 {
            SlashCommand {
                command: "/scale",
                text: SCALE_TEXTS[variant % SCALE_TEXTS.len()],
            }
        } else if roll < 90 {
            SlashCommand {
                command: "/scalebot",
                text: SCALEBOT_TEXTS[variant % SCALEBOT_TEXTS.len()],
            }
        } else {
            SlashCommand {
                command: "/capacity",
                text: "",
            }
        }
    }
}

/// Kind of response to a slash command, read from the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ResponseKind {
    /// Empty body, because the reply (a preview) is posted to the channel.
    Acknowledged,
    /// The bot's fallback after its 2-second wait for the engine.
    WorkingOnIt,
    /// The bot could not reach Redis in time, so the command failed.
    StoreUnavailable,
    /// A short reply in the body, shown only to the user.
    Ephemeral,
    /// A response that is not HTTP 200.
    HttpError,
}

impl ResponseKind {
    fn classify(status: u16, body: &str) -> Self {
        if status != 200 {
            ResponseKind::HttpError
        } else if body.trim().is_empty() {
            ResponseKind::Acknowledged
        } else if body.contains("Working on it") {
            ResponseKind::WorkingOnIt
        } else if is_store_unavailable(body) {
            ResponseKind::StoreUnavailable
        } else {
            ResponseKind::Ephemeral
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ResponseKind::Acknowledged => "empty 200 (preview posted to the channel)",
            ResponseKind::WorkingOnIt => "\"Working on it\" (no reply within 2 s)",
            ResponseKind::StoreUnavailable => "Redis unreachable or too slow",
            ResponseKind::Ephemeral => "ephemeral reply in the response",
            ResponseKind::HttpError => "HTTP status other than 200",
        }
    }
}

/// Outcome of one request.
struct Sample {
    command: SlashCommand,
    /// Scheduled send time, from the start of the burst.
    scheduled_at: Duration,
    /// Delay between the scheduled and the actual send.
    send_lag: Duration,
    outcome: Outcome,
}

enum Outcome {
    Responded {
        status: u16,
        latency: Duration,
        kind: ResponseKind,
        /// First 80 characters of the body, to count the kinds of replies.
        body_start: String,
    },
    /// No response: connection error, timeout, or no in-flight slot.
    Failed { reason: String },
}

/// Builds, signs and posts request `index`, and times the response.
async fn send_command(
    client: reqwest::Client,
    endpoint: String,
    response_url: String,
    index: u64,
    user: String,
    command: SlashCommand,
) -> Outcome {
    let trigger_id = format!("{}.{index}.slackburst", 900_000 + index);
    let body = fake_slack::slash_command_form(
        command.command,
        command.text,
        &user,
        CHANNEL,
        &trigger_id,
        &response_url,
    );
    let timestamp = fake_slack::now_timestamp();
    let signature = fake_slack::sign(SIGNING_SECRET, timestamp, &body);
    let started = Instant::now();
    let sent = client
        .post(endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .header(SIGNATURE_HEADER, signature)
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(error) => {
            return Outcome::Failed {
                reason: describe_error(&error),
            };
        }
    };
    let status = response.status().as_u16();
    let text = match response.text().await {
        Ok(text) => text,
        Err(error) => {
            return Outcome::Failed {
                reason: format!("reading the body failed: {}", describe_error(&error)),
            };
        }
    };
    let latency = started.elapsed();
    Outcome::Responded {
        status,
        latency,
        kind: ResponseKind::classify(status, &text),
        body_start: text.chars().take(80).collect(),
    }
}

/// Returns whether a reply reports that Redis is unreachable or too slow.
/// The Slack handler and the engine word this differently: "cannot reach"
/// and "slow to reach its coordination store (Redis)", and "Redis is
/// unavailable".
fn is_store_unavailable(text: &str) -> bool {
    text.contains("its coordination store (Redis)") || text.contains("Redis is unavailable")
}

fn describe_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("timed out after {REQUEST_TIMEOUT:?}")
    } else if error.is_connect() {
        "connection failed".to_string()
    } else {
        format!("request failed: {error}")
    }
}

/// What the scheduler observed besides the samples.
struct BurstRun {
    samples: Vec<Sample>,
    /// Time from the first scheduled send to the last send.
    sending: Duration,
    /// Time from the first scheduled send to the last outcome.
    elapsed: Duration,
    /// Largest number of requests awaiting a response at one time.
    peak_in_flight: usize,
    /// Sends that found all `max_in_flight` slots taken and had to wait.
    bound_hits: usize,
}

/// Sends `rate × seconds` requests, one every `1/rate` seconds, without
/// waiting for responses, and collects every outcome.
async fn run_burst(
    options: &Options,
    environment: &Environment,
    client: &reqwest::Client,
) -> BurstRun {
    let total = u64::from(options.rate) * u64::from(options.seconds);
    let endpoint = format!("{}/slack/commands", environment.bot.url);
    let in_flight = Arc::new(Semaphore::new(options.max_in_flight));
    let mut peak_in_flight = 0;
    let mut generator = MixGenerator { state: MIX_SEED };
    let mut bound_hits = 0;
    // Bounded by `total`, which the options fix before the run starts.
    let mut tasks: Vec<JoinHandle<Sample>> = Vec::with_capacity(total as usize);
    // The command and scheduled time of each task, for a task that fails.
    let mut planned: Vec<(SlashCommand, Duration)> = Vec::with_capacity(total as usize);
    let start = Instant::now();

    let mut last_send = start;
    for index in 0..total {
        let scheduled_at = Duration::from_secs_f64(index as f64 / f64::from(options.rate));
        let scheduled = start + scheduled_at;
        tokio::time::sleep_until(scheduled).await;
        let command = generator.pick();
        planned.push((command, scheduled_at));
        let user = user_id((index % u64::from(options.users)) as u32);

        let permit = match in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                bound_hits += 1;
                tokio::time::timeout(PERMIT_TIMEOUT, in_flight.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        };
        let Some(permit) = permit else {
            tasks.push(tokio::spawn(async move {
                Sample {
                    command,
                    scheduled_at,
                    send_lag: scheduled.elapsed(),
                    outcome: Outcome::Failed {
                        reason: format!("no in-flight slot free within {PERMIT_TIMEOUT:?}"),
                    },
                }
            }));
            continue;
        };
        let now_in_flight = options.max_in_flight - in_flight.available_permits();
        peak_in_flight = peak_in_flight.max(now_in_flight);

        last_send = Instant::now();
        let send_lag = last_send - scheduled;
        let response_url = environment.fake.response_url(&format!("load{index}"));
        let request = send_command(
            client.clone(),
            endpoint.clone(),
            response_url,
            index,
            user,
            command,
        );
        tasks.push(tokio::spawn(async move {
            let outcome = request.await;
            drop(permit);
            Sample {
                command,
                scheduled_at,
                send_lag,
                outcome,
            }
        }));
    }

    // Every request carries REQUEST_TIMEOUT, so the tasks end by then. The
    // extra time covers a starved runtime.
    let collect_deadline = Instant::now() + REQUEST_TIMEOUT + Duration::from_secs(20);
    let mut samples = Vec::with_capacity(tasks.len());
    for (task, (command, scheduled_at)) in tasks.into_iter().zip(planned) {
        let outcome = tokio::time::timeout_at(collect_deadline, task).await;
        let reason = match outcome {
            Ok(Ok(sample)) => {
                samples.push(sample);
                continue;
            }
            Ok(Err(error)) => format!("request task failed: {error}"),
            Err(_) => "no outcome before the collection deadline".to_string(),
        };
        samples.push(Sample {
            command,
            scheduled_at,
            send_lag: Duration::ZERO,
            outcome: Outcome::Failed { reason },
        });
    }
    BurstRun {
        samples,
        sending: last_send - start,
        elapsed: start.elapsed(),
        peak_in_flight,
        bound_hits,
    }
}

/// Returns the value at `fraction` (0 to 1) of sorted `values`, by the
/// nearest-rank method.
fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn milliseconds(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// Memory figures of a process from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// Resident set size now (`VmRSS`).
    resident: Option<u64>,
    /// Peak resident set size since start (`VmHWM`).
    peak_resident: Option<u64>,
}

fn read_memory(pid: u32) -> Memory {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Memory::default();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Memory {
        resident: field("VmRSS:"),
        peak_resident: field("VmHWM:"),
    }
}

fn mebibytes(kibibytes: Option<u64>) -> String {
    match kibibytes {
        Some(value) => format!("{:.1} MiB", value as f64 / 1024.0),
        None => "unknown".to_string(),
    }
}

/// Returns the user plus system CPU time of process `pid`, all threads
/// included, from `/proc/<pid>/stat`.
fn process_cpu(pid: u32, ticks_per_second: u64) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may contain spaces, so fields are
    // counted after its closing parenthesis: utime and stime are fields 14
    // and 15 of the line, the 12th and 13th after the parenthesis.
    let (_, fields) = stat.rsplit_once(')')?;
    let mut fields = fields.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64(
        (user + system) as f64 / ticks_per_second as f64,
    ))
}

/// Returns the clock ticks per second that `/proc` uses (`USER_HZ`).
fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        // USER_HZ is 100 on every mainstream Linux architecture.
        .unwrap_or(100)
}

/// Busy and total CPU time of the whole machine, in clock ticks, summed
/// over all cores, from the `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy)]
struct MachineCpu {
    busy: u64,
    total: u64,
}

fn machine_cpu() -> Option<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|value| value.parse().ok())
        .collect();
    // The fields are user, nice, system, idle, iowait, irq, softirq, steal,
    // guest and guest_nice. The guest times are already part of user and nice.
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some(MachineCpu {
        busy: total - idle,
        total,
    })
}

/// Returns the ids of the direct child processes of this process
/// (redis-server, kubesim and scalebot), from
/// `/proc/self/task/<thread>/children`.
fn child_processes() -> Vec<u32> {
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut children: Vec<u32> = threads
        .flatten()
        .filter_map(|thread| std::fs::read_to_string(thread.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    children.sort_unstable();
    children.dedup();
    children
}

/// CPU and memory figures read right before and right after the burst.
#[derive(Debug, Clone)]
struct Snapshot {
    bot_memory: Memory,
    /// CPU time of this process and of each child process, by
    /// `<name> (pid <pid>)`.
    process_cpu: BTreeMap<String, Duration>,
    machine: Option<MachineCpu>,
}

impl Snapshot {
    fn take(bot_pid: u32, ticks_per_second: u64) -> Self {
        let mut process_cpu_times = BTreeMap::new();
        let own_pid = std::process::id();
        for pid in std::iter::once(own_pid).chain(child_processes()) {
            let name = if pid == own_pid {
                "load generator".to_string()
            } else {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|name| name.trim().to_string())
                    .unwrap_or_else(|_| "unknown".to_string())
            };
            if let Some(cpu) = process_cpu(pid, ticks_per_second) {
                process_cpu_times.insert(format!("{name} (pid {pid})"), cpu);
            }
        }
        Self {
            bot_memory: read_memory(bot_pid),
            process_cpu: process_cpu_times,
            machine: machine_cpu(),
        }
    }
}

/// Reads the 1-, 5- and 15-minute load averages from `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Failure counts that decide the exit status.
struct Verdict {
    /// Commands without an HTTP 200 response within [`SLACK_DEADLINE`]:
    /// late, non-200 or no response at all.
    unanswered: usize,
    /// Responses that report Redis as unreachable or too slow.
    store_failures_in_response: usize,
}

/// Prints the results and returns the failure counts.
fn report(options: &Options, run: &BurstRun, before: &Snapshot, after: &Snapshot) -> Verdict {
    let mut latencies = Vec::with_capacity(run.samples.len());
    let mut send_lags = Vec::with_capacity(run.samples.len());
    let mut kinds: BTreeMap<ResponseKind, usize> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut body_starts: HashMap<String, usize> = HashMap::new();
    let mut over_deadline = 0;

    for sample in &run.samples {
        send_lags.push(sample.send_lag);
        match &sample.outcome {
            Outcome::Responded {
                status,
                latency,
                kind,
                body_start,
            } => {
                latencies.push(*latency);
                *kinds.entry(*kind).or_default() += 1;
                *statuses.entry(*status).or_default() += 1;
                *body_starts.entry(body_start.clone()).or_default() += 1;
                if *latency > SLACK_DEADLINE {
                    over_deadline += 1;
                }
            }
            Outcome::Failed { reason } => *failures.entry(reason.clone()).or_default() += 1,
        }
    }
    latencies.sort();
    send_lags.sort();

    let requests = run.samples.len();
    let responses = latencies.len();
    let non_200 = responses - statuses.get(&200).copied().unwrap_or(0);
    let store_unavailable = kinds
        .get(&ResponseKind::StoreUnavailable)
        .copied()
        .unwrap_or(0);
    let no_response: usize = failures.values().sum();
    let max_latency = latencies.last().copied().unwrap_or_default();

    println!();
    println!(
        "requests: {requests} at {} per second for {} s, from {} users",
        options.rate, options.seconds, options.users
    );
    println!(
        "responses: {responses}, of which HTTP 200: {}",
        responses - non_200
    );
    println!(
        "latency (send to full response): p50 {}, p90 {}, p99 {}, max {}",
        milliseconds(percentile(&latencies, 0.50)),
        milliseconds(percentile(&latencies, 0.90)),
        milliseconds(percentile(&latencies, 0.99)),
        milliseconds(max_latency),
    );
    println!("responses over {SLACK_DEADLINE:?}: {over_deadline}");
    println!("non-200 responses: {non_200}");
    println!("responses reporting Redis unreachable: {store_unavailable}");
    println!("requests without a response: {no_response}");
    for (reason, count) in &failures {
        println!("  {count} × {reason}");
    }
    println!("status codes: {statuses:?}");
    println!("response kinds:");
    for (kind, count) in &kinds {
        println!("  {count} × {}", kind.describe());
    }
    let mut common_bodies: Vec<(&String, &usize)> = body_starts.iter().collect();
    common_bodies.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    println!("most common response bodies (first 80 characters):");
    for (body, count) in common_bodies.iter().take(8) {
        println!("  {count} × {body:?}");
    }
    report_per_command(&run.samples);
    report_per_window(&run.samples);
    println!(
        "scheduler lag (actual minus scheduled send): p99 {}, max {}",
        milliseconds(percentile(&send_lags, 0.99)),
        milliseconds(send_lags.last().copied().unwrap_or_default()),
    );
    println!(
        "sending took {:.2} s (scheduled: {:.2} s)",
        run.sending.as_secs_f64(),
        (requests.saturating_sub(1)) as f64 / f64::from(options.rate),
    );
    println!(
        "in flight: peak {} of a bound of {}; sends that waited for a slot: {}",
        run.peak_in_flight, options.max_in_flight, run.bound_hits
    );
    println!(
        "bot memory: VmRSS {} before the burst, {} after; VmHWM (peak) {}",
        mebibytes(before.bot_memory.resident),
        mebibytes(after.bot_memory.resident),
        mebibytes(after.bot_memory.peak_resident),
    );
    println!(
        "CPU time used in the {:.1} s from the first send to the last response, per process:",
        run.elapsed.as_secs_f64()
    );
    for (process, used_after) in &after.process_cpu {
        let used_before = before.process_cpu.get(process).copied().unwrap_or_default();
        println!(
            "  {process}: {:.1} s",
            used_after.saturating_sub(used_before).as_secs_f64()
        );
    }
    if let (Some(first), Some(last)) = (before.machine, after.machine) {
        let cores = std::thread::available_parallelism().map_or(1, |count| count.get());
        let busy = (last.busy - first.busy) as f64 / (last.total - first.total).max(1) as f64;
        println!(
            "machine CPU busy during the burst: {:.0}% of {cores} cores (all processes, other work included)",
            busy * 100.0
        );
    }

    // A late non-200 response counts once.
    let late_or_failed = count_late_or_not_ok(&run.samples);
    Verdict {
        unanswered: late_or_failed + no_response,
        store_failures_in_response: store_unavailable,
    }
}

/// Counts the responses that took longer than [`SLACK_DEADLINE`] or are
/// not HTTP 200.
fn count_late_or_not_ok(samples: &[Sample]) -> usize {
    samples
        .iter()
        .filter(|sample| match sample.outcome {
            Outcome::Responded {
                status, latency, ..
            } => status != 200 || latency > SLACK_DEADLINE,
            Outcome::Failed { .. } => false,
        })
        .count()
}

/// Prints the latency of each command of the mix.
fn report_per_command(samples: &[Sample]) {
    let mut per_command: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for sample in samples {
        let latencies = per_command.entry(sample.command.label()).or_default();
        if let Outcome::Responded { latency, .. } = sample.outcome {
            latencies.push(latency);
        }
    }
    println!("latency per command (responses only):");
    println!(
        "  {:<28} {:>6} {:>10} {:>10} {:>10} {:>7}",
        "command",
        "count",
        "p50",
        "p99",
        "max",
        format!("over {SLACK_DEADLINE:?}")
    );
    for (label, latencies) in &mut per_command {
        latencies.sort();
        let over = latencies
            .iter()
            .filter(|latency| **latency > SLACK_DEADLINE)
            .count();
        println!(
            "  {:<28} {:>6} {:>10} {:>10} {:>10} {:>7}",
            label,
            latencies.len(),
            milliseconds(percentile(latencies, 0.50)),
            milliseconds(percentile(latencies, 0.99)),
            milliseconds(latencies.last().copied().unwrap_or_default()),
            over,
        );
    }
}

/// Length of the time windows in the latency-over-time table.
const WINDOW: Duration = Duration::from_secs(5);

/// Prints the latency of the requests scheduled in each [`WINDOW`] of the
/// burst, to show whether the bot falls behind as the burst goes on.
fn report_per_window(samples: &[Sample]) {
    let mut per_window: BTreeMap<u64, (Vec<Duration>, usize)> = BTreeMap::new();
    for sample in samples {
        let window = sample.scheduled_at.as_secs() / WINDOW.as_secs();
        let (latencies, failed) = per_window.entry(window).or_default();
        match sample.outcome {
            Outcome::Responded { latency, .. } => latencies.push(latency),
            Outcome::Failed { .. } => *failed += 1,
        }
    }
    println!("latency over time, by scheduled send time:");
    println!(
        "  {:<10} {:>6} {:>10} {:>10} {:>10} {:>7} {:>11}",
        "seconds",
        "count",
        "p50",
        "p99",
        "max",
        format!("over {SLACK_DEADLINE:?}"),
        "no response"
    );
    for (window, (latencies, failed)) in &mut per_window {
        latencies.sort();
        let first_second = *window * WINDOW.as_secs();
        let over = latencies
            .iter()
            .filter(|latency| **latency > SLACK_DEADLINE)
            .count();
        println!(
            "  {:<10} {:>6} {:>10} {:>10} {:>10} {:>7} {:>11}",
            format!("{first_second}-{}", first_second + WINDOW.as_secs()),
            latencies.len() + *failed,
            milliseconds(percentile(latencies, 0.50)),
            milliseconds(percentile(latencies, 0.99)),
            milliseconds(latencies.last().copied().unwrap_or_default()),
            over,
            failed,
        );
    }
}

/// Prints the number of pending requests stored in Redis: every valid
/// `/scale` of the burst leaves one until it expires, and each new `/scale`
/// lists them all.
async fn report_pending_requests(redis_url: &str) {
    let listed = tokio::time::timeout(Duration::from_secs(10), async {
        let coordinator = Coordinator::redis(redis_url, "scalebot:").await?;
        coordinator.list_pending().await
    })
    .await;
    match listed {
        Ok(Ok(pending)) => println!("pending requests stored at the end: {}", pending.len()),
        Ok(Err(error)) => println!("pending requests stored at the end: unknown ({error})"),
        Err(_) => {
            println!("pending requests stored at the end: unknown (Redis timed out after 10s)")
        }
    }
}

/// Prints the Web API calls the bot made to the fake Slack, per method,
/// and the calls that failed. Returns the number of
/// ephemeral messages that report Redis as unreachable: commands that were
/// acknowledged with "Working on it" and then failed.
fn report_slack_calls(fake: &FakeSlack) -> usize {
    let calls = fake.calls();
    let mut per_method: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for call in &calls {
        let entry = per_method.entry(call.method.clone()).or_default();
        entry.0 += 1;
        if !call.ok() {
            entry.1 += 1;
        }
    }
    println!(
        "Slack Web API calls recorded by the fake (at most {}):",
        fake_slack::MAX_RECORDED_CALLS
    );
    for (method, (count, failed)) in &per_method {
        println!("  {method}: {count}, failed {failed}");
    }
    println!("response_url posts: {}", fake.responses().len());
    let late_failures = fake
        .ephemeral()
        .iter()
        .filter(|message| is_store_unavailable(message.text.as_deref().unwrap_or_default()))
        .count();
    println!("ephemeral messages reporting Redis unreachable: {late_failures}");
    late_failures
}

/// Prints the warning and error lines of the bot's log, counted by message.
/// The harness keeps only the first lines of the log, so a long run shows
/// the start of the burst.
fn report_bot_log(bot: &ServeProcess) {
    let log = bot.log();
    let mut problems: BTreeMap<String, usize> = BTreeMap::new();
    let mut kept_lines = 0;
    for line in log.lines() {
        kept_lines += 1;
        // Text format: `<timestamp> <LEVEL> <target>: <message> <fields>`.
        let Some((_, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some((level, message)) = rest.split_once(' ') else {
            continue;
        };
        if level != "WARN" && level != "ERROR" {
            continue;
        }
        // Drop the request span (`request{request.id=… user=…}: `), which
        // differs on every line, so that equal messages are counted together.
        let message = match message.trim_start().strip_prefix("request{") {
            Some(span) => span.split_once("}: ").map_or(message, |(_, rest)| rest),
            None => message.trim_start(),
        };
        let key: String = format!("{level} {message}").chars().take(200).collect();
        *problems.entry(key).or_default() += 1;
    }
    let total: usize = problems.values().sum();
    println!("bot log: {total} warning or error lines in the {kept_lines} lines kept");
    let mut common: Vec<(&String, &usize)> = problems.iter().collect();
    common.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (message, count) in common.iter().take(10) {
        println!("  {count} × {message}");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("slack_burst: {message}");
            return ExitCode::from(2);
        }
    };
    let per_user = f64::from(options.rate) * FLOOD_WINDOW.as_secs_f64() / f64::from(options.users);
    if per_user > f64::from(FLOOD_LIMIT) {
        eprintln!(
            "slack_burst: warning: each user sends {per_user:.0} commands per {FLOOD_WINDOW:?}, above the engine's flood limit of {FLOOD_LIMIT}, so the bot drops some of them. Raise --users"
        );
    }

    println!("starting redis-server, kubesim, the fake Slack and scalebot serve (debug build)");
    let environment = start_environment(&options).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.max_in_flight)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("build the HTTP client");
    if let Err(message) = wait_until_ready(&client, &environment.bot).await {
        eprintln!(
            "slack_burst: {message}\nbot log:\n{}",
            environment.bot.log()
        );
        return ExitCode::FAILURE;
    }

    let pid = environment.bot.pid();
    let ticks = ticks_per_second();
    let before = Snapshot::take(pid, ticks);
    println!(
        "bot pid {pid} at {}; load average before: {}",
        environment.bot.url,
        load_average()
    );
    println!(
        "sending {} requests: {} per second for {} s",
        u64::from(options.rate) * u64::from(options.seconds),
        options.rate,
        options.seconds
    );
    let run = run_burst(&options, &environment, &client).await;
    let after = Snapshot::take(pid, ticks);
    println!("load average after: {}", load_average());

    let verdict = report(&options, &run, &before, &after);
    tokio::time::sleep(SETTLE_TIME).await;
    let late_failures = report_slack_calls(&environment.fake);
    report_pending_requests(&environment.redis.url()).await;
    report_bot_log(&environment.bot);

    println!();
    if verdict.unanswered == 0 {
        println!("response time: PASS: every command got HTTP 200 within {SLACK_DEADLINE:?}");
    } else {
        println!(
            "response time: FAIL: {} commands got no HTTP 200 within {SLACK_DEADLINE:?}",
            verdict.unanswered
        );
    }
    let store_failures = verdict.store_failures_in_response + late_failures;
    if store_failures == 0 {
        println!("command outcomes: PASS: no command failed because of Redis");
    } else {
        println!(
            "command outcomes: FAIL: {store_failures} commands failed because the bot reported Redis as unreachable ({} in the response, {late_failures} later)",
            verdict.store_failures_in_response
        );
    }
    if verdict.unanswered == 0 && store_failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
