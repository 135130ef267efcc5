//! The audit stream: one stream entry per event, one field per attribute, so
//! that `redis-cli XREVRANGE` output stays readable.

use redis::streams::{StreamId, StreamRangeReply};
use tracing::warn;

use super::RedisStore;
use crate::coordination::{AUDIT_MAX_LEN, AuditEntry, CoordError};

/// Entries fetched per `XREVRANGE` while looking for entries of one service.
const AUDIT_PAGE_LEN: usize = 200;

impl RedisStore {
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<String, CoordError> {
        let mut command = redis::cmd("XADD");
        command
            .arg(self.keys.audit())
            .arg("MAXLEN")
            .arg("~")
            .arg(AUDIT_MAX_LEN)
            .arg("*")
            .arg("at_ms")
            .arg(entry.at_ms)
            .arg("kind")
            .arg(entry.kind.as_str())
            .arg("actor")
            .arg(&entry.actor)
            .arg("detail")
            .arg(&entry.detail);
        if let Some(request_id) = &entry.request_id {
            command.arg("request_id").arg(request_id);
        }
        if let Some(service) = &entry.service {
            command.arg("service").arg(service);
        }
        if let Some(token) = entry.fencing_token {
            command.arg("fencing_token").arg(token);
        }
        let mut connection = self.connection();
        self.run("append audit entry", command.query_async(&mut connection))
            .await
    }

    /// Pages backwards through the stream until `count` entries match or the
    /// stream ends. Entries that do not decode (written by another version)
    /// are skipped with one warning per call.
    pub async fn read_audit(
        &self,
        service: Option<&str>,
        count: usize,
    ) -> Result<Vec<AuditEntry>, CoordError> {
        let key = self.keys.audit();
        let mut entries = Vec::new();
        let mut skipped = 0;
        let mut end = "+".to_string();
        while entries.len() < count {
            let page_len = if service.is_some() {
                AUDIT_PAGE_LEN
            } else {
                count - entries.len()
            };
            let mut command = redis::cmd("XREVRANGE");
            command
                .arg(&key)
                .arg(&end)
                .arg("-")
                .arg("COUNT")
                .arg(page_len);
            let mut connection = self.connection();
            let page: StreamRangeReply = self
                .run("read audit stream", command.query_async(&mut connection))
                .await?;
            let Some(last) = page.ids.last() else {
                break;
            };
            // An exclusive start ("(" before the id) needs Redis 6.2 or later.
            end = format!("({}", last.id);
            let page_was_full = page.ids.len() == page_len;
            for stream_entry in &page.ids {
                match parse_entry(stream_entry) {
                    Some(entry) if service.is_none() || entry.service.as_deref() == service => {
                        entries.push(entry)
                    }
                    Some(_) => {}
                    None => skipped += 1,
                }
            }
            if !page_was_full {
                break;
            }
        }
        if skipped > 0 {
            warn!(
                key,
                skipped, "skipped audit entries that could not be decoded"
            );
        }
        entries.truncate(count);
        Ok(entries)
    }
}

fn parse_entry(stream_entry: &StreamId) -> Option<AuditEntry> {
    let text = |field: &str| stream_entry.get::<String>(field);
    Some(AuditEntry {
        at_ms: text("at_ms")?.parse().ok()?,
        request_id: text("request_id"),
        kind: text("kind")?.parse().ok()?,
        service: text("service"),
        actor: text("actor")?,
        detail: text("detail")?,
        fencing_token: match text("fencing_token") {
            Some(token) => Some(token.parse().ok()?),
            None => None,
        },
    })
}
