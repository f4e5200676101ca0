//! The card for machines and CI pages: JUnit XML (one testsuite per group, one testcase per
//! line, through `quick-junit`) and Markdown with the failures first (a CI step summary).

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{Card, GROUPS, Line};

/// The card as JUnit XML. A failed line that decides the verdict is a `<failure>` whose message
/// says what was sent, what a correct receiver answers and what this one answered; a failed line
/// that does not count (strict, framing, optional, unless `--strict`/`--strict-http`) is
/// `<skipped>` with the reason, so CI shows it without failing the build.
pub fn junit(card: &Card) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new(format!("webhook-bench verify {}", card.target));
    for g in GROUPS {
        let lines: Vec<&Line> = card.lines.iter().filter(|l| l.group == g).collect();
        if lines.is_empty() {
            continue;
        }
        let mut suite = TestSuite::new(g);
        suite.add_property(Property::new("target", card.target.as_str()));
        for l in lines {
            let status = if l.passed {
                TestCaseStatus::success()
            } else if l.counts(card.strict, card.strict_http) {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!(
                    "sent {}; a correct receiver answers {}, this one answered {}",
                    l.sent, l.expected, l.got
                ));
                s.set_type(g);
                s.set_description(format!("{} See {}.", l.why, l.doc));
                s
            } else {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!(
                    "failed, not counted ({}): sent {}; expected {}, got {}",
                    match g {
                        "strict" => "--strict makes it count",
                        "framing" => "--strict-http makes it count",
                        _ => "optional",
                    },
                    l.sent,
                    l.expected,
                    l.got
                ));
                s
            };
            let mut case = TestCase::new(l.name.as_str(), status);
            case.set_classname(format!("webhook-bench.verify.{g}"));
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string()
}

/// Pipes would end a Markdown table cell early.
fn cell(s: &str) -> String {
    s.replace('|', "\\\\|").replace('\n', " ")
}

/// The card as Markdown: the verdict, a table of failures first, then the tally per group.
pub fn markdown(card: &Card) -> String {
    let mut out = format!(
        "## webhook-bench verify: {}\n\n`{}`: {}\n\n",
        if card.passed { "PASS" } else { "FAIL" },
        card.target,
        card.summary()
    );
    let failed: Vec<&Line> = card.lines.iter().filter(|l| !l.passed).collect();
    if failed.is_empty() {
        out.push_str("Every case passed.\n\n");
    } else {
        out.push_str(
            "| | group | case | sent | expected | got | why |\n|---|---|---|---|---|---|---|\n",
        );
        for l in failed {
            let counts = l.counts(card.strict, card.strict_http);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} ([contract]({})) |\n",
                if counts { "❌" } else { "⚠️" },
                l.group,
                cell(&l.name),
                cell(&l.sent),
                cell(&l.expected),
                cell(&l.got),
                cell(&l.why),
                l.doc
            ));
        }
        out.push_str("\n❌ fails the card; ⚠️ reported only (`--strict`, `--strict-http` make those groups count).\n\n");
    }
    out.push_str("| group | passed |\n|---|---|\n");
    for g in GROUPS {
        if let Some(t) = card.groups.get(g) {
            out.push_str(&format!("| {g} | {}/{} |\n", t.passed, t.total));
        }
    }
    out
}
