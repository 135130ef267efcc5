//! Pure decisions on who may do what and how many approvals a change
//! needs. Inputs are the validated config, the service from the catalog and
//! live values the caller read; nothing here does I/O.
//!
//! Roles: admins may do everything; approvers may approve and request;
//! requesters may request. During a freeze only admins may request, and a
//! change needs the freeze number of approvals. Expiry of approvals and
//! "already decided" are enforced by the coordination store.

use std::fmt;

use thiserror::Error;

use crate::catalog::{Range, Service};
use crate::config::Config;
use crate::coordination::FreezeState;
use crate::grammar::{HpaBound, ReplicaChange};
use crate::identity::{Identity, Principal};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PolicyError {
    #[error(
        "{who} may not request changes: an admin can add you, or one of your roles, to roles.requesters"
    )]
    NotARequester { who: String },
    #[error("{who} may not approve or reject requests: only roles.approvers and roles.admins may")]
    NotAnApprover { who: String },
    #[error("{who} may not do this: only roles.admins may")]
    NotAnAdmin { who: String },
    #[error("you made this request, so another approver must approve it")]
    SelfApproval,
    #[error(
        "changes are frozen by {by}: {reason}. Only admins may request changes until an admin runs `unfreeze`"
    )]
    Frozen { reason: String, by: String },
    #[error(
        "{target} is outside the safe range {min}-{max} of {service}: choose a count from {min} to {max}"
    )]
    OutsideSafeRange {
        service: String,
        target: u32,
        min: u32,
        max: u32,
    },
    #[error(
        "{target} is outside the range {min}-{max} of {hpa}, which would scale {service} back. {}",
        hpa_alternative(.service, *.target, *.min)
    )]
    OutsideHpaRange {
        service: String,
        hpa: String,
        target: u32,
        min: u32,
        max: u32,
    },
    #[error("{service} may not be scaled to 0: its safe range is {min}-{max}")]
    ZeroNotAllowed { service: String, min: u32, max: u32 },
    #[error("{service} is already at {current} replicas; nothing to change")]
    NoChange { service: String, current: u32 },
    #[error("{service} has {current} replicas, so -{by} would go below 0")]
    BelowZero {
        service: String,
        current: u32,
        by: u32,
    },
    #[error(
        "{current} → {target} changes {service} by more than its max_step of {max_step}; change it in smaller steps"
    )]
    StepTooLarge {
        service: String,
        current: u32,
        target: u32,
        max_step: u32,
    },
    #[error("{service} has no HPA, so there is no bound to set; use `scale {service} <n>`")]
    NoHpa { service: String },
    #[error("the HPA of {service} needs minReplicas of at least 1")]
    HpaMinBelowOne { service: String },
    #[error("{bound} {value} would cross the other bound of {hpa}, which is {other}")]
    HpaBoundsCrossed {
        hpa: String,
        bound: HpaBound,
        value: u32,
        other: u32,
    },
    #[error("the {bound} of {hpa} is already {value}; nothing to change")]
    HpaNoChange {
        hpa: String,
        bound: HpaBound,
        value: u32,
    },
}

/// Formats the advice to run the `hpa` command that makes room for `target`.
fn hpa_alternative(service: &str, target: u32, hpa_min: u32) -> String {
    if target < hpa_min {
        format!("Lower its minimum first with `hpa {service} min {target}`, then scale again")
    } else {
        format!("Raise its maximum first with `hpa {service} max {target}`, then scale again")
    }
}

/// Risk of a change, which sets the approvals it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Risk {
    /// Target within the recommended range.
    Low,
    /// Target outside the recommended range but within the safe range.
    High,
    /// Any change while changes are frozen.
    Freeze,
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Risk::Low => "low",
            Risk::High => "high",
            Risk::Freeze => "freeze",
        })
    }
}

/// An allowed scale request and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleDecision {
    pub target: u32,
    pub risk: Risk,
    pub approvals_needed: u32,
    /// Reasons for the risk and the approval count, for the preview.
    pub reasons: Vec<String>,
}

/// An allowed change of an HPA bound and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpaDecision {
    /// New `minReplicas` and `maxReplicas`.
    pub min: u32,
    pub max: u32,
    pub risk: Risk,
    pub approvals_needed: u32,
    pub reasons: Vec<String>,
}

fn any_matches(list: &[Principal], who: &Identity, roles: &[String]) -> bool {
    list.iter().any(|principal| principal.matches(who, roles))
}

pub fn is_admin(config: &Config, who: &Identity, roles: &[String]) -> bool {
    any_matches(&config.roles.admins, who, roles)
}

pub fn is_approver(config: &Config, who: &Identity, roles: &[String]) -> bool {
    any_matches(&config.roles.approvers, who, roles) || is_admin(config, who, roles)
}

/// Checks that `who` may make a request: requesters, approvers and admins
/// may, and during a freeze only admins.
pub fn can_request(
    config: &Config,
    who: &Identity,
    roles: &[String],
    freeze: Option<&FreezeState>,
) -> Result<(), PolicyError> {
    let admin = is_admin(config, who, roles);
    if !admin
        && !is_approver(config, who, roles)
        && !any_matches(&config.roles.requesters, who, roles)
    {
        return Err(PolicyError::NotARequester {
            who: who.to_string(),
        });
    }
    match freeze {
        Some(freeze) if !admin => Err(PolicyError::Frozen {
            reason: freeze.reason.clone(),
            by: freeze.by.clone(),
        }),
        _ => Ok(()),
    }
}

/// Checks that `who` is an admin, as `freeze` and `unfreeze` require.
pub fn check_admin(config: &Config, who: &Identity, roles: &[String]) -> Result<(), PolicyError> {
    if is_admin(config, who, roles) {
        Ok(())
    } else {
        Err(PolicyError::NotAnAdmin {
            who: who.to_string(),
        })
    }
}

/// Checks that `approver` may approve a request that `requester` made for
/// `service`: approvers and admins may, but not the requester, unless the
/// service allows self-approval.
pub fn check_approver(
    config: &Config,
    approver: &Identity,
    approver_roles: &[String],
    requester: &Identity,
    service: &Service,
) -> Result<(), PolicyError> {
    if approver == requester && !service.self_approval_allowed {
        return Err(PolicyError::SelfApproval);
    }
    if !is_approver(config, approver, approver_roles) {
        return Err(PolicyError::NotAnApprover {
            who: approver.to_string(),
        });
    }
    Ok(())
}

/// Approvers and admins as configured, for the preview's "approvals from".
pub fn approver_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for principal in config.roles.approvers.iter().chain(&config.roles.admins) {
        let name = principal.to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Approvers and admins who can act on `platform`, for the preview of a
/// request made there: users of that platform and its roles or groups.
/// Falls back to every approver when none is on that platform, so the
/// preview never claims that nobody can approve.
pub fn approver_names_on(config: &Config, platform: crate::identity::Platform) -> Vec<String> {
    use crate::identity::{Platform, Principal};
    let on_platform = |principal: &Principal| match principal {
        Principal::User(identity) => identity.platform == platform,
        Principal::DiscordRole(_) => platform == Platform::Discord,
        Principal::SlackGroup(_) => platform == Platform::Slack,
    };
    let mut names: Vec<String> = Vec::new();
    for principal in config.roles.approvers.iter().chain(&config.roles.admins) {
        let name = principal.to_string();
        if on_platform(principal) && !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        return approver_names(config);
    }
    names
}

/// Decides a scale request of `service` from `current` live replicas.
/// `hpa` is the live `(minReplicas, maxReplicas)` of the service's HPA.
pub fn evaluate_scale(
    config: &Config,
    service: &Service,
    current: u32,
    change: ReplicaChange,
    hpa: Option<(u32, u32)>,
    frozen: bool,
) -> Result<ScaleDecision, PolicyError> {
    let name = || service.name.clone();
    let target = match change {
        ReplicaChange::To(n) => n,
        ReplicaChange::Up(k) => current.saturating_add(k),
        ReplicaChange::Down(k) => current.checked_sub(k).ok_or(PolicyError::BelowZero {
            service: name(),
            current,
            by: k,
        })?,
    };
    if target == current {
        return Err(PolicyError::NoChange {
            service: name(),
            current,
        });
    }
    check_target(service, target)?;
    if let Some(max_step) = service.max_step
        && target.abs_diff(current) > max_step
    {
        return Err(PolicyError::StepTooLarge {
            service: name(),
            current,
            target,
            max_step,
        });
    }
    if let Some((min, max)) = hpa
        && !(min..=max).contains(&target)
    {
        return Err(PolicyError::OutsideHpaRange {
            service: name(),
            hpa: service.hpa.clone().unwrap_or_else(|| "its HPA".to_string()),
            target,
            min,
            max,
        });
    }
    let (risk, approvals_needed, reasons) = assess(config, service, target, frozen);
    Ok(ScaleDecision {
        target,
        risk,
        approvals_needed,
        reasons,
    })
}

/// Decides a change of one bound of the service's HPA, whose live bounds
/// are `current` as `(minReplicas, maxReplicas)`. The new bound must lie
/// within the safe range, so the HPA cannot leave it either.
pub fn evaluate_hpa(
    config: &Config,
    service: &Service,
    current: (u32, u32),
    bound: HpaBound,
    value: u32,
    frozen: bool,
) -> Result<HpaDecision, PolicyError> {
    let Some(hpa) = service.hpa.clone() else {
        return Err(PolicyError::NoHpa {
            service: service.name.clone(),
        });
    };
    let (old, other) = match bound {
        HpaBound::Min => (current.0, current.1),
        HpaBound::Max => (current.1, current.0),
    };
    if bound == HpaBound::Min && value < 1 {
        return Err(PolicyError::HpaMinBelowOne {
            service: service.name.clone(),
        });
    }
    if value == old {
        return Err(PolicyError::HpaNoChange { hpa, bound, value });
    }
    let crossed = match bound {
        HpaBound::Min => value > other,
        HpaBound::Max => value < other,
    };
    if crossed {
        return Err(PolicyError::HpaBoundsCrossed {
            hpa,
            bound,
            value,
            other,
        });
    }
    check_target(service, value)?;
    let (min, max) = match bound {
        HpaBound::Min => (value, other),
        HpaBound::Max => (other, value),
    };
    let (risk, approvals_needed, reasons) = assess(config, service, value, frozen);
    Ok(HpaDecision {
        min,
        max,
        risk,
        approvals_needed,
        reasons,
    })
}

/// Rejects a replica count that the service's safe range excludes.
fn check_target(service: &Service, target: u32) -> Result<(), PolicyError> {
    let Range { min, max } = service.safe;
    if target == 0 && min > 0 {
        return Err(PolicyError::ZeroNotAllowed {
            service: service.name.clone(),
            min,
            max,
        });
    }
    if !service.safe.contains(target) {
        return Err(PolicyError::OutsideSafeRange {
            service: service.name.clone(),
            target,
            min,
            max,
        });
    }
    Ok(())
}

/// Sets risk and approvals from the recommended range and the freeze. A
/// change outside the recommended range during a freeze needs the larger
/// of the two approval counts.
fn assess(
    config: &Config,
    service: &Service,
    target: u32,
    frozen: bool,
) -> (Risk, u32, Vec<String>) {
    let approvals = &config.policy.approvals;
    let mut reasons = Vec::new();
    let (mut risk, mut needed) = if service.recommended.contains(target) {
        reasons.push(format!(
            "{target} is within the recommended range {} of {}: {}",
            service.recommended,
            service.name,
            count_approvals(approvals.within_recommended)
        ));
        (Risk::Low, approvals.within_recommended)
    } else {
        reasons.push(format!(
            "{target} is outside the recommended range {} of {} (safe range {}): {}",
            service.recommended,
            service.name,
            service.safe,
            count_approvals(approvals.outside_recommended)
        ));
        (Risk::High, approvals.outside_recommended)
    };
    if frozen {
        reasons.push(format!(
            "changes are frozen: {}",
            count_approvals(approvals.freeze)
        ));
        risk = Risk::Freeze;
        needed = needed.max(approvals.freeze);
    }
    (risk, needed, reasons)
}

/// Formats an approval count: "1 approval", "2 approvals".
fn count_approvals(count: u32) -> String {
    if count == 1 {
        "1 approval".to_string()
    } else {
        format!("{count} approvals")
    }
}
