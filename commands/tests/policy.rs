//! Policy decisions: who may request and approve, ranges, HPA interplay,
//! approvals by risk, and the freeze.

use commands::catalog::{Catalog, Service};
use commands::config::Config;
use commands::coordination::FreezeState;
use commands::grammar::{HpaBound, ReplicaChange};
use commands::identity::{Identity, Platform};
use commands::policy::{
    PolicyError, Risk, approver_names, can_request, check_admin, check_approver, evaluate_hpa,
    evaluate_scale,
};

const CONFIG: &str = "
services:
  synapse:
    kind: deployment
    safe: {min: 2, max: 12}
    recommended: {min: 3, max: 4}
  sandbox:
    kind: deployment
    hpa: none
    safe: {min: 0, max: 4}
    recommended: {min: 0, max: 2}
    self_approval_allowed: true
  cassandra:
    kind: statefulset
    safe: {min: 3, max: 9}
    recommended: {min: 3, max: 4}
    max_step: 1
roles:
  requesters: [console:oncall, slack-group:S0614TZR7]
  approvers: [console:sre, discord-role:539082325061836999]
  admins: [console:lead, slack:U024BE7LH]
";

fn config() -> Config {
    Config::from_yaml_str(CONFIG).unwrap_or_else(|errors| panic!("{errors}"))
}

fn service(config: &Config, name: &str) -> Service {
    Catalog::from_config(config).resolve(name).unwrap().clone()
}

fn console(name: &str) -> Identity {
    Identity::new(Platform::Console, name)
}

fn freeze() -> FreezeState {
    FreezeState {
        reason: "incident INC-1234".to_string(),
        by: "console:lead".to_string(),
        since: 0,
    }
}

#[test]
fn requesters_approvers_and_admins_may_request() {
    let config = config();
    for name in ["oncall", "sre", "lead"] {
        assert_eq!(
            can_request(&config, &console(name), &[], None),
            Ok(()),
            "{name}"
        );
    }
}

#[test]
fn unknown_user_may_not_request() {
    let config = config();
    let error = can_request(&config, &console("intern"), &[], None).unwrap_err();
    assert_eq!(
        error,
        PolicyError::NotARequester {
            who: "console:intern".to_string()
        }
    );
    assert!(error.to_string().contains("roles.requesters"), "{error}");
}

#[test]
fn slack_group_member_may_request() {
    let config = config();
    let user = Identity::new(Platform::Slack, "U00000002");
    assert_eq!(
        can_request(&config, &user, &["S0614TZR7".to_string()], None),
        Ok(())
    );
    assert!(can_request(&config, &user, &[], None).is_err());
}

#[test]
fn freeze_rejects_non_admin_request() {
    let config = config();
    let error = can_request(&config, &console("oncall"), &[], Some(&freeze())).unwrap_err();
    assert_eq!(
        error,
        PolicyError::Frozen {
            reason: "incident INC-1234".to_string(),
            by: "console:lead".to_string()
        }
    );
    assert!(can_request(&config, &console("sre"), &[], Some(&freeze())).is_err());
}

#[test]
fn freeze_admits_admin_request_needing_two_approvals() {
    let config = config();
    assert_eq!(
        can_request(&config, &console("lead"), &[], Some(&freeze())),
        Ok(())
    );
    let synapse = service(&config, "synapse");
    let decision = evaluate_scale(&config, &synapse, 3, ReplicaChange::To(4), None, true).unwrap();
    assert_eq!(decision.risk, Risk::Freeze);
    assert_eq!(decision.approvals_needed, 2);
    assert!(
        decision
            .reasons
            .iter()
            .any(|r| r.starts_with("changes are frozen")),
        "{:?}",
        decision.reasons
    );
}

#[test]
fn only_admins_pass_admin_check() {
    let config = config();
    assert_eq!(check_admin(&config, &console("lead"), &[]), Ok(()));
    let slack_admin = Identity::new(Platform::Slack, "U024BE7LH");
    assert_eq!(check_admin(&config, &slack_admin, &[]), Ok(()));
    assert_eq!(
        check_admin(&config, &console("sre"), &[]),
        Err(PolicyError::NotAnAdmin {
            who: "console:sre".to_string()
        })
    );
}

#[test]
fn requester_may_not_approve_own_request() {
    let config = config();
    let synapse = service(&config, "synapse");
    let lead = console("lead");
    assert_eq!(
        check_approver(&config, &lead, &[], &lead, &synapse),
        Err(PolicyError::SelfApproval)
    );
}

#[test]
fn self_approval_allowed_where_configured() {
    let config = config();
    let sandbox = service(&config, "sandbox");
    let sre = console("sre");
    assert_eq!(check_approver(&config, &sre, &[], &sre, &sandbox), Ok(()));
    // Self-approval does not make a requester an approver.
    let oncall = console("oncall");
    assert_eq!(
        check_approver(&config, &oncall, &[], &oncall, &sandbox),
        Err(PolicyError::NotAnApprover {
            who: "console:oncall".to_string()
        })
    );
}

#[test]
fn non_approver_may_not_approve() {
    let config = config();
    let synapse = service(&config, "synapse");
    let error =
        check_approver(&config, &console("oncall"), &[], &console("lead"), &synapse).unwrap_err();
    assert_eq!(
        error,
        PolicyError::NotAnApprover {
            who: "console:oncall".to_string()
        }
    );
}

#[test]
fn approver_and_admin_may_approve() {
    let config = config();
    let synapse = service(&config, "synapse");
    let requester = console("oncall");
    assert_eq!(
        check_approver(&config, &console("sre"), &[], &requester, &synapse),
        Ok(())
    );
    assert_eq!(
        check_approver(&config, &console("lead"), &[], &requester, &synapse),
        Ok(())
    );
}

#[test]
fn discord_role_member_may_approve() {
    let config = config();
    let synapse = service(&config, "synapse");
    let member = Identity::new(Platform::Discord, "100000000000000003");
    let requester = console("oncall");
    let roles = ["539082325061836999".to_string()];
    assert_eq!(
        check_approver(&config, &member, &roles, &requester, &synapse),
        Ok(())
    );
    assert!(check_approver(&config, &member, &[], &requester, &synapse).is_err());
}

#[test]
fn approver_names_on_platform_lists_only_that_platform() {
    use commands::identity::Platform;
    let config = config();
    assert_eq!(
        commands::policy::approver_names_on(&config, Platform::Slack),
        ["slack:U024BE7LH"]
    );
    assert_eq!(
        commands::policy::approver_names_on(&config, Platform::Discord),
        ["discord-role:539082325061836999"]
    );
    assert_eq!(
        commands::policy::approver_names_on(&config, Platform::Console),
        ["console:sre", "console:lead"]
    );
}

#[test]
fn approver_names_lists_approvers_then_admins() {
    assert_eq!(
        approver_names(&config()),
        [
            "console:sre",
            "discord-role:539082325061836999",
            "console:lead",
            "slack:U024BE7LH"
        ]
    );
}

#[test]
fn scale_within_recommended_needs_one_approval() {
    let config = config();
    let synapse = service(&config, "synapse");
    let decision = evaluate_scale(&config, &synapse, 3, ReplicaChange::To(4), None, false).unwrap();
    assert_eq!(decision.target, 4);
    assert_eq!(decision.risk, Risk::Low);
    assert_eq!(decision.approvals_needed, 1);
}

#[test]
fn scale_outside_recommended_needs_two_approvals() {
    let config = config();
    let synapse = service(&config, "synapse");
    let decision = evaluate_scale(&config, &synapse, 4, ReplicaChange::Up(4), None, false).unwrap();
    assert_eq!(decision.target, 8);
    assert_eq!(decision.risk, Risk::High);
    assert_eq!(decision.approvals_needed, 2);
    assert_eq!(
        decision.reasons,
        ["8 is outside the recommended range 3-4 of synapse (safe range 2-12): 2 approvals"]
    );
}

#[test]
fn scale_rejects_target_outside_safe_range() {
    let config = config();
    let synapse = service(&config, "synapse");
    let error =
        evaluate_scale(&config, &synapse, 4, ReplicaChange::To(13), None, false).unwrap_err();
    assert_eq!(
        error,
        PolicyError::OutsideSafeRange {
            service: "synapse".to_string(),
            target: 13,
            min: 2,
            max: 12
        }
    );
    assert_eq!(
        error.to_string(),
        "13 is outside the safe range 2-12 of synapse: choose a count from 2 to 12"
    );
    let error =
        evaluate_scale(&config, &synapse, 2, ReplicaChange::Down(1), None, false).unwrap_err();
    assert!(
        matches!(error, PolicyError::OutsideSafeRange { target: 1, .. }),
        "{error:?}"
    );
}

#[test]
fn scale_rejects_zero_replicas() {
    let config = config();
    let synapse = service(&config, "synapse");
    let error =
        evaluate_scale(&config, &synapse, 3, ReplicaChange::To(0), None, false).unwrap_err();
    assert_eq!(
        error,
        PolicyError::ZeroNotAllowed {
            service: "synapse".to_string(),
            min: 2,
            max: 12
        }
    );
}

#[test]
fn scale_allows_zero_when_safe_min_is_zero() {
    let config = config();
    let sandbox = service(&config, "sandbox");
    let decision =
        evaluate_scale(&config, &sandbox, 1, ReplicaChange::Down(1), None, false).unwrap();
    assert_eq!(decision.target, 0);
}

#[test]
fn scale_rejects_decrement_below_zero() {
    let config = config();
    let sandbox = service(&config, "sandbox");
    let error =
        evaluate_scale(&config, &sandbox, 1, ReplicaChange::Down(2), None, false).unwrap_err();
    assert_eq!(
        error,
        PolicyError::BelowZero {
            service: "sandbox".to_string(),
            current: 1,
            by: 2
        }
    );
}

#[test]
fn scale_rejects_no_change() {
    let config = config();
    let synapse = service(&config, "synapse");
    let error =
        evaluate_scale(&config, &synapse, 4, ReplicaChange::To(4), None, false).unwrap_err();
    assert_eq!(
        error.to_string(),
        "synapse is already at 4 replicas; nothing to change"
    );
}

#[test]
fn scale_rejects_target_outside_hpa_range() {
    let config = config();
    let synapse = service(&config, "synapse");
    let error = evaluate_scale(
        &config,
        &synapse,
        4,
        ReplicaChange::To(10),
        Some((2, 8)),
        false,
    )
    .unwrap_err();
    assert_eq!(
        error,
        PolicyError::OutsideHpaRange {
            service: "synapse".to_string(),
            hpa: "synapse-hpa".to_string(),
            target: 10,
            min: 2,
            max: 8
        }
    );
    assert!(
        error.to_string().contains("`hpa synapse max 10`"),
        "{error}"
    );
    let error = evaluate_scale(
        &config,
        &synapse,
        4,
        ReplicaChange::To(3),
        Some((4, 12)),
        false,
    )
    .unwrap_err();
    assert!(error.to_string().contains("`hpa synapse min 3`"), "{error}");
}

#[test]
fn scale_accepts_target_inside_hpa_range() {
    let config = config();
    let synapse = service(&config, "synapse");
    let decision = evaluate_scale(
        &config,
        &synapse,
        4,
        ReplicaChange::To(6),
        Some((2, 8)),
        false,
    )
    .unwrap();
    assert_eq!(decision.target, 6);
}

#[test]
fn scale_rejects_step_above_max_step() {
    let config = config();
    let cassandra = service(&config, "cassandra");
    let error =
        evaluate_scale(&config, &cassandra, 3, ReplicaChange::To(5), None, false).unwrap_err();
    assert!(
        matches!(error, PolicyError::StepTooLarge { max_step: 1, .. }),
        "{error:?}"
    );
    assert!(evaluate_scale(&config, &cassandra, 3, ReplicaChange::Up(1), None, false).is_ok());
}

#[test]
fn hpa_bound_change_is_evaluated() {
    let config = config();
    let synapse = service(&config, "synapse");
    let decision = evaluate_hpa(&config, &synapse, (2, 8), HpaBound::Max, 12, false).unwrap();
    assert_eq!((decision.min, decision.max), (2, 12));
    assert_eq!(decision.approvals_needed, 2);
    let decision = evaluate_hpa(&config, &synapse, (2, 8), HpaBound::Min, 3, false).unwrap();
    assert_eq!((decision.min, decision.max), (3, 8));
    assert_eq!(decision.risk, Risk::Low);
}

#[test]
fn hpa_bound_change_rejects_bad_values() {
    let config = config();
    let synapse = service(&config, "synapse");
    let hpa = || "synapse-hpa".to_string();
    let cases = [
        (
            HpaBound::Min,
            0,
            PolicyError::HpaMinBelowOne {
                service: "synapse".to_string(),
            },
        ),
        (
            HpaBound::Min,
            9,
            PolicyError::HpaBoundsCrossed {
                hpa: hpa(),
                bound: HpaBound::Min,
                value: 9,
                other: 8,
            },
        ),
        (
            HpaBound::Max,
            1,
            PolicyError::HpaBoundsCrossed {
                hpa: hpa(),
                bound: HpaBound::Max,
                value: 1,
                other: 2,
            },
        ),
        (
            HpaBound::Max,
            8,
            PolicyError::HpaNoChange {
                hpa: hpa(),
                bound: HpaBound::Max,
                value: 8,
            },
        ),
        (
            HpaBound::Max,
            13,
            PolicyError::OutsideSafeRange {
                service: "synapse".to_string(),
                target: 13,
                min: 2,
                max: 12,
            },
        ),
    ];
    for (bound, value, expected) in cases {
        assert_eq!(
            evaluate_hpa(&config, &synapse, (2, 8), bound, value, false),
            Err(expected),
            "{bound} {value}"
        );
    }
    let sandbox = service(&config, "sandbox");
    assert_eq!(
        evaluate_hpa(&config, &sandbox, (1, 2), HpaBound::Max, 3, false),
        Err(PolicyError::NoHpa {
            service: "sandbox".to_string()
        })
    );
}
