//! Lexer and parser for the subset of POSIX shell used by `sh -c` scripts
//! sent through `kubectl exec`. It handles words with quotes and escapes,
//! `$VAR` and `${VAR}`, pipes, `&&`, `||`, `;`, newlines and comments, and
//! the redirections `<`, `>`, `>>`, `2>`, `2>>`, `2>&1` and `>&2`.
//!
//! NOTE: command substitution and background jobs get a syntax error.
//! Globs, functions and loops are not recognized: `*` stays literal and
//! `for` runs as a command name.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Pipe,
    And,
    Or,
    Separator,
    /// `>` or `>>` (append) for file descriptor 1 or 2.
    RedirectOut {
        fd: u8,
        append: bool,
    },
    RedirectIn,
    /// `2>&1`.
    ErrToOut,
    /// `>&2`.
    OutToErr,
}

/// Destination of a command's output stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sink {
    /// To the next command of the pipeline, or the script's output.
    Inherit,
    File {
        path: String,
        append: bool,
    },
    /// Merged into the other stream (`2>&1`, `>&2`).
    OtherStream,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub argv: Vec<String>,
    pub stdin_file: Option<String>,
    pub stdout: Sink,
    pub stderr: Sink,
}

/// Condition on the previous pipeline's exit status for running a pipeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Connector {
    Always,
    IfSucceeded,
    IfFailed,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    pub connector: Connector,
    pub commands: Vec<Command>,
}

/// Parses `script`; `lookup` expands variables. The error is the message
/// `sh` prints, without the `sh: 1: ` prefix.
pub(crate) fn parse(
    script: &str,
    lookup: &dyn Fn(&str) -> String,
) -> Result<Vec<Pipeline>, String> {
    let tokens = Lexer::new(script, lookup).run()?;
    build(tokens)
}

struct Lexer<'s> {
    chars: std::iter::Peekable<std::str::Chars<'s>>,
    lookup: &'s dyn Fn(&str) -> String,
    tokens: Vec<Token>,
    word: String,
    /// The current word has started, possibly as an empty quoted string.
    in_word: bool,
    /// The current word contains a quote or escape, so `2>` is not a
    /// redirection.
    quoted: bool,
}

impl<'s> Lexer<'s> {
    fn new(script: &'s str, lookup: &'s dyn Fn(&str) -> String) -> Self {
        Self {
            chars: script.chars().peekable(),
            lookup,
            tokens: Vec::new(),
            word: String::new(),
            in_word: false,
            quoted: false,
        }
    }

    fn finish_word(&mut self) {
        if self.in_word {
            self.tokens
                .push(Token::Word(std::mem::take(&mut self.word)));
        }
        self.in_word = false;
        self.quoted = false;
    }

    fn push(&mut self, token: Token) {
        self.finish_word();
        self.tokens.push(token);
    }

    fn run(mut self) -> Result<Vec<Token>, String> {
        while let Some(c) = self.chars.next() {
            match c {
                ' ' | '\t' => self.finish_word(),
                '\n' | ';' => self.push(Token::Separator),
                '#' if !self.in_word => self.skip_comment(),
                '\'' => self.single_quoted()?,
                '"' => self.double_quoted()?,
                '\\' => {
                    self.in_word = true;
                    self.quoted = true;
                    if let Some(next) = self.chars.next() {
                        self.word.push(next);
                    }
                }
                '$' => {
                    self.in_word = true;
                    let value = self.variable()?;
                    self.word.push_str(&value);
                }
                '`' => return Err("Syntax error: command substitution is not supported".into()),
                '|' | '&' | '>' | '<' => self.operator(c)?,
                other => {
                    self.in_word = true;
                    self.word.push(other);
                }
            }
        }
        self.finish_word();
        Ok(self.tokens)
    }

    fn skip_comment(&mut self) {
        while self.chars.next_if(|&c| c != '\n').is_some() {}
    }

    fn single_quoted(&mut self) -> Result<(), String> {
        self.in_word = true;
        self.quoted = true;
        loop {
            match self.chars.next() {
                Some('\'') => return Ok(()),
                Some(c) => self.word.push(c),
                None => return Err("Syntax error: Unterminated quoted string".into()),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<(), String> {
        self.in_word = true;
        self.quoted = true;
        loop {
            match self.chars.next() {
                Some('"') => return Ok(()),
                Some('\\') => match self.chars.next() {
                    Some(c @ ('"' | '\\' | '$' | '`')) => self.word.push(c),
                    Some(c) => {
                        self.word.push('\\');
                        self.word.push(c);
                    }
                    None => return Err("Syntax error: Unterminated quoted string".into()),
                },
                Some('$') => {
                    let value = self.variable()?;
                    self.word.push_str(&value);
                }
                Some(c) => self.word.push(c),
                None => return Err("Syntax error: Unterminated quoted string".into()),
            }
        }
    }

    /// Expands the variable after a `$`: `$NAME`, `${NAME}` or `$?`.
    fn variable(&mut self) -> Result<String, String> {
        match self.chars.peek() {
            Some('(') => Err("Syntax error: command substitution is not supported".into()),
            Some('{') => {
                self.chars.next();
                let mut name = String::new();
                loop {
                    match self.chars.next() {
                        Some('}') => return Ok((self.lookup)(&name)),
                        Some(c) => name.push(c),
                        None => return Err("Syntax error: Missing '}'".into()),
                    }
                }
            }
            Some('?') => {
                self.chars.next();
                Ok((self.lookup)("?"))
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let mut name = String::new();
                while let Some(c) = self
                    .chars
                    .next_if(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    name.push(c);
                }
                Ok((self.lookup)(&name))
            }
            _ => Ok("$".into()),
        }
    }

    fn operator(&mut self, c: char) -> Result<(), String> {
        let fd_two = self.in_word && !self.quoted && self.word == "2";
        match c {
            '|' if self.chars.next_if_eq(&'|').is_some() => self.push(Token::Or),
            '|' => self.push(Token::Pipe),
            '&' if self.chars.next_if_eq(&'&').is_some() => self.push(Token::And),
            '&' => return Err("Syntax error: background jobs (&) are not supported".into()),
            '<' => self.push(Token::RedirectIn),
            '>' => {
                if fd_two {
                    self.word.clear();
                    self.in_word = false;
                }
                if self.chars.next_if_eq(&'&').is_some() {
                    let token = match (fd_two, self.chars.next()) {
                        (true, Some('1')) => Token::ErrToOut,
                        (false, Some('2')) => Token::OutToErr,
                        _ => return Err("Syntax error: Bad fd number".into()),
                    };
                    self.push(token);
                } else {
                    let append = self.chars.next_if_eq(&'>').is_some();
                    let fd = if fd_two { 2 } else { 1 };
                    self.push(Token::RedirectOut { fd, append });
                }
            }
            _ => unreachable!("operator called with {c}"),
        }
        Ok(())
    }
}

fn unexpected(token: &Token) -> String {
    let text = match token {
        Token::Word(word) => word.as_str(),
        Token::Pipe => "|",
        Token::And => "&&",
        Token::Or => "||",
        Token::Separator => ";",
        Token::RedirectOut { .. } | Token::ErrToOut | Token::OutToErr => ">",
        Token::RedirectIn => "<",
    };
    format!("Syntax error: \"{text}\" unexpected")
}

/// Groups tokens into pipelines of commands.
fn build(tokens: Vec<Token>) -> Result<Vec<Pipeline>, String> {
    let mut pipelines = Vec::new();
    let mut connector = Connector::Always;
    let mut commands: Vec<Command> = Vec::new();
    let mut current = empty_command();
    let mut tokens = tokens.into_iter();
    while let Some(token) = tokens.next() {
        match token {
            Token::Word(word) => current.argv.push(word),
            redirection @ (Token::RedirectOut { .. }
            | Token::RedirectIn
            | Token::ErrToOut
            | Token::OutToErr) => {
                redirect(&mut current, redirection, &mut tokens)?;
            }
            Token::Pipe => {
                if is_empty(&current) {
                    return Err(unexpected(&Token::Pipe));
                }
                commands.push(std::mem::replace(&mut current, empty_command()));
            }
            separator @ (Token::And | Token::Or | Token::Separator) => {
                if is_empty(&current) {
                    if commands.is_empty() && separator == Token::Separator {
                        continue;
                    }
                    return Err(unexpected(&separator));
                }
                commands.push(std::mem::replace(&mut current, empty_command()));
                pipelines.push(Pipeline {
                    connector,
                    commands: std::mem::take(&mut commands),
                });
                connector = match separator {
                    Token::And => Connector::IfSucceeded,
                    Token::Or => Connector::IfFailed,
                    _ => Connector::Always,
                };
            }
        }
    }
    if !is_empty(&current) {
        commands.push(current);
    } else if !commands.is_empty() || connector != Connector::Always {
        return Err("Syntax error: end of file unexpected".into());
    }
    if !commands.is_empty() {
        pipelines.push(Pipeline {
            connector,
            commands,
        });
    }
    Ok(pipelines)
}

/// Applies a redirection token to `command`, taking the file name, where
/// it needs one, from `tokens`.
fn redirect(
    command: &mut Command,
    token: Token,
    tokens: &mut impl Iterator<Item = Token>,
) -> Result<(), String> {
    let mut file_name = || match tokens.next() {
        Some(Token::Word(path)) => Ok(path),
        _ => Err("Syntax error: redirection without a file name".to_string()),
    };
    match token {
        Token::RedirectOut { fd: 2, append } => {
            command.stderr = Sink::File {
                path: file_name()?,
                append,
            }
        }
        Token::RedirectOut { append, .. } => {
            command.stdout = Sink::File {
                path: file_name()?,
                append,
            }
        }
        Token::RedirectIn => command.stdin_file = Some(file_name()?),
        Token::ErrToOut => command.stderr = Sink::OtherStream,
        Token::OutToErr => command.stdout = Sink::OtherStream,
        other => unreachable!("redirect called with {other:?}"),
    }
    Ok(())
}

fn empty_command() -> Command {
    Command {
        argv: Vec::new(),
        stdin_file: None,
        stdout: Sink::Inherit,
        stderr: Sink::Inherit,
    }
}

fn is_empty(command: &Command) -> bool {
    command.argv.is_empty()
        && command.stdin_file.is_none()
        && command.stdout == Sink::Inherit
        && command.stderr == Sink::Inherit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> String {
        match name {
            "JAVA_OPTS" => "-Xms2g -Xmx4g".into(),
            _ => String::new(),
        }
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn quotes_and_variables() {
        let parsed = parse(r#"echo 'a b' "c $JAVA_OPTS" d\ e ${MISSING}x"#, &env).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(
            parsed[0].commands[0].argv,
            argv(&["echo", "a b", "c -Xms2g -Xmx4g", "d e", "x"])
        );
    }

    #[test]
    fn pipes_and_connectors() {
        let parsed = parse("cat /tmp/a | grep x && echo ok || echo no; echo end", &env).unwrap();
        let shape: Vec<(Connector, usize)> = parsed
            .iter()
            .map(|p| (p.connector, p.commands.len()))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Connector::Always, 2),
                (Connector::IfSucceeded, 1),
                (Connector::IfFailed, 1),
                (Connector::Always, 1)
            ]
        );
    }

    #[test]
    fn redirections() {
        let parsed = parse(
            "cat > /tmp/x.json 2>/dev/null; nodetool status 2>&1 >> out",
            &env,
        )
        .unwrap();
        let first = &parsed[0].commands[0];
        assert_eq!(first.argv, argv(&["cat"]));
        assert_eq!(
            first.stdout,
            Sink::File {
                path: "/tmp/x.json".into(),
                append: false
            }
        );
        assert_eq!(
            first.stderr,
            Sink::File {
                path: "/dev/null".into(),
                append: false
            }
        );
        let second = &parsed[1].commands[0];
        assert_eq!(second.argv, argv(&["nodetool", "status"]));
        assert_eq!(second.stderr, Sink::OtherStream);
        assert_eq!(
            second.stdout,
            Sink::File {
                path: "out".into(),
                append: true
            }
        );
    }

    #[test]
    fn quoted_two_is_an_argument() {
        let parsed = parse("echo '2'>f", &env).unwrap();
        assert_eq!(parsed[0].commands[0].argv, argv(&["echo", "2"]));
        assert_eq!(
            parsed[0].commands[0].stdout,
            Sink::File {
                path: "f".into(),
                append: false
            }
        );
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            parse("| grep x", &env).unwrap_err(),
            "Syntax error: \"|\" unexpected"
        );
        assert_eq!(
            parse("echo 'open", &env).unwrap_err(),
            "Syntax error: Unterminated quoted string"
        );
        assert!(parse("echo $(hostname)", &env).is_err());
        assert_eq!(
            parse("echo a &&", &env).unwrap_err(),
            "Syntax error: end of file unexpected"
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        let parsed = parse("# setup\n\necho hi # trailing\n", &env).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].commands[0].argv, argv(&["echo", "hi"]));
    }
}
