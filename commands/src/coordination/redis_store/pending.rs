//! Pending approvals in Redis.
//!
//! A request is a hash. Its `request` field contains the JSON of the request
//! as stored and is never rewritten, while the fields that decisions change
//! (`state`, `decided_by`, `reason`, `approvals`) sit beside it. The scripts
//! therefore never re-encode the opaque payload, which Redis's cjson would
//! alter: with Redis 7.0 an empty array becomes `{}` and numbers keep only 14
//! significant digits.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{RedisStore, decode_json, lua_script};
use crate::coordination::types::ttl_millis;
use crate::coordination::{
    CoordError, Decision, DecisionOutcome, PendingRequest, PendingState, unix_now_ms,
};

static PENDING_PUT: LazyLock<Script> = lua_script!("pending_put.lua");
static PENDING_DECIDE: LazyLock<Script> = lua_script!("pending_decide.lua");
static PENDING_LIST: LazyLock<Script> = lua_script!("pending_list.lua");
static PENDING_EXPIRE_DUE: LazyLock<Script> = lua_script!("pending_expire_due.lua");

type HashFields = HashMap<String, String>;

impl RedisStore {
    pub async fn put_pending(&self, request: &PendingRequest) -> Result<(), CoordError> {
        let fields = request_fields(request)?;
        let until_expiry = request.expires_at.saturating_sub(unix_now_ms());
        let ttl = Duration::from_millis(until_expiry) + self.options.decided_retention;

        let mut connection = self.connection();
        let mut invocation = PENDING_PUT.prepare_invoke();
        invocation
            .key(self.keys.pending(&request.id))
            .key(self.keys.pending_index())
            .arg(&request.id)
            .arg(request.created_at)
            .arg(ttl_millis(ttl));
        for (field, value) in &fields {
            invocation.arg(field).arg(value);
        }
        let stored: i64 = self
            .run(
                "store pending request",
                invocation.invoke_async(&mut connection),
            )
            .await?;
        if stored == 1 {
            Ok(())
        } else {
            Err(CoordError::DuplicateRequestId {
                id: request.id.clone(),
            })
        }
    }

    pub async fn get_pending(&self, id: &str) -> Result<Option<PendingRequest>, CoordError> {
        let key = self.keys.pending(id);
        let mut connection = self.connection();
        let mut command = redis::cmd("HGETALL");
        command.arg(&key);
        let fields: HashFields = self
            .run("read pending request", command.query_async(&mut connection))
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        request_from_fields(&key, &fields).map(Some)
    }

    pub async fn list_pending(&self, now_ms: u64) -> Result<Vec<PendingRequest>, CoordError> {
        let mut connection = self.connection();
        let mut invocation = PENDING_LIST.prepare_invoke();
        invocation
            .key(self.keys.pending_index())
            .arg(self.keys.pending_prefix());
        let listed: Vec<HashFields> = self
            .run(
                "list pending requests",
                invocation.invoke_async(&mut connection),
            )
            .await?;
        let mut requests = self.requests_from_lists(&listed)?;
        requests.retain(|request| request.expires_at > now_ms);
        Ok(requests)
    }

    pub async fn decide(
        &self,
        id: &str,
        decision: &Decision,
        now_ms: u64,
    ) -> Result<DecisionOutcome, CoordError> {
        let (action, by, reason) = match decision {
            Decision::Approve { by } => ("approve", by, ""),
            Decision::Reject { by, reason } => ("reject", by, reason.as_str()),
            Decision::Cancel { by } => ("cancel", by, ""),
        };
        let key = self.keys.pending(id);
        let mut connection = self.connection();
        let mut invocation = PENDING_DECIDE.prepare_invoke();
        invocation
            .key(&key)
            .arg(action)
            .arg(by)
            .arg(reason)
            .arg(now_ms)
            .arg(ttl_millis(self.options.decided_retention));
        let (outcome, approvals, needed, fields): (String, u32, u32, HashFields) = self
            .run(
                "decide pending request",
                invocation.invoke_async(&mut connection),
            )
            .await?;

        let request = || request_from_fields(&key, &fields);
        let decided = match outcome.as_str() {
            "unknown" => DecisionOutcome::Unknown,
            "self_approval" => DecisionOutcome::SelfApproval,
            "duplicate_approver" => DecisionOutcome::DuplicateApprover,
            "not_requester" => DecisionOutcome::NotRequester,
            "recorded" => DecisionOutcome::Recorded { approvals, needed },
            "approved" => DecisionOutcome::Approved {
                request: request()?,
            },
            "rejected" => DecisionOutcome::Rejected {
                request: request()?,
            },
            "cancelled" => DecisionOutcome::Cancelled {
                request: request()?,
            },
            "expired" => DecisionOutcome::Expired {
                request: request()?,
            },
            "already_decided" => DecisionOutcome::AlreadyDecided {
                state: request()?.state,
                by: fields.get("decided_by").cloned(),
            },
            other => {
                return Err(CoordError::CorruptValue {
                    key,
                    reason: format!("unexpected decision outcome {other:?}"),
                });
            }
        };
        Ok(decided)
    }

    pub async fn expire_due(&self, now_ms: u64) -> Result<Vec<PendingRequest>, CoordError> {
        let mut connection = self.connection();
        let mut invocation = PENDING_EXPIRE_DUE.prepare_invoke();
        invocation
            .key(self.keys.pending_index())
            .arg(self.keys.pending_prefix())
            .arg(now_ms)
            .arg(ttl_millis(self.options.decided_retention));
        let expired: Vec<HashFields> = self
            .run(
                "expire pending requests",
                invocation.invoke_async(&mut connection),
            )
            .await?;
        self.requests_from_lists(&expired)
    }

    /// Decodes the hashes returned by the list scripts, which come in
    /// creation order.
    fn requests_from_lists(&self, lists: &[HashFields]) -> Result<Vec<PendingRequest>, CoordError> {
        lists
            .iter()
            .map(|fields| {
                let id = fields.get("id").map(String::as_str).unwrap_or_default();
                request_from_fields(&self.keys.pending(id), fields)
            })
            .collect()
    }
}

/// Lists the hash fields of a new request, as `lua/pending_put.lua` writes them.
fn request_fields(request: &PendingRequest) -> Result<Vec<(&'static str, String)>, CoordError> {
    let encode = |source| CoordError::Encode {
        what: "pending request",
        source,
    };
    let (decided_by, reason) = match &request.state {
        PendingState::Approved => (
            request.approvals.last().map(|approval| approval.by.clone()),
            None,
        ),
        PendingState::Rejected { by, reason } => (Some(by.clone()), Some(reason.clone())),
        PendingState::Cancelled { by } => (Some(by.clone()), None),
        PendingState::Pending | PendingState::Expired => (None, None),
    };
    let mut fields = vec![
        ("id", request.id.clone()),
        ("request", serde_json::to_string(request).map_err(encode)?),
        ("requester", request.requester.clone()),
        ("needed", request.approvals_needed.to_string()),
        (
            "allow_self",
            u8::from(request.allow_self_approval).to_string(),
        ),
        ("expires_at", request.expires_at.to_string()),
        ("state", request.state.name().to_string()),
        (
            "approvals",
            serde_json::to_string(&request.approvals).map_err(encode)?,
        ),
    ];
    fields.extend(decided_by.map(|by| ("decided_by", by)));
    fields.extend(reason.map(|reason| ("reason", reason)));
    Ok(fields)
}

/// Rebuilds a request from its hash: the stored JSON with the decision fields
/// applied on top.
fn request_from_fields(key: &str, fields: &HashFields) -> Result<PendingRequest, CoordError> {
    let field = |name: &str| {
        fields.get(name).ok_or_else(|| CoordError::CorruptValue {
            key: key.to_string(),
            reason: format!("missing field {name}"),
        })
    };
    let mut request: PendingRequest = decode_json(key, field("request")?)?;
    request.approvals = decode_json(key, field("approvals")?)?;
    let decided_by = || field("decided_by").cloned();
    request.state = match field("state")?.as_str() {
        "pending" => PendingState::Pending,
        "approved" => PendingState::Approved,
        "rejected" => PendingState::Rejected {
            by: decided_by()?,
            reason: fields.get("reason").cloned().unwrap_or_default(),
        },
        "cancelled" => PendingState::Cancelled { by: decided_by()? },
        "expired" => PendingState::Expired,
        other => {
            return Err(CoordError::CorruptValue {
                key: key.to_string(),
                reason: format!("unknown request state {other:?}"),
            });
        }
    };
    Ok(request)
}
