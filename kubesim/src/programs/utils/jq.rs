//! `jq` with the filters health checks and scripts use: `.`, field and
//! index paths (`.status`, `.components.redis.status`, `.items[0]`,
//! `."key"`), iteration (`.[]`, `.items[]`), `keys`, `length` and pipes
//! between them. Options: `-r` (raw strings), `-c` (compact) and `-e`
//! (exit status from the last output).

use serde_json::Value;

use crate::programs::ExecOutput;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Iterate,
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Path(Vec<Step>),
    Keys,
    Length,
}

/// Options of one jq run.
struct JqOptions {
    raw: bool,
    compact: bool,
    exit_status: bool,
    filter: String,
}

impl JqOptions {
    fn parse(args: &[String]) -> Result<Self, ExecOutput> {
        let mut options = JqOptions {
            raw: false,
            compact: false,
            exit_status: false,
            filter: ".".to_string(),
        };
        let mut filter = None;
        for arg in args {
            match arg.as_str() {
                "-r" | "--raw-output" => options.raw = true,
                "-c" | "--compact-output" => options.compact = true,
                "-e" | "--exit-status" => options.exit_status = true,
                flags
                    if flags.starts_with('-')
                        && flags.len() > 1
                        && flags[1..].chars().all(|c| "rce".contains(c)) =>
                {
                    options.raw |= flags.contains('r');
                    options.compact |= flags.contains('c');
                    options.exit_status |= flags.contains('e');
                }
                other if filter.is_none() => filter = Some(other.to_string()),
                other => {
                    return Err(ExecOutput::failure(
                        2,
                        format!("jq: error: Could not open {other}: No such file or directory\n"),
                    ));
                }
            }
        }
        if let Some(filter) = filter {
            options.filter = filter;
        }
        Ok(options)
    }
}

/// Runs `jq ARGS` over `input`, which may hold several JSON documents.
pub(crate) fn run(args: &[String], input: &[u8]) -> ExecOutput {
    let options = match JqOptions::parse(args) {
        Ok(options) => options,
        Err(output) => return output,
    };
    let (raw, compact) = (options.raw, options.compact);
    let stages = match parse_filter(&options.filter) {
        Ok(stages) => stages,
        Err(message) => {
            return ExecOutput::failure(3, format!("jq: error: {message}\njq: 1 compile error\n"));
        }
    };

    let mut stdout = String::new();
    let mut last = Value::Null;
    for (number, document) in serde_json::Deserializer::from_slice(input)
        .into_iter::<Value>()
        .enumerate()
    {
        let document = match document {
            Ok(document) => document,
            Err(e) => {
                return ExecOutput::failure(
                    2,
                    format!("jq: error (at <stdin>:{}): {e}\n", number + 1),
                );
            }
        };
        let results = match apply(&stages, document) {
            Ok(results) => results,
            Err(message) => {
                let mut output = ExecOutput::failure(
                    5,
                    format!("jq: error (at <stdin>:{}): {message}\n", number + 1),
                );
                output.stdout = stdout.into_bytes();
                return output;
            }
        };
        for value in results {
            stdout.push_str(&render(&value, raw, compact));
            stdout.push('\n');
            last = value;
        }
    }
    let failed = options.exit_status && matches!(last, Value::Null | Value::Bool(false));
    ExecOutput {
        stdout: stdout.into_bytes(),
        stderr: Vec::new(),
        exit_code: if failed { 1 } else { 0 },
    }
}

fn render(value: &Value, raw: bool, compact: bool) -> String {
    match value {
        Value::String(text) if raw => text.clone(),
        _ if compact => value.to_string(),
        _ => serde_json::to_string_pretty(value).unwrap_or_default(),
    }
}

fn parse_filter(filter: &str) -> Result<Vec<Stage>, String> {
    filter
        .split('|')
        .map(str::trim)
        .map(|stage| match stage {
            "keys" => Ok(Stage::Keys),
            "length" => Ok(Stage::Length),
            path if path.starts_with('.') => parse_path(path).map(Stage::Path),
            other => Err(format!(
                "{other}/0 is not defined or is not supported by this jq"
            )),
        })
        .collect()
}

fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                if chars.get(i) == Some(&'"') {
                    let end = chars[i + 1..]
                        .iter()
                        .position(|c| *c == '"')
                        .ok_or("unterminated string")?;
                    steps.push(Step::Field(chars[i + 1..i + 1 + end].iter().collect()));
                    i += end + 2;
                    continue;
                }
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '_' || **c == '-')
                    .count();
                if len > 0 {
                    steps.push(Step::Field(chars[i..i + len].iter().collect()));
                    i += len;
                }
            }
            '[' => {
                let end = chars[i..]
                    .iter()
                    .position(|c| *c == ']')
                    .ok_or("syntax error: missing ]")?;
                let inner: String = chars[i + 1..i + end].iter().collect();
                let inner = inner.trim();
                if inner.is_empty() {
                    steps.push(Step::Iterate);
                } else if let Some(quoted) =
                    inner.strip_prefix('"').and_then(|s| s.strip_suffix('"'))
                {
                    steps.push(Step::Field(quoted.to_string()));
                } else {
                    let index = inner
                        .parse()
                        .map_err(|_| format!("syntax error: invalid index [{inner}]"))?;
                    steps.push(Step::Index(index));
                }
                i += end + 1;
            }
            '?' => i += 1,
            other => return Err(format!("syntax error: unexpected '{other}' in {path}")),
        }
    }
    Ok(steps)
}

fn apply(stages: &[Stage], document: Value) -> Result<Vec<Value>, String> {
    let mut values = vec![document];
    for stage in stages {
        let mut next = Vec::new();
        for value in values {
            match stage {
                Stage::Keys => next.push(keys(&value)?),
                Stage::Length => next.push(length(&value)?),
                Stage::Path(steps) => next.extend(walk(steps, value)?),
            }
        }
        values = next;
    }
    Ok(values)
}

fn walk(steps: &[Step], value: Value) -> Result<Vec<Value>, String> {
    let Some((step, rest)) = steps.split_first() else {
        return Ok(vec![value]);
    };
    let children = match (step, value) {
        (_, Value::Null) if *step != Step::Iterate => vec![Value::Null],
        (Step::Field(name), Value::Object(mut map)) => {
            vec![map.remove(name).unwrap_or(Value::Null)]
        }
        (Step::Index(index), Value::Array(items)) => {
            let position = if *index < 0 {
                items.len() as i64 + index
            } else {
                *index
            };
            vec![
                usize::try_from(position)
                    .ok()
                    .and_then(|p| items.get(p).cloned())
                    .unwrap_or(Value::Null),
            ]
        }
        (Step::Iterate, Value::Array(items)) => items,
        (Step::Iterate, Value::Object(map)) => map.into_iter().map(|(_, v)| v).collect(),
        (Step::Field(name), other) => {
            return Err(format!("Cannot index {} with \"{name}\"", kind(&other)));
        }
        (Step::Index(_), other) => {
            return Err(format!("Cannot index {} with number", kind(&other)));
        }
        (Step::Iterate, other) => return Err(format!("Cannot iterate over {}", kind(&other))),
    };
    let mut results = Vec::new();
    for child in children {
        results.extend(walk(rest, child)?);
    }
    Ok(results)
}

fn keys(value: &Value) -> Result<Value, String> {
    match value {
        Value::Object(map) => Ok(Value::from(map.keys().cloned().collect::<Vec<_>>())),
        Value::Array(items) => Ok(Value::from((0..items.len()).collect::<Vec<_>>())),
        other => Err(format!("{} has no keys", kind(other))),
    }
}

fn length(value: &Value) -> Result<Value, String> {
    match value {
        Value::Null => Ok(Value::from(0)),
        Value::String(text) => Ok(Value::from(text.chars().count())),
        Value::Array(items) => Ok(Value::from(items.len())),
        Value::Object(map) => Ok(Value::from(map.len())),
        Value::Number(n) => Ok(Value::from(n.as_f64().unwrap_or(0.0).abs())),
        Value::Bool(_) => Err("boolean has no length".to_string()),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdout(args: &[&str], input: &str) -> String {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let output = run(&args, input.as_bytes());
        assert_eq!(
            output.exit_code,
            0,
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn status_field() {
        let body = r#"{"status":"UP","components":{"redis":{"status":"UP"}}}"#;
        assert_eq!(stdout(&[".status"], body), "\"UP\"\n");
        assert_eq!(stdout(&["-r", ".status"], body), "UP\n");
        assert_eq!(stdout(&["-r", ".components.redis.status"], body), "UP\n");
        assert_eq!(stdout(&[".missing"], body), "null\n");
    }

    #[test]
    fn iteration_keys_and_length() {
        let doc = r#"{"partitions":[{"partition":0},{"partition":1}]}"#;
        assert_eq!(stdout(&["-c", ".partitions[].partition"], doc), "0\n1\n");
        assert_eq!(stdout(&[".partitions | length"], doc), "2\n");
        assert_eq!(stdout(&["-c", "keys"], doc), "[\"partitions\"]\n");
        assert_eq!(stdout(&[".partitions[-1].partition"], doc), "1\n");
    }

    #[test]
    fn errors_set_exit_status() {
        let args = vec![".a.b".to_string()];
        let output = run(&args, br#"{"a":"text"}"#);
        assert_eq!(output.exit_code, 5);
        let output = run(&args, b"not json");
        assert_eq!(output.exit_code, 2);
        let output = run(&["-e".to_string(), ".a".to_string()], br#"{"a":false}"#);
        assert_eq!(output.exit_code, 1);
    }
}
