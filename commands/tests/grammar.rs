//! The command grammar: accepted forms, normalisation of chat text, and the
//! message of every rejected form.

use commands::grammar::{
    Command, CountProblem, HpaBound, ReplicaChange, UsageError, Verb, help, parse,
};

fn scale(service: &str, change: ReplicaChange) -> Command {
    Command::Scale {
        service: service.to_string(),
        change,
    }
}

fn count_problem(text: &str) -> (String, CountProblem) {
    match parse(text) {
        Err(UsageError::InvalidCount { value, problem, .. }) => (value, problem),
        other => panic!("{text:?} gave {other:?}"),
    }
}

#[test]
fn scale_reads_absolute_count() {
    assert_eq!(
        parse("scale synapse 4"),
        Ok(scale("synapse", ReplicaChange::To(4)))
    );
    assert_eq!(
        parse("scale synapse 0"),
        Ok(scale("synapse", ReplicaChange::To(0)))
    );
}

#[test]
fn scale_reads_relative_changes() {
    assert_eq!(
        parse("scale nexus +2"),
        Ok(scale("nexus", ReplicaChange::Up(2)))
    );
    assert_eq!(
        parse("scale synapse -1"),
        Ok(scale("synapse", ReplicaChange::Down(1)))
    );
}

#[test]
fn scale_reads_dashes_as_minus() {
    for dash in ["–", "—", "−"] {
        assert_eq!(
            parse(&format!("scale synapse {dash}1")),
            Ok(scale("synapse", ReplicaChange::Down(1))),
            "{dash}"
        );
    }
}

#[test]
fn scale_keeps_service_as_typed() {
    assert_eq!(
        parse("SCALE SynApse 4"),
        Ok(scale("SynApse", ReplicaChange::To(4)))
    );
}

#[test]
fn leading_slash_and_bang_are_optional() {
    for text in ["/scale synapse 4", "!scale synapse 4", "/ scale synapse 4"] {
        assert_eq!(
            parse(text),
            Ok(scale("synapse", ReplicaChange::To(4))),
            "{text}"
        );
    }
}

#[test]
fn chat_formatting_is_normalised() {
    let texts = [
        "  scale   synapse\t4  ",
        "scale\u{00A0}synapse\u{00A0}4",
        "scale\u{202F}synapse\u{3000}4",
        "sca\u{200B}le synapse 4\u{FEFF}",
        "`scale synapse 4`",
        "```scale synapse 4```",
        "`/scale synapse 4`",
    ];
    for text in texts {
        assert_eq!(
            parse(text),
            Ok(scale("synapse", ReplicaChange::To(4))),
            "{text:?}"
        );
    }
}

#[test]
fn smart_quotes_around_reason_are_removed() {
    assert_eq!(
        parse("reject k7m2qx “dry run failed”"),
        Ok(Command::Reject {
            id: Some("k7m2qx".to_string()),
            reason: Some("dry run failed".to_string()),
        })
    );
    assert_eq!(
        parse("freeze ‘database migration’"),
        Ok(Command::Freeze {
            reason: "database migration".to_string()
        })
    );
}

#[test]
fn count_rejects_letter_o() {
    assert_eq!(
        count_problem("scale synapse O"),
        (
            "O".to_string(),
            CountProblem::LookalikeLetter {
                letter: 'O',
                digit: '0'
            }
        )
    );
    let message = parse("scale synapse O").unwrap_err().to_string();
    assert_eq!(
        message,
        "\"O\" is not a replica count: it contains the letter 'O', not the digit 0. Use digits 0-9, e.g. scale synapse 4 (or +1 / -1 to change by one).\nUsage: scale <service> <n|+k|-k>"
    );
}

#[test]
fn count_rejects_fullwidth_digit() {
    assert_eq!(
        count_problem("scale synapse ５"),
        ("５".to_string(), CountProblem::NonAsciiDigit('５'))
    );
}

#[test]
fn count_rejects_non_integer_forms() {
    let cases = [
        ("scale synapse 3.0", CountProblem::Fraction),
        ("scale synapse 1e3", CountProblem::Exponent),
        ("scale synapse 0x5", CountProblem::NotDecimal),
        ("scale synapse +0", CountProblem::ZeroChange),
        ("scale synapse -0", CountProblem::ZeroChange),
        ("scale synapse –0", CountProblem::ZeroChange),
        ("scale synapse +", CountProblem::SignOnly),
        ("scale synapse --1", CountProblem::ExtraSign),
        ("scale synapse four", CountProblem::Letter('f')),
    ];
    for (text, problem) in cases {
        assert_eq!(count_problem(text).1, problem, "{text}");
    }
}

#[test]
fn count_rejects_overflow() {
    for text in [
        "scale synapse 1001",
        "scale synapse 4294967296",
        "scale synapse 99999999999999999999999",
        "scale synapse +5000",
    ] {
        assert_eq!(count_problem(text).1, CountProblem::TooLarge, "{text}");
    }
    let message = parse("scale synapse 4294967296").unwrap_err().to_string();
    assert!(
        message.contains("above the maximum of 1000 replicas"),
        "{message}"
    );
}

#[test]
fn every_usage_error_has_usage_line() {
    let texts = [
        "scale synapse O",
        "scale synapse",
        "scale",
        "scale synapse 4 replicas",
        "scale 4 synapse",
        "status synapse now",
        "approve xyz",
        "cancel k7m2qx k7m2qy",
        "locks all",
        "freeze",
        "unfreeze now",
        "capacity synapse",
        "hpa synapse middle 4",
        "hpa synapse max +1",
        "history a b",
    ];
    for text in texts {
        let message = parse(text).unwrap_err().to_string();
        let verb = text.split(' ').next().unwrap();
        let usage = Verb::from_name(verb).unwrap().usage();
        assert!(
            message.ends_with(&format!("\nUsage: {usage}")),
            "{text}: {message}"
        );
    }
}

#[test]
fn scale_rejects_extra_arguments() {
    assert_eq!(
        parse("scale synapse 4 replicas"),
        Err(UsageError::UnexpectedArgument {
            verb: Verb::Scale,
            extra: "replicas".to_string()
        })
    );
}

#[test]
fn scale_rejects_missing_arguments() {
    let message = parse("scale synapse").unwrap_err().to_string();
    assert_eq!(
        message,
        "scale needs a replica count (n, +k or -k).\nUsage: scale <service> <n|+k|-k>"
    );
    assert!(matches!(
        parse("scale"),
        Err(UsageError::MissingArgument {
            verb: Verb::Scale,
            ..
        })
    ));
}

#[test]
fn scale_rejects_swapped_arguments() {
    let message = parse("scale 4 synapse").unwrap_err().to_string();
    assert!(
        message.starts_with(
            "\"4\" is not a service name: write the service first, e.g. scale synapse 4."
        ),
        "{message}"
    );
}

#[test]
fn empty_command_is_rejected() {
    for text in ["", "   ", "/", "``", "\u{200B}"] {
        assert_eq!(parse(text), Err(UsageError::Empty), "{text:?}");
    }
}

#[test]
fn unknown_verb_gets_suggestion() {
    let error = parse("scael synapse 4").unwrap_err();
    assert_eq!(
        error,
        UsageError::UnknownVerb {
            verb: "scael".to_string(),
            suggestion: Some("scale")
        }
    );
    let message = error.to_string();
    assert!(
        message.starts_with("unknown command \"scael\"; did you mean scale? Commands"),
        "{message}"
    );
    assert!(message.contains("`scale <service> <n|+k|-k>`"), "{message}");
}

#[test]
fn unknown_verb_without_close_match_lists_commands() {
    let message = parse("deploy synapse").unwrap_err().to_string();
    assert!(
        message.starts_with("unknown command \"deploy\". Commands"),
        "{message}"
    );
}

#[test]
fn optional_service_commands_parse() {
    assert_eq!(parse("status"), Ok(Command::Status { service: None }));
    assert_eq!(
        parse("Status Synapse"),
        Ok(Command::Status {
            service: Some("Synapse".to_string())
        })
    );
    assert_eq!(parse("history"), Ok(Command::History { service: None }));
    assert_eq!(
        parse("history nexus"),
        Ok(Command::History {
            service: Some("nexus".to_string())
        })
    );
}

#[test]
fn argumentless_commands_parse() {
    assert_eq!(parse("locks"), Ok(Command::Locks));
    assert_eq!(parse("unfreeze"), Ok(Command::Unfreeze));
    assert_eq!(parse("capacity"), Ok(Command::Capacity));
}

#[test]
fn request_ids_are_validated() {
    assert_eq!(parse("approve"), Ok(Command::Approve { id: None }));
    assert_eq!(
        parse("approve K7M2QX"),
        Ok(Command::Approve {
            id: Some("k7m2qx".to_string())
        })
    );
    assert_eq!(
        parse("cancel #k7m2qx"),
        Ok(Command::Cancel {
            id: Some("k7m2qx".to_string())
        })
    );
    for text in [
        "approve k7m2q",
        "approve k7m2qxx",
        "approve k7m2q0",
        "cancel k7-2qx",
        "approve #",
    ] {
        assert!(
            matches!(parse(text), Err(UsageError::InvalidRequestId { .. })),
            "{text}: {:?}",
            parse(text)
        );
    }
}

#[test]
fn reject_separates_id_and_reason() {
    assert_eq!(
        parse("reject"),
        Ok(Command::Reject {
            id: None,
            reason: None
        })
    );
    assert_eq!(
        parse("reject k7m2qx"),
        Ok(Command::Reject {
            id: Some("k7m2qx".to_string()),
            reason: None
        })
    );
    assert_eq!(
        parse("reject too risky today"),
        Ok(Command::Reject {
            id: None,
            reason: Some("too risky today".to_string())
        })
    );
    assert_eq!(
        parse("reject k7m2qx Too Risky"),
        Ok(Command::Reject {
            id: Some("k7m2qx".to_string()),
            reason: Some("Too Risky".to_string())
        })
    );
    assert!(matches!(
        parse("reject k7m2q0 wrong request"),
        Err(UsageError::InvalidRequestId { .. })
    ));
    assert_eq!(
        parse("reject \"denied by change board\""),
        Ok(Command::Reject {
            id: None,
            reason: Some("denied by change board".to_string())
        })
    );
}

#[test]
fn freeze_needs_reason() {
    assert_eq!(
        parse("freeze incident INC-1234"),
        Ok(Command::Freeze {
            reason: "incident INC-1234".to_string()
        })
    );
    assert_eq!(
        parse("freeze"),
        Err(UsageError::MissingArgument {
            verb: Verb::Freeze,
            argument: "a reason"
        })
    );
    assert_eq!(
        parse("freeze \"\""),
        Err(UsageError::MissingArgument {
            verb: Verb::Freeze,
            argument: "a reason"
        })
    );
}

#[test]
fn freeze_rejects_long_reason() {
    let text = format!("freeze {}", "x".repeat(501));
    assert_eq!(
        parse(&text),
        Err(UsageError::ReasonTooLong {
            verb: Verb::Freeze,
            length: 501
        })
    );
}

#[test]
fn hpa_parses_bounds() {
    assert_eq!(
        parse("hpa synapse MIN 4"),
        Ok(Command::Hpa {
            service: "synapse".to_string(),
            bound: HpaBound::Min,
            value: 4
        })
    );
    assert_eq!(
        parse("/hpa capsule max 14"),
        Ok(Command::Hpa {
            service: "capsule".to_string(),
            bound: HpaBound::Max,
            value: 14
        })
    );
}

#[test]
fn hpa_rejects_bad_forms() {
    assert_eq!(
        parse("hpa synapse middle 4"),
        Err(UsageError::InvalidHpaBound {
            service: "synapse".to_string(),
            value: "middle".to_string()
        })
    );
    let (_, problem) = count_problem("hpa synapse max +1");
    assert_eq!(problem, CountProblem::Relative);
    let (_, problem) = count_problem("hpa synapse min O");
    assert_eq!(
        problem,
        CountProblem::LookalikeLetter {
            letter: 'O',
            digit: '0'
        }
    );
    let message = parse("hpa synapse min O").unwrap_err().to_string();
    assert!(message.contains("e.g. hpa synapse min 6"), "{message}");
    assert!(matches!(
        parse("hpa synapse max"),
        Err(UsageError::MissingArgument {
            verb: Verb::Hpa,
            ..
        })
    ));
    assert!(matches!(
        parse("hpa synapse max 4 now"),
        Err(UsageError::UnexpectedArgument {
            verb: Verb::Hpa,
            ..
        })
    ));
}

#[test]
fn help_parses_topic() {
    assert_eq!(parse("help"), Ok(Command::Help { verb: None }));
    assert_eq!(
        parse("help SCALE"),
        Ok(Command::Help {
            verb: Some("scale".to_string())
        })
    );
    assert_eq!(
        parse("help /approve"),
        Ok(Command::Help {
            verb: Some("approve".to_string())
        })
    );
    assert_eq!(
        parse("help scal"),
        Err(UsageError::UnknownHelpTopic {
            topic: "scal".to_string(),
            suggestion: Some("scale")
        })
    );
}

#[test]
fn help_lists_every_verb() {
    let text = help(None);
    for verb in Verb::ALL {
        assert!(
            text.contains(&format!("`{}`", verb.usage())),
            "{}: {text}",
            verb.name()
        );
    }
}

#[test]
fn help_for_verb_has_usage_and_details() {
    let text = help(Some("scale"));
    assert!(text.starts_with("`scale <service> <n|+k|-k>`: "), "{text}");
    assert!(text.contains("scale synapse –1"), "{text}");
    let text = help(Some("/hpa"));
    assert!(text.starts_with("`hpa <service> min|max <n>`: "), "{text}");
}
