//! Runs an exec argv the way a container runtime and `sh` would: `sh -c`
//! and `bash -c` scripts are parsed and run command by command, any other
//! argv runs directly.

mod parse;

use self::parse::{Command, Connector, Pipeline, Sink};
use super::{Context, ExecOutput, ProgramState, dispatch};

/// Exit status of a command that was not found, as `sh` reports it.
const NOT_FOUND: i32 = 127;
/// Exit status of `sh` for a syntax error.
const SYNTAX_ERROR: i32 = 2;

fn is_shell(program: &str) -> bool {
    matches!(
        program.rsplit('/').next(),
        Some("sh" | "bash" | "ash" | "dash")
    )
}

/// Runs `argv` in the pod of `ctx` with `stdin` as standard input.
pub(crate) fn run(
    ctx: &Context,
    state: &mut ProgramState,
    argv: &[String],
    stdin: &[u8],
) -> ExecOutput {
    let program = argv.first().map(String::as_str).unwrap_or("");
    if is_shell(program) {
        return match (argv.get(1).map(String::as_str), argv.get(2)) {
            (Some("-c"), Some(script)) => run_script(ctx, state, script, stdin),
            (Some("-c"), None) => ExecOutput::failure(
                SYNTAX_ERROR,
                format!("{program}: 0: -c requires an argument\n"),
            ),
            // `sh` without arguments reads the script from stdin, as with
            // `kubectl exec -i pod -- sh < script.sh`.
            (None, _) => run_script(ctx, state, &String::from_utf8_lossy(stdin), &[]),
            (Some(file), _) => ExecOutput::failure(
                NOT_FOUND,
                format!("{program}: 0: cannot open {file}: No such file\n"),
            ),
        };
    }
    let mut input = stdin.to_vec();
    dispatch(ctx, state, argv, &mut input).unwrap_or_else(|| {
        // The message containerd returns through kubectl when the
        // executable does not exist in the image.
        ExecOutput::failure(
            NOT_FOUND,
            format!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH: unknown\n"
            ),
        )
    })
}

/// Runs a script as `sh -c` does and returns the combined output and the
/// exit status of the last pipeline that ran.
fn run_script(ctx: &Context, state: &mut ProgramState, script: &str, stdin: &[u8]) -> ExecOutput {
    let mut last_status = 0;
    let lookup = |name: &str| match name {
        "HOSTNAME" => ctx.pod.name.clone(),
        "?" => "0".to_string(),
        _ => ctx.pod.env(ctx.container, name).unwrap_or_default(),
    };
    let pipelines = match parse::parse(script, &lookup) {
        Ok(pipelines) => pipelines,
        Err(message) => return ExecOutput::failure(SYNTAX_ERROR, format!("sh: 1: {message}\n")),
    };
    let mut shared_stdin = stdin.to_vec();
    let mut output = ExecOutput::default();
    for pipeline in &pipelines {
        let skip = match pipeline.connector {
            Connector::Always => false,
            Connector::IfSucceeded => last_status != 0,
            Connector::IfFailed => last_status == 0,
        };
        if skip {
            continue;
        }
        if let [command] = pipeline.commands.as_slice()
            && command.argv.first().map(String::as_str) == Some("exit")
        {
            match exit_status(&command.argv[1..], last_status) {
                Ok(status) => output.exit_code = status,
                Err(message) => {
                    output.stderr.extend(message.into_bytes());
                    output.exit_code = SYNTAX_ERROR;
                }
            }
            return output;
        }
        let result = run_pipeline(ctx, state, pipeline, &mut shared_stdin);
        output.stdout.extend(result.stdout);
        output.stderr.extend(result.stderr);
        last_status = result.exit_code;
    }
    output.exit_code = last_status;
    output
}

/// Status of the `exit` builtin with `args`: the argument modulo 256, or
/// the last pipeline's status without one. The error is what `dash` prints
/// for an argument that is not a non-negative number.
// NOTE: only an `exit` that is a pipeline of its own ends the script. In a
// longer pipeline `sh` runs it in a subshell, but here it is not found.
fn exit_status(args: &[String], last_status: i32) -> Result<i32, String> {
    let Some(arg) = args.first() else {
        return Ok(last_status);
    };
    match arg.parse::<u64>() {
        Ok(number) => Ok((number % 256) as i32),
        Err(_) => Err(format!("sh: 1: exit: Illegal number: {arg}\n")),
    }
}

/// Runs the commands of a pipeline, each reading the previous one's stdout.
/// The first command reads the script's stdin; a command that consumes it
/// leaves it empty for later ones, like a shared file descriptor.
fn run_pipeline(
    ctx: &Context,
    state: &mut ProgramState,
    pipeline: &Pipeline,
    shared_stdin: &mut Vec<u8>,
) -> ExecOutput {
    let mut stderr = Vec::new();
    let mut piped: Option<Vec<u8>> = None;
    let mut exit_code = 0;
    for command in &pipeline.commands {
        let mut own_stdin = piped.take();
        let stdin = own_stdin.as_mut().unwrap_or(shared_stdin);
        let result = run_command(ctx, state, command, stdin);
        stderr.extend(result.stderr);
        piped = Some(result.stdout);
        exit_code = result.exit_code;
    }
    ExecOutput {
        stdout: piped.unwrap_or_default(),
        stderr,
        exit_code,
    }
}

/// Runs one command with its redirections applied.
fn run_command(
    ctx: &Context,
    state: &mut ProgramState,
    command: &Command,
    stdin: &mut Vec<u8>,
) -> ExecOutput {
    let mut file_input;
    let stdin = match &command.stdin_file {
        Some(path) => match state.read_file(ctx.pod, path) {
            Some(bytes) => {
                file_input = bytes.to_vec();
                &mut file_input
            }
            None => {
                return ExecOutput::failure(
                    SYNTAX_ERROR,
                    format!("sh: 1: cannot open {path}: No such file\n"),
                );
            }
        },
        None => stdin,
    };
    let mut result = if command.argv.is_empty() {
        ExecOutput::default()
    } else {
        dispatch(ctx, state, &command.argv, stdin).unwrap_or_else(|| {
            ExecOutput::failure(
                NOT_FOUND,
                format!("sh: 1: {}: not found\n", command.argv[0]),
            )
        })
    };

    // `2>&1` merges stderr into stdout before stdout's own redirection is
    // applied, so `cmd > file 2>&1` writes both streams to the file.
    // NOTE: the order of the redirections is ignored, so `cmd 2>&1 > file`
    // also writes stderr to the file, unlike `sh`.
    let mut stdout = std::mem::take(&mut result.stdout);
    let mut stderr = std::mem::take(&mut result.stderr);
    if command.stderr == Sink::OtherStream {
        stdout.append(&mut stderr);
    } else if command.stdout == Sink::OtherStream {
        stderr.append(&mut stdout);
    }
    for (sink, bytes, inherited) in [
        (&command.stdout, stdout, &mut result.stdout),
        (&command.stderr, stderr, &mut result.stderr),
    ] {
        match sink {
            Sink::Inherit | Sink::OtherStream => inherited.extend(bytes),
            Sink::File { path, append } => state.write_file(ctx.pod, path, &bytes, *append),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use crate::programs::Programs;
    use crate::programs::testing::{cluster, pod, sh};

    #[test]
    fn exit_builtin_sets_status_and_stops_script() {
        let cluster = cluster();
        pod("plato-5c8d7f9b6-q4w7z", "plato", "10.244.1.30").create(&cluster);
        let programs = Programs::default();
        let run = |script: &str| sh(&programs, &cluster, "plato-5c8d7f9b6-q4w7z", script, "");

        assert_eq!(run("exit 3").exit_code, 3);
        assert_eq!(
            run("exit 259").exit_code,
            3,
            "the status is taken modulo 256"
        );
        assert_eq!(run("false; exit").exit_code, 1, "bare exit keeps $?");

        let stopped = run("echo before; exit 4; echo after");
        assert_eq!(stopped.exit_code, 4);
        assert_eq!(stopped.stdout_text(), "before\n", "nothing runs after exit");

        let invalid = run("exit x");
        assert_eq!(invalid.exit_code, 2);
        assert_eq!(invalid.stderr_text(), "sh: 1: exit: Illegal number: x\n");
    }
}
