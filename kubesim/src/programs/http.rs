//! HTTP inside pods: the Spring Boot actuator of Deployment pods on port
//! 8080, reached by `curl` in a pod or through the API server's pod proxy.
//! Cassandra, Kafka and Redis pods serve no HTTP.

use super::pods::{self, PodView, Software};
use super::{Context, ExecOutput};

/// Port the Spring Boot services listen on.
pub(crate) const SPRING_PORT: u16 = 8080;

/// Health components each service reports besides the standard ones; an
/// app in `never_ready_apps` reports these DOWN.
pub(crate) fn dependencies(app: &str) -> &'static [&'static str] {
    match app {
        "capsule" => &["cassandra"],
        "synapse" => &["redis"],
        "perception" => &["kafka"],
        "plato" => &["db"],
        _ => &[],
    }
}

/// Returns whether the fault plan keeps pods of `app` from ever becoming
/// Ready.
pub(crate) fn is_faulty(ctx: &Context, app: &str) -> bool {
    ctx.cluster
        .faults
        .with(|plan| plan.never_ready_apps.contains(app))
}

enum Response {
    Http { status: u16, body: String },
    ConnectionRefused,
}

/// Serves `GET path` on `port` of `pod`.
fn respond(ctx: &Context, pod: &PodView, port: u16, path: &str) -> Response {
    if pod.software() != Software::SpringBoot || port != SPRING_PORT || !pod.is_running() {
        return Response::ConnectionRefused;
    }
    let path = path.split('?').next().unwrap_or("");
    let (status, body) = match path.trim_end_matches('/') {
        "/actuator/health" => health(ctx, pod),
        "/actuator/health/liveness" => (200, r#"{"status":"UP"}"#.to_string()),
        "/actuator/health/readiness" => {
            if is_up(ctx, pod) {
                (200, r#"{"status":"UP"}"#.to_string())
            } else {
                (503, r#"{"status":"OUT_OF_SERVICE"}"#.to_string())
            }
        }
        _ => (404, not_found_body(ctx, path)),
    };
    Response::Http { status, body }
}

fn is_up(ctx: &Context, pod: &PodView) -> bool {
    pod.ready && !is_faulty(ctx, &pod.app)
}

/// Builds the body of Spring Boot's `/actuator/health` with details hidden,
/// and its status code: 200 when UP, 503 otherwise. Components are sorted by
/// name and `status` comes first, as Spring Boot writes them.
fn health(ctx: &Context, pod: &PodView) -> (u16, String) {
    let faulty = is_faulty(ctx, &pod.app);
    let up = pod.ready && !faulty;
    let mut components: Vec<(&str, &str)> = vec![
        ("diskSpace", "UP"),
        ("livenessState", "UP"),
        ("ping", "UP"),
        ("readinessState", if up { "UP" } else { "OUT_OF_SERVICE" }),
    ];
    for dependency in dependencies(&pod.app) {
        components.push((dependency, if faulty { "DOWN" } else { "UP" }));
    }
    components.sort();
    let components: Vec<String> = components
        .iter()
        .map(|(name, status)| format!(r#""{name}":{{"status":"{status}"}}"#))
        .collect();
    let status = if up { "UP" } else { "DOWN" };
    let body = format!(
        r#"{{"status":"{status}","components":{{{}}},"groups":["liveness","readiness"]}}"#,
        components.join(",")
    );
    (if up { 200 } else { 503 }, body)
}

fn not_found_body(ctx: &Context, path: &str) -> String {
    format!(
        r#"{{"timestamp":"{}","status":404,"error":"Not Found","path":"{path}"}}"#,
        ctx.now.format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
    )
}

/// Serves a GET through the pod proxy
/// (`/api/v1/namespaces/NS/pods/POD:PORT/proxy/PATH`).
pub(crate) fn proxy_get(ctx: &Context, port: u16, path: &str) -> (u16, String) {
    match respond(ctx, ctx.pod, port, path) {
        Response::Http { status, body } => (status, body),
        Response::ConnectionRefused => (
            503,
            format!(
                "error trying to reach service: dial tcp {}:{port}: connect: connection refused",
                ctx.pod.ip.as_deref().unwrap_or("")
            ),
        ),
    }
}

/// Options of one curl run.
#[derive(Default)]
struct CurlOptions {
    silent: bool,
    show_error: bool,
    fail: bool,
    include: bool,
    discard_body: bool,
    write_out: Option<String>,
    url: Option<String>,
}

fn parse_curl(args: &[String]) -> Result<CurlOptions, ExecOutput> {
    let mut options = CurlOptions::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--silent" => options.silent = true,
            "--show-error" => options.show_error = true,
            "--fail" => options.fail = true,
            "--include" => options.include = true,
            "-o" | "--output" => {
                options.discard_body = iter.next().is_some_and(|f| f == "/dev/null")
            }
            "-w" | "--write-out" => options.write_out = iter.next().cloned(),
            "-m" | "--max-time" | "--connect-timeout" | "-H" | "--header" | "-X" | "--request" => {
                iter.next();
            }
            "--location" | "--insecure" => {}
            flags if flags.starts_with('-') && !flags.starts_with("--") && flags.len() > 1 => {
                for flag in flags[1..].chars() {
                    match flag {
                        's' => options.silent = true,
                        'S' => options.show_error = true,
                        'f' => options.fail = true,
                        'i' => options.include = true,
                        'L' | 'k' | 'v' => {}
                        other => {
                            return Err(ExecOutput::failure(
                                2,
                                format!(
                                    "curl: option -{other}: is unknown\ncurl: try 'curl --help' for more information\n"
                                ),
                            ));
                        }
                    }
                }
            }
            other if other.starts_with("--") => {
                return Err(ExecOutput::failure(
                    2,
                    format!(
                        "curl: option {other}: is unknown\ncurl: try 'curl --help' for more information\n"
                    ),
                ));
            }
            url => options.url = Some(url.to_string()),
        }
    }
    Ok(options)
}

/// Splits `http://host:port/path` (scheme and port optional) into parts.
fn split_url(url: &str) -> (String, u16, String) {
    let (rest, default_port) = if let Some(rest) = url.strip_prefix("https://") {
        (rest, 443)
    } else {
        (url.strip_prefix("http://").unwrap_or(url), 80)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(0)),
        None => (authority, default_port),
    };
    (host.to_string(), port, path)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Runs `curl ARGS` in the pod of `ctx`, with curl's exit codes: 6 when the
/// host does not resolve, 7 when the connection is refused, 22 for an HTTP
/// error with `--fail`.
pub(crate) fn curl(ctx: &Context, args: &[String]) -> ExecOutput {
    let options = match parse_curl(args) {
        Ok(options) => options,
        Err(usage) => return usage,
    };
    let Some(url) = options.url.as_deref() else {
        return ExecOutput::failure(
            2,
            "curl: no URL specified\ncurl: try 'curl --help' for more information\n",
        );
    };
    let report_errors = !options.silent || options.show_error;
    let error = |code: i32, message: String| {
        ExecOutput::failure(
            code,
            if report_errors {
                format!("curl: ({code}) {message}\n")
            } else {
                String::new()
            },
        )
    };
    let (host, port, path) = split_url(url);
    let target = if host == "0.0.0.0" {
        Some(ctx.pod.clone())
    } else {
        pods::resolve_host(ctx.cluster, ctx.namespace, ctx.pod, &host)
    };
    let Some(target) = target else {
        return error(6, format!("Could not resolve host: {host}"));
    };
    let (status, body) = match respond(ctx, &target, port, &path) {
        Response::Http { status, body } => (status, body),
        Response::ConnectionRefused => {
            return error(
                7,
                format!(
                    "Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server"
                ),
            );
        }
    };
    if options.fail && status >= 400 {
        return error(22, format!("The requested URL returned error: {status}"));
    }
    ExecOutput::stdout(render_response(&options, status, &body))
}

/// Renders what curl prints for a response: headers with `-i`, the body unless
/// `-o /dev/null`, then the `-w` format.
fn render_response(options: &CurlOptions, status: u16, body: &str) -> String {
    let mut stdout = String::new();
    if options.include {
        stdout.push_str(&format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/vnd.spring-boot.actuator.v3+json\r\nContent-Length: {}\r\n\r\n",
            reason(status),
            body.len()
        ));
    }
    if !options.discard_body {
        stdout.push_str(body);
    }
    if let Some(format) = &options.write_out {
        stdout.push_str(
            &format
                .replace("%{http_code}", &status.to_string())
                .replace("\\n", "\n"),
        );
    }
    stdout
}

#[cfg(test)]
mod tests {
    use crate::programs::Programs;
    use crate::programs::testing::{NAMESPACE, cluster, exec, pod, sh, statefulset, stdout_of};

    #[test]
    fn curl_health_of_ready_pod() {
        let cluster = cluster();
        pod("synapse-7d9f8b6c5-x2x9k", "synapse", "10.244.3.21").create(&cluster);
        let programs = Programs::default();

        let body = stdout_of(exec(
            &programs,
            &cluster,
            "synapse-7d9f8b6c5-x2x9k",
            &["curl", "-s", "localhost:8080/actuator/health"],
        ));
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["status"], "UP");
        assert_eq!(parsed["components"]["redis"]["status"], "UP");
        assert!(body.starts_with(r#"{"status":"UP","#), "{body}");
    }

    #[test]
    fn health_is_down_for_faulty_app() {
        let cluster = cluster();
        pod("capsule-5c6d7e8f9-abcde", "capsule", "10.244.3.30")
            .not_ready(60)
            .create(&cluster);
        cluster
            .faults
            .with(|plan| plan.never_ready_apps.insert("capsule".to_string()));
        let programs = Programs::default();

        let (status, body) = programs.proxy_get(
            &cluster,
            NAMESPACE,
            "capsule-5c6d7e8f9-abcde",
            8080,
            "/actuator/health",
        );
        assert_eq!(status, 503);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["status"], "DOWN");
        assert_eq!(parsed["components"]["cassandra"]["status"], "DOWN");

        let output = exec(
            &programs,
            &cluster,
            "capsule-5c6d7e8f9-abcde",
            &["curl", "-sf", "http://localhost:8080/actuator/health"],
        );
        assert_eq!(output.exit_code, 22);
        assert!(output.stdout.is_empty());
    }

    #[test]
    fn proxy_errors() {
        let cluster = cluster();
        pod("nexus-6b7c8d9e0-fghij", "nexus", "10.244.3.40").create(&cluster);
        statefulset(&cluster, "redis", 1, 5);
        let programs = Programs::default();

        let (status, body) =
            programs.proxy_get(&cluster, NAMESPACE, "nexus-6b7c8d9e0-fghij", 8080, "/nope");
        assert_eq!(status, 404);
        assert!(body.contains(r#""status":404"#));
        let (status, body) = programs.proxy_get(
            &cluster,
            NAMESPACE,
            "nexus-6b7c8d9e0-fghij",
            9090,
            "/metrics",
        );
        assert_eq!(status, 503);
        assert_eq!(
            body,
            "error trying to reach service: dial tcp 10.244.3.40:9090: connect: connection refused"
        );
        let (status, _) =
            programs.proxy_get(&cluster, NAMESPACE, "redis-0", 8080, "/actuator/health");
        assert_eq!(status, 503);
        let (status, _) =
            programs.proxy_get(&cluster, NAMESPACE, "missing", 8080, "/actuator/health");
        assert_eq!(status, 404);
    }

    #[test]
    fn curl_connection_errors_and_write_out() {
        let cluster = cluster();
        pod("plato-1a2b3c4d5-klmno", "plato", "10.244.3.50").create(&cluster);
        let programs = Programs::default();

        let refused = exec(
            &programs,
            &cluster,
            "plato-1a2b3c4d5-klmno",
            &["curl", "-sS", "localhost:9999/"],
        );
        assert_eq!(refused.exit_code, 7);
        assert!(
            refused
                .stderr_text()
                .starts_with("curl: (7) Failed to connect to localhost port 9999")
        );
        let unknown = exec(
            &programs,
            &cluster,
            "plato-1a2b3c4d5-klmno",
            &["curl", "-s", "http://nowhere:8080/"],
        );
        assert_eq!(unknown.exit_code, 6);
        assert!(unknown.stderr.is_empty());
        let code = stdout_of(sh(
            &programs,
            &cluster,
            "plato-1a2b3c4d5-klmno",
            "curl -s -o /dev/null -w '%{http_code}' localhost:8080/actuator/health",
            "",
        ));
        assert_eq!(code, "200");
    }

    #[test]
    fn curl_piped_to_jq() {
        let cluster = cluster();
        pod("perception-9f8e7d6c5-pqrst", "perception", "10.244.3.60").create(&cluster);
        let programs = Programs::default();

        let status = stdout_of(sh(
            &programs,
            &cluster,
            "perception-9f8e7d6c5-pqrst",
            "curl -s localhost:8080/actuator/health | jq -r .status",
            "",
        ));
        assert_eq!(status, "UP\n");
    }
}
