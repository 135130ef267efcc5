//! JSON Patch (RFC 6902) with JSON Pointer (RFC 6901) paths.
//!
//! Operations run in order on a copy of the target, so a failing operation
//! leaves the caller's document untouched: the patch applies completely or
//! not at all.

use serde_json::{Map, Value};

use super::{PatchError, type_name};

/// Applies the operation list `ops` to `target` and returns the patched
/// copy, or the first failure naming the operation index and path.
pub fn apply(target: &Value, ops: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = ops else {
        return Err(PatchError::OperationsNotArray {
            found: type_name(ops),
        });
    };
    let mut document = target.clone();
    for (index, op) in ops.iter().enumerate() {
        let operation = Operation::parse(index, op)?;
        operation.run(&mut document)?;
    }
    Ok(document)
}

/// Reason a pointer did not resolve. [`Operation::fail`] adds the operation.
enum Failure {
    NotFound,
    OutOfRange { len: usize },
    BadIndex,
}

/// A parsed JSON Pointer: the text as sent and its unescaped tokens.
struct Pointer {
    text: String,
    tokens: Vec<String>,
}

/// Splits a pointer into tokens, undoing the RFC 6901 escapes. `~1` is
/// decoded before `~0`, so `~01` becomes the literal `~1`.
fn parse_pointer(text: &str) -> Result<Vec<String>, &'static str> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err("a pointer must be empty or start with '/'");
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => return Err("'~' must be followed by '0' or '1'"),
                }
            }
            Ok(out)
        })
        .collect()
}

enum ArrayIndex {
    At(usize),
    /// `-`: the position after the last element.
    End,
}

/// Parses an array index token: decimal digits without leading zeros, or `-`.
fn array_index(token: &str) -> Result<ArrayIndex, Failure> {
    if token == "-" {
        return Ok(ArrayIndex::End);
    }
    let digits_only = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (token.len() > 1 && token.starts_with('0')) {
        return Err(Failure::BadIndex);
    }
    token
        .parse()
        .map(ArrayIndex::At)
        .map_err(|_| Failure::BadIndex)
}

fn child<'d>(value: &'d Value, token: &str) -> Result<&'d Value, Failure> {
    match value {
        Value::Object(map) => map.get(token).ok_or(Failure::NotFound),
        Value::Array(items) => match array_index(token)? {
            ArrayIndex::At(i) if i < items.len() => Ok(&items[i]),
            _ => Err(Failure::OutOfRange { len: items.len() }),
        },
        _ => Err(Failure::NotFound),
    }
}

fn child_mut<'d>(value: &'d mut Value, token: &str) -> Result<&'d mut Value, Failure> {
    match value {
        Value::Object(map) => map.get_mut(token).ok_or(Failure::NotFound),
        Value::Array(items) => {
            let len = items.len();
            match array_index(token)? {
                ArrayIndex::At(i) if i < len => Ok(&mut items[i]),
                _ => Err(Failure::OutOfRange { len }),
            }
        }
        _ => Err(Failure::NotFound),
    }
}

fn resolve<'d>(document: &'d Value, tokens: &[String]) -> Result<&'d Value, Failure> {
    tokens
        .iter()
        .try_fold(document, |value, token| child(value, token))
}

fn resolve_mut<'d>(document: &'d mut Value, tokens: &[String]) -> Result<&'d mut Value, Failure> {
    tokens
        .iter()
        .try_fold(document, |value, token| child_mut(value, token))
}

/// Adds `value` at `tokens`: an object member is inserted or replaced, an
/// array element is inserted before the index (or appended for `-`).
fn add(document: &mut Value, tokens: &[String], value: Value) -> Result<(), Failure> {
    let Some((last, parents)) = tokens.split_last() else {
        *document = value;
        return Ok(());
    };
    match resolve_mut(document, parents)? {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => match array_index(last)? {
            ArrayIndex::End => {
                items.push(value);
                Ok(())
            }
            ArrayIndex::At(i) if i <= items.len() => {
                items.insert(i, value);
                Ok(())
            }
            ArrayIndex::At(_) => Err(Failure::OutOfRange { len: items.len() }),
        },
        _ => Err(Failure::NotFound),
    }
}

/// Removes and returns the value at `tokens`, which must not be the root.
fn remove(document: &mut Value, tokens: &[String]) -> Result<Value, Failure> {
    let (last, parents) = tokens.split_last().ok_or(Failure::NotFound)?;
    match resolve_mut(document, parents)? {
        Value::Object(map) => map.remove(last).ok_or(Failure::NotFound),
        Value::Array(items) => match array_index(last)? {
            ArrayIndex::At(i) if i < items.len() => Ok(items.remove(i)),
            _ => Err(Failure::OutOfRange { len: items.len() }),
        },
        _ => Err(Failure::NotFound),
    }
}

/// JSON equality as RFC 6902 defines it for `test`: numbers compare by
/// value (1 equals 1.0), objects ignore member order.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || (x.as_f64().is_some() && x.as_f64() == y.as_f64())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(l, r)| json_equal(l, r))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// One operation object. Members other than op, path, from and value are
/// ignored, as RFC 6902 requires.
struct Operation<'p> {
    index: usize,
    op: String,
    path: Pointer,
    from: Option<Pointer>,
    value: Option<&'p Value>,
}

impl<'p> Operation<'p> {
    fn parse(index: usize, raw: &'p Value) -> Result<Self, PatchError> {
        let Value::Object(members) = raw else {
            return Err(PatchError::OperationNotObject {
                index,
                found: type_name(raw),
            });
        };
        let op = match members.get("op") {
            Some(Value::String(op)) => op.clone(),
            _ => {
                return Err(PatchError::MissingMember {
                    index,
                    op: String::new(),
                    member: "op",
                });
            }
        };
        if !matches!(
            op.as_str(),
            "add" | "remove" | "replace" | "move" | "copy" | "test"
        ) {
            return Err(PatchError::UnknownOperation { index, op });
        }
        let path = Self::pointer(index, &op, members, "path")?.ok_or_else(|| {
            PatchError::MissingMember {
                index,
                op: op.clone(),
                member: "path",
            }
        })?;
        let from = Self::pointer(index, &op, members, "from")?;
        if from.is_none() && matches!(op.as_str(), "move" | "copy") {
            return Err(PatchError::MissingMember {
                index,
                op,
                member: "from",
            });
        }
        let value = members.get("value");
        if value.is_none() && matches!(op.as_str(), "add" | "replace" | "test") {
            return Err(PatchError::MissingMember {
                index,
                op,
                member: "value",
            });
        }
        Ok(Self {
            index,
            op,
            path,
            from,
            value,
        })
    }

    /// Reads and parses the pointer member `name`, if present.
    fn pointer(
        index: usize,
        op: &str,
        members: &Map<String, Value>,
        name: &'static str,
    ) -> Result<Option<Pointer>, PatchError> {
        let Some(raw) = members.get(name) else {
            return Ok(None);
        };
        let Value::String(text) = raw else {
            return Err(PatchError::InvalidPointer {
                index,
                op: op.to_string(),
                pointer: raw.to_string(),
                reason: "a pointer must be a string",
            });
        };
        let tokens = parse_pointer(text).map_err(|reason| PatchError::InvalidPointer {
            index,
            op: op.to_string(),
            pointer: text.clone(),
            reason,
        })?;
        Ok(Some(Pointer {
            text: text.clone(),
            tokens,
        }))
    }

    /// Turns a pointer failure on `pointer` into the error of this operation.
    fn fail(&self, pointer: &Pointer, failure: Failure) -> PatchError {
        let (index, op, path) = (self.index, self.op.clone(), pointer.text.clone());
        match failure {
            Failure::NotFound => PatchError::PathNotFound { index, op, path },
            Failure::OutOfRange { len } => PatchError::IndexOutOfRange {
                index,
                op,
                path,
                len,
            },
            Failure::BadIndex => PatchError::InvalidPointer {
                index,
                op,
                pointer: path,
                reason: "an array index must be '-' or a non-negative integer without leading zeros",
            },
        }
    }

    fn run(&self, document: &mut Value) -> Result<(), PatchError> {
        let path = &self.path;
        let value = || self.value.cloned().unwrap_or(Value::Null);
        match self.op.as_str() {
            "add" => add(document, &path.tokens, value()).map_err(|f| self.fail(path, f)),
            "remove" => {
                if path.tokens.is_empty() {
                    return Err(PatchError::RemoveRoot { index: self.index });
                }
                remove(document, &path.tokens)
                    .map(drop)
                    .map_err(|f| self.fail(path, f))
            }
            "replace" => {
                let slot = resolve_mut(document, &path.tokens).map_err(|f| self.fail(path, f))?;
                *slot = value();
                Ok(())
            }
            "move" => self.run_move(document),
            "copy" => {
                let from = self.from.as_ref().expect("parse requires from for copy");
                let copied = resolve(document, &from.tokens)
                    .map_err(|f| self.fail(from, f))?
                    .clone();
                add(document, &path.tokens, copied).map_err(|f| self.fail(path, f))
            }
            "test" => {
                let actual = resolve(document, &path.tokens).map_err(|f| self.fail(path, f))?;
                let expected = value();
                if json_equal(actual, &expected) {
                    Ok(())
                } else {
                    Err(PatchError::TestFailed {
                        index: self.index,
                        path: path.text.clone(),
                        expected,
                        actual: actual.clone(),
                    })
                }
            }
            other => unreachable!("parse rejects op {other}"),
        }
    }

    fn run_move(&self, document: &mut Value) -> Result<(), PatchError> {
        let from = self.from.as_ref().expect("parse requires from for move");
        let path = &self.path;
        if from.tokens == path.tokens {
            return resolve(document, &from.tokens)
                .map(drop)
                .map_err(|f| self.fail(from, f));
        }
        // RFC 6902 section 4.4: "from" must not be a proper prefix of "path".
        if path.tokens.starts_with(&from.tokens) {
            return Err(PatchError::MoveIntoChild {
                index: self.index,
                from: from.text.clone(),
                path: path.text.clone(),
            });
        }
        let moved = remove(document, &from.tokens).map_err(|f| self.fail(from, f))?;
        add(document, &path.tokens, moved).map_err(|f| self.fail(path, f))
    }
}

#[cfg(test)]
mod tests;
