//! The program catalogue and the rules reports check, declared by people in the pipeline.
//!
//! ```toml
//! [reports]
//! reference_date = "2025-10-31"   # ages and deaths are judged at this date (default: today)
//!
//! [[programs]]
//! code = "PKH"
//! name = "Program Keluarga Harapan"
//! owner = "Kemensos"              # Kemensos | province | regency | national ...
//! funding = "APBN"
//! unit = "family"                 # person | family | household
//! max_decile = 3                  # recipients above this welfare decile are inclusion errors
//! eligibility = "welfare_decile <= 3 AND (has_pregnant OR children_under_6 > 0 OR school_age_children > 0)"
//!
//! [[exclusivity]]
//! name = "jamsosratu_not_pkh"
//! unit = "family"
//! description = "Jamsosratu is for families that do not receive PKH"
//! breach = "array_has(programs, 'JAMSOSRATU') AND array_has(programs, 'PKH')"
//! ```
//! Predicates are SQL over the unit's view: `family_view` for family and household programs
//! (a household is the family card here), `person_view` for person programs. Person-level
//! memberships roll up to the family in `family_view.programs`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::Diagnostic;
use super::pipeline::ProgramUnit;

/// `[[programs]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProgram {
    /// Program code, as in the sources' `program.code`.
    pub code: String,
    /// Full name.
    #[serde(default)]
    pub name: String,
    /// Who runs it.
    #[serde(default)]
    pub owner: String,
    /// Where the money comes from.
    #[serde(default)]
    pub funding: String,
    /// Unit of the benefit.
    pub unit: ProgramUnit,
    /// Highest welfare decile the program serves (inclusion errors above it).
    pub max_decile: Option<u8>,
    /// SQL predicate over the unit's view: who is eligible.
    pub eligibility: Option<String>,
}

/// `[[exclusivity]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExclusivity {
    /// Rule name.
    pub name: String,
    /// Unit the rule is checked at.
    pub unit: ProgramUnit,
    /// What the rule says, for the report.
    #[serde(default)]
    pub description: String,
    /// SQL predicate over the unit's view, true when the rule is broken.
    pub breach: String,
}

/// `[reports]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReports {
    /// Date ages and deaths are judged at (YYYY-MM-DD).
    pub reference_date: Option<String>,
}

/// A checked program.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// Funding.
    pub funding: String,
    /// Unit.
    pub unit: ProgramUnit,
    /// Decile cut-off.
    pub max_decile: Option<u8>,
    /// Eligibility predicate.
    pub eligibility: Option<String>,
}

/// A checked exclusivity rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Exclusivity {
    /// Name.
    pub name: String,
    /// Unit.
    pub unit: ProgramUnit,
    /// Description.
    pub description: String,
    /// Breach predicate.
    pub breach: String,
}

/// The checked catalogue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    /// Programs in declaration order.
    pub programs: Vec<Program>,
    /// Exclusivity rules.
    pub exclusivity: Vec<Exclusivity>,
    /// Reference date, if set.
    pub reference_date: Option<chrono::NaiveDate>,
}

/// Codes named as `array_has(programs, 'CODE')` in a predicate.
pub fn referenced_codes(predicate: &str) -> Vec<String> {
    let mut codes = Vec::new();
    let mut rest = predicate;
    while let Some(at) = rest.find("programs,") {
        rest = &rest[at + "programs,".len()..];
        let trimmed = rest.trim_start();
        if let Some(quoted) = trimmed.strip_prefix('\'')
            && let Some(end) = quoted.find('\'')
        {
            codes.push(quoted[..end].to_string());
        }
    }
    codes
}

/// Checks the catalogue: unique codes, known codes in predicates and sources, a valid date.
/// Checks that `predicate` is exactly one SQL expression: a rule is pasted into a `WHERE`
/// clause, so `decile <= 4) OR (1=1` must not break out of it, and `...; DROP` is refused.
pub fn one_expression(predicate: &str) -> Result<(), String> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use datafusion::sql::sqlparser::tokenizer::Token;
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(predicate)
        .map_err(|e| format!("is not SQL: {e}"))?;
    parser
        .parse_expr()
        .map_err(|e| format!("is not one SQL expression: {e}"))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(format!(
            "must be exactly one SQL expression, but it goes on after the expression ends: `{}` at line {} column {} (balance the parentheses; a rule cannot hold more than a condition)",
            next.token, next.span.start.line, next.span.start.column
        ));
    }
    Ok(())
}

pub fn validate(
    file: &Path,
    programs: Vec<RawProgram>,
    exclusivity: Vec<RawExclusivity>,
    reports: RawReports,
    source_codes: &[(usize, String)],
    problems: &mut Vec<Diagnostic>,
) -> Catalogue {
    let mut codes = BTreeSet::new();
    for (i, program) in programs.iter().enumerate() {
        if !codes.insert(program.code.clone()) {
            problems.push(Diagnostic::new(
                file,
                format!("programs[{i}].code"),
                format!("'{}' is declared twice", program.code),
            ));
        }
    }
    let known = |code: &str| codes.contains(code);
    let list = codes.iter().cloned().collect::<Vec<_>>().join(", ");
    let check_predicate = |key: String, predicate: &str, problems: &mut Vec<Diagnostic>| {
        if predicate.trim().is_empty() {
            problems.push(Diagnostic::new(file, key.clone(), "the predicate is empty"));
        } else if let Err(message) = one_expression(predicate) {
            problems.push(Diagnostic::new(file, key.clone(), message));
        }
        for code in referenced_codes(predicate) {
            if !known(&code) {
                problems.push(Diagnostic::new(
                    file,
                    key.clone(),
                    format!("names program '{code}', which [[programs]] does not declare (declared: {list})"),
                ));
            }
        }
    };
    for (i, program) in programs.iter().enumerate() {
        if let Some(predicate) = &program.eligibility {
            check_predicate(format!("programs[{i}].eligibility"), predicate, problems);
        }
        if let Some(d) = program.max_decile
            && !(1..=10).contains(&d)
        {
            problems.push(Diagnostic::new(
                file,
                format!("programs[{i}].max_decile"),
                format!("{d} is not a welfare decile (1-10)"),
            ));
        }
    }
    for (i, rule) in exclusivity.iter().enumerate() {
        check_predicate(format!("exclusivity[{i}].breach"), &rule.breach, problems);
    }
    if !codes.is_empty() {
        for (index, code) in source_codes {
            if !known(code) {
                problems.push(Diagnostic::new(
                    file,
                    format!("sources[{index}].program.code"),
                    format!("'{code}' is not in [[programs]] (declared: {list})"),
                ));
            }
        }
    }
    let reference_date =
        reports
            .reference_date
            .as_deref()
            .and_then(
                |text| match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                    Ok(date) => Some(date),
                    Err(_) => {
                        problems.push(Diagnostic::new(
                            file,
                            "reports.reference_date",
                            format!("'{text}' is not a date like 2025-10-31"),
                        ));
                        None
                    }
                },
            );
    Catalogue {
        programs: programs
            .into_iter()
            .map(|p| Program {
                code: p.code,
                name: p.name,
                owner: p.owner,
                funding: p.funding,
                unit: p.unit,
                max_decile: p.max_decile,
                eligibility: p.eligibility,
            })
            .collect(),
        exclusivity: exclusivity
            .into_iter()
            .map(|r| Exclusivity {
                name: r.name,
                unit: r.unit,
                description: r.description,
                breach: r.breach,
            })
            .collect(),
        reference_date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_is_exactly_one_expression() {
        assert!(
            one_expression("welfare_decile <= 3 AND (has_pregnant OR children_under_6 > 0)")
                .is_ok()
        );
        assert!(
            one_expression("array_has(programs, 'PKH') AND NOT array_has(programs, 'BPNT')")
                .is_ok()
        );
        let breakout = one_expression("welfare_decile <= 4) OR (1=1").unwrap_err();
        assert!(breakout.contains("`)` at line 1 column 20"), "{breakout}");
        assert!(one_expression("alive; DROP TABLE person").is_err());
        assert!(one_expression("welfare_decile <=").is_err());
    }

    #[test]
    fn codes_named_in_predicates_are_found() {
        assert_eq!(
            referenced_codes("array_has(programs, 'PKH') AND NOT array_has(programs,'BPNT')"),
            vec!["PKH", "BPNT"]
        );
        assert!(referenced_codes("welfare_decile <= 2").is_empty());
    }

    #[test]
    fn unknown_codes_duplicates_and_bad_dates_are_named() {
        let program = |code: &str, eligibility: Option<&str>| RawProgram {
            code: code.into(),
            name: String::new(),
            owner: String::new(),
            funding: String::new(),
            unit: ProgramUnit::Family,
            max_decile: Some(11),
            eligibility: eligibility.map(String::from),
        };
        let mut problems = Vec::new();
        validate(
            Path::new("p.toml"),
            vec![
                program("PKH", Some("NOT array_has(programs, 'PKHH')")),
                program("PKH", None),
            ],
            vec![RawExclusivity {
                name: "x".into(),
                unit: ProgramUnit::Family,
                description: String::new(),
                breach: "array_has(programs, 'BST')".into(),
            }],
            RawReports {
                reference_date: Some("31-10-2025".into()),
            },
            &[(3, "BPNT".into())],
            &mut problems,
        );
        let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let all = all.join("\n");
        for expected in [
            "programs[1].code: 'PKH' is declared twice",
            "programs[0].eligibility: names program 'PKHH'",
            "programs[0].max_decile: 11 is not a welfare decile",
            "exclusivity[0].breach: names program 'BST'",
            "sources[3].program.code: 'BPNT' is not in [[programs]]",
            "reports.reference_date: '31-10-2025' is not a date",
        ] {
            assert!(all.contains(expected), "{expected} in:\n{all}");
        }
    }
}
