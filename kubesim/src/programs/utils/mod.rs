//! The small utilities scripts combine with the tools: `echo`, `cat`,
//! `grep`, `jq`, `head`, `tail`, `wc`, `tee`, `printenv`, `env`,
//! `hostname`, `mkdir`, `rm`, `sleep`, `true` and `false`. Files live in the
//! per-pod filesystem of [`ProgramState`].

mod jq;
mod pattern;

use super::{Context, ExecOutput, ProgramState};
pub(crate) use pattern::Pattern;

/// Runs utility `name`; `None` when no such utility exists.
pub(crate) fn run(
    ctx: &Context,
    state: &mut ProgramState,
    name: &str,
    args: &[String],
    stdin: &mut Vec<u8>,
) -> Option<ExecOutput> {
    let output = match name {
        "echo" => echo(args),
        "cat" => cat(ctx, state, args, stdin),
        "grep" => grep(ctx, state, args, stdin),
        "jq" => jq::run(args, &std::mem::take(stdin)),
        "head" | "tail" => head_or_tail(name, args, &std::mem::take(stdin)),
        "wc" => wc(args, &std::mem::take(stdin)),
        "tee" => tee(ctx, state, args, stdin),
        "printenv" => printenv(ctx, args),
        "env" => printenv(ctx, &[]),
        "hostname" => ExecOutput::stdout(format!("{}\n", ctx.pod.name)),
        "rm" => {
            for path in args.iter().filter(|a| !a.starts_with('-')) {
                state.remove_file(ctx.pod, path);
            }
            ExecOutput::default()
        }
        // The simulated filesystem has no directories, and nothing in a
        // simulated pod runs in the background, so these succeed at once.
        "mkdir" | "sleep" | "true" | "sync" => ExecOutput::default(),
        "false" => ExecOutput::failure(1, ""),
        _ => return None,
    };
    Some(output)
}

fn echo(args: &[String]) -> ExecOutput {
    let (newline, words) = match args.first().map(String::as_str) {
        Some("-n") => (false, &args[1..]),
        _ => (true, args),
    };
    let mut text = words.join(" ");
    if newline {
        text.push('\n');
    }
    ExecOutput::stdout(text)
}

/// Reads the files named in `args` (or stdin when none) for `tool`.
fn read_inputs(
    ctx: &Context,
    state: &ProgramState,
    tool: &str,
    files: &[&String],
    stdin: &mut Vec<u8>,
) -> Result<Vec<u8>, ExecOutput> {
    if files.is_empty() || files.iter().all(|f| f.as_str() == "-") {
        return Ok(std::mem::take(stdin));
    }
    let mut data = Vec::new();
    for file in files {
        match state.read_file(ctx.pod, file) {
            Some(bytes) => data.extend_from_slice(bytes),
            None => {
                let mut output =
                    ExecOutput::failure(1, format!("{tool}: {file}: No such file or directory\n"));
                output.stdout = data;
                return Err(output);
            }
        }
    }
    Ok(data)
}

fn cat(ctx: &Context, state: &ProgramState, args: &[String], stdin: &mut Vec<u8>) -> ExecOutput {
    let files: Vec<&String> = args
        .iter()
        .filter(|a| !a.starts_with('-') || a.as_str() == "-")
        .collect();
    match read_inputs(ctx, state, "cat", &files, stdin) {
        Ok(data) => ExecOutput {
            stdout: data,
            ..ExecOutput::default()
        },
        Err(output) => output,
    }
}

/// Options of one grep run.
#[derive(Default)]
struct GrepOptions {
    ignore_case: bool,
    invert: bool,
    count: bool,
    quiet: bool,
    extended: bool,
    fixed: bool,
    pattern: String,
    files: Vec<String>,
}

const GREP_USAGE: &str = "Usage: grep [OPTION]... PATTERNS [FILE]...\n";

impl GrepOptions {
    fn parse(args: &[String]) -> Result<Self, ExecOutput> {
        let mut options = GrepOptions::default();
        let mut pattern = None;
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "-e" => pattern = iter.next().cloned(),
                flags if flags.starts_with('-') && flags.len() > 1 => {
                    for flag in flags[1..].chars() {
                        match flag {
                            'i' => options.ignore_case = true,
                            'v' => options.invert = true,
                            'c' => options.count = true,
                            'q' => options.quiet = true,
                            'E' => options.extended = true,
                            'F' => options.fixed = true,
                            other => {
                                return Err(ExecOutput::failure(
                                    2,
                                    format!("grep: invalid option -- '{other}'\n{GREP_USAGE}"),
                                ));
                            }
                        }
                    }
                }
                _ if pattern.is_none() => pattern = Some(arg.clone()),
                _ => options.files.push(arg.clone()),
            }
        }
        options.pattern = pattern.ok_or_else(|| ExecOutput::failure(2, GREP_USAGE))?;
        Ok(options)
    }

    fn matches(&self, compiled: &Pattern, line: &str) -> bool {
        let found = match (self.fixed, self.ignore_case) {
            (true, true) => line.to_lowercase().contains(&self.pattern.to_lowercase()),
            (true, false) => line.contains(&self.pattern),
            (false, _) => compiled.is_match(line),
        };
        found != self.invert
    }
}

/// `grep`: exit status 0 when a line was selected, 1 when none, 2 on error.
fn grep(ctx: &Context, state: &ProgramState, args: &[String], stdin: &mut Vec<u8>) -> ExecOutput {
    let options = match GrepOptions::parse(args) {
        Ok(options) => options,
        Err(output) => return output,
    };
    let files: Vec<&String> = options.files.iter().collect();
    let input = match read_inputs(ctx, state, "grep", &files, stdin) {
        Ok(input) => input,
        Err(mut output) => {
            output.exit_code = 2;
            output.stdout.clear();
            return output;
        }
    };
    let compiled = Pattern::new(&options.pattern, options.extended, options.ignore_case);
    let text = String::from_utf8_lossy(&input);
    let selected: Vec<&str> = text
        .lines()
        .filter(|line| options.matches(&compiled, line))
        .collect();
    let exit_code = if selected.is_empty() { 1 } else { 0 };
    let stdout = if options.quiet {
        String::new()
    } else if options.count {
        format!("{}\n", selected.len())
    } else {
        selected.iter().map(|line| format!("{line}\n")).collect()
    };
    ExecOutput {
        stdout: stdout.into_bytes(),
        stderr: Vec::new(),
        exit_code,
    }
}

fn head_or_tail(tool: &str, args: &[String], input: &[u8]) -> ExecOutput {
    let mut lines = 10usize;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = match arg.as_str() {
            "-n" => iter.next().map(String::as_str),
            other if other.starts_with("-n") => Some(&other[2..]),
            other if other.starts_with('-') => Some(&other[1..]),
            _ => continue,
        };
        match value.and_then(|v| v.parse().ok()) {
            Some(n) => lines = n,
            None => return ExecOutput::failure(1, format!("{tool}: invalid number of lines\n")),
        }
    }
    let text = String::from_utf8_lossy(input);
    let all: Vec<&str> = text.lines().collect();
    let chosen = if tool == "head" {
        &all[..lines.min(all.len())]
    } else {
        &all[all.len().saturating_sub(lines)..]
    };
    ExecOutput::stdout(
        chosen
            .iter()
            .map(|line| format!("{line}\n"))
            .collect::<String>(),
    )
}

fn wc(args: &[String], input: &[u8]) -> ExecOutput {
    let text = String::from_utf8_lossy(input);
    let lines = text.matches('\n').count();
    let words = text.split_whitespace().count();
    let bytes = input.len();
    let counts: Vec<usize> = match args.first().map(String::as_str) {
        Some("-l") => vec![lines],
        Some("-w") => vec![words],
        Some("-c") => vec![bytes],
        _ => vec![lines, words, bytes],
    };
    let text: Vec<String> = counts.iter().map(usize::to_string).collect();
    ExecOutput::stdout(format!("{}\n", text.join(" ")))
}

fn tee(
    ctx: &Context,
    state: &mut ProgramState,
    args: &[String],
    stdin: &mut Vec<u8>,
) -> ExecOutput {
    let append = args.iter().any(|a| a == "-a");
    let input = std::mem::take(stdin);
    for path in args.iter().filter(|a| !a.starts_with('-')) {
        state.write_file(ctx.pod, path, &input, append);
    }
    ExecOutput {
        stdout: input,
        ..ExecOutput::default()
    }
}

fn printenv(ctx: &Context, args: &[String]) -> ExecOutput {
    let container = ctx.pod.container(ctx.container);
    let env: Vec<(String, String)> = container
        .and_then(|c| c["env"].as_array())
        .map(|list| {
            list.iter()
                .filter_map(|e| {
                    Some((
                        e["name"].as_str()?.to_string(),
                        e["value"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut all = vec![("HOSTNAME".to_string(), ctx.pod.name.clone())];
    all.extend(env);
    if args.is_empty() {
        let text: String = all.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        return ExecOutput::stdout(text);
    }
    let mut text = String::new();
    let mut missing = false;
    for name in args {
        match all.iter().find(|(k, _)| k == name) {
            Some((_, value)) => text.push_str(&format!("{value}\n")),
            None => missing = true,
        }
    }
    ExecOutput {
        stdout: text.into_bytes(),
        stderr: Vec::new(),
        exit_code: i32::from(missing),
    }
}
