//! Generators.

use super::*;

pub(crate) const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
pub(crate) const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub(crate) const DIGITS: &[u8] = b"0123456789";
pub(crate) const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub(crate) const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub(crate) const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

pub(crate) fn random_from(charset: &[u8], len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(charset[rng.gen_range(0..charset.len())]))
        .collect()
}

/// Generates one value. `runscope_email` is handled by [`generate_vars`] because it reuses the
/// scenario's other values.
pub(crate) fn generate_value(generator: &str) -> Result<String, String> {
    Ok(match generator {
        "uuid" => uuid::Uuid::new_v4().to_string(),
        "email" => format!(
            "{}{}@example.com",
            random_from(LOWER, 1),
            random_from(LOWER_ALNUM, 11)
        ),
        "upn" => format!(
            "{}{}@contoso.onmicrosoft.com",
            random_from(LOWER, 8),
            random_from(DIGITS, 3)
        ),
        "upn_mixed_case" => format!(
            "{}{}.{}{}{}@Contoso.example",
            random_from(UPPER, 1),
            random_from(LOWER, 5),
            random_from(UPPER, 1),
            random_from(LOWER, 6),
            random_from(DIGITS, 3)
        ),
        "alpha8" => random_from(LETTERS, 8),
        "group_name" => format!("Grp-{}", random_from(LETTERS, 8)),
        "okta_user_id" => format!("00u{}", random_from(ALNUM, 17)),
        "runscope_given" => format!("Runscope{}", random_from(DIGITS, 3)),
        "runscope_family" => format!(
            "{}{}{}",
            random_from(UPPER, 1),
            random_from(LOWER, 8),
            random_from(DIGITS, 3)
        ),
        other => {
            return Err(format!(
                "unknown generator `{other}` (known: {})",
                GENERATORS.join(", ")
            ));
        }
    })
}

/// Evaluates `scenario.generate` once. `runscope_email` is evaluated last and concatenates the
/// values of the scenario's first `runscope_given` and `runscope_family` variables (fresh ones
/// are generated when the scenario defines none).
pub(crate) fn generate_vars(spec: &Map<String, Value>) -> Result<Vars, String> {
    let mut vars = Vars::new();
    let mut given: Option<String> = None;
    let mut family: Option<String> = None;
    let mut emails: Vec<&str> = Vec::new();
    for (name, generator) in spec {
        let Some(generator) = generator.as_str() else {
            return Err(format!(
                "generator of `{name}` must be a string, got {generator}"
            ));
        };
        if generator == "runscope_email" {
            emails.push(name);
            continue;
        }
        let value = generate_value(generator)?;
        if generator == "runscope_given" && given.is_none() {
            given = Some(value.clone());
        }
        if generator == "runscope_family" && family.is_none() {
            family = Some(value.clone());
        }
        vars.insert(name.clone(), Value::String(value));
    }
    for name in emails {
        let given = match &given {
            Some(g) => g.clone(),
            None => generate_value("runscope_given")?,
        };
        let family = match &family {
            Some(f) => f.clone(),
            None => generate_value("runscope_family")?,
        };
        vars.insert(
            name.to_string(),
            Value::String(format!("{given}{family}@atko.com")),
        );
    }
    Ok(vars)
}
