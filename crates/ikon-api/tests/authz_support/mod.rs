//! The machinery of the authorisation matrix (`tests/authz.rs`): principals, outcome
//! classes, filling a row's parameter template with the world's ids, running one cell on a
//! fresh copy of the world, classifying its answer and scanning it for leaks.
//!
//! Classes. `Ok` is success. `NotFound` is an error identical (code and message, ids aside)
//! to the one the same principal gets when every id it may not see is replaced by a
//! well-formed id that names nothing: the resource is indistinguishable from an absent
//! one. `Denied` is one of the dialect's refusal codes on something the caller can see
//! (a recipient changing a shared image). `Fails(code)` is the owner reaching a rule of
//! the domain that refuses the call (e.g. deleting a shared image). The five principals
//! without working credentials must get their dialect's authentication code.
//!
//! Leaks. An answer to anyone but the owner leaks when it contains an id or text of the
//! owner's private resources the caller did not send itself (the recipient may see the
//! shared image), or when it answers an error about the owner's resource differently than
//! it answers the same request about an absent one (the resource's existence leaks).

pub mod wire;
pub mod world;

use serde_json::Value;
use wire::{Answer, Signing};
use world::World;

/// The expected class of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Success.
    Ok,
    /// Indistinguishable from an absent resource.
    NotFound,
    /// Refused on a resource the caller can see.
    Denied,
    /// Refused by a rule of the domain with this code (the call reached the rule).
    Fails(&'static str),
}

/// A dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Tencent,
    Alibaba,
}

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The owner of every resource of the world.
    Owner,
    /// An account with nothing to do with them.
    Other,
    /// The account the second image is shared with.
    Recipient,
    /// The platform administrator.
    Admin,
    /// No signature at all.
    Unsigned,
    /// The owner's key with a wrong secret.
    BadSignature,
    /// The owner's key, signed 1000 s ago.
    Stale,
    /// A disabled second key of the owner.
    DisabledKey,
    /// The owner's key after `ikon admin account disable` (resources kept).
    DisabledAccount,
}

impl Principal {
    /// Principals with working credentials, in the order of a row's outcomes.
    pub const SIGNED: [Principal; 4] = [
        Principal::Owner,
        Principal::Other,
        Principal::Recipient,
        Principal::Admin,
    ];
    /// Principals authentication refuses, in the order of a dialect's codes for them.
    pub const REFUSED: [Principal; 5] = [
        Principal::Unsigned,
        Principal::BadSignature,
        Principal::Stale,
        Principal::DisabledKey,
        Principal::DisabledAccount,
    ];
}

/// A row of a dialect's table: action, parameter template (JSON; `{name}` is the id of the
/// world's resource `name` in the dialect's form; for Alibaba, string values, `null` to
/// leave a parameter out) and the outcome for owner, other, recipient and administrator.
pub type Row = (&'static str, &'static str, [Outcome; 4]);

/// What the matrix knows of one dialect.
pub struct Spec {
    pub dialect: Dialect,
    /// Every action the dialect serves (its own list).
    pub actions: Vec<&'static str>,
    pub rows: &'static [Row],
    /// The authentication code for each of [`Principal::REFUSED`].
    pub auth: [&'static str; 5],
    /// The dialect's codes for refusals on visible resources.
    pub denied: &'static [&'static str],
}

/// What a cell got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Ok,
    NotFound(String),
    Denied(String),
    Refused(String),
}

fn agrees(expect: Outcome, got: &Got) -> bool {
    match (expect, got) {
        (Outcome::Ok, Got::Ok)
        | (Outcome::NotFound, Got::NotFound(_))
        | (Outcome::Denied, Got::Denied(_)) => true,
        (Outcome::Fails(c), Got::NotFound(g) | Got::Denied(g) | Got::Refused(g)) => c == g,
        _ => false,
    }
}

/// The matrix's findings.
#[derive(Debug, Default)]
pub struct Report {
    pub cells: usize,
    pub mismatches: Vec<String>,
    pub leaks: Vec<String>,
    /// Actions without a row, rows for actions that do not exist.
    pub coverage: Vec<String>,
}

impl Report {
    /// Checks that every action of the dialect has a row and every row an action.
    pub fn check_coverage(&mut self, spec: &Spec) {
        for a in &spec.actions {
            if !spec.rows.iter().any(|(r, _, _)| r == a) {
                self.coverage
                    .push(format!("{:?} action {a} has no row in the table", spec.dialect));
            }
        }
        for (r, _, _) in spec.rows {
            if !spec.actions.contains(r) {
                self.coverage.push(format!(
                    "{:?} table has a row for {r}, which the dialect does not serve",
                    spec.dialect
                ));
            }
        }
    }

    /// Whether nothing was found.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.leaks.is_empty() && self.coverage.is_empty()
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(400).collect()
}

/// The template with each `{name}` replaced: the world's ids in the dialect's form, those
/// of `hidden` slots by their ghosts.
fn expand(world: &World, template: &str, dialect: Dialect, hidden: &[&str]) -> String {
    let mut s = template.to_string();
    for slot in &world.slots {
        let id = if hidden.contains(&slot.name) {
            &slot.ghost
        } else {
            &slot.id
        };
        let id = match dialect {
            Dialect::Tencent => id.clone(),
            Dialect::Alibaba => ikon_api::alibaba::views::to_alibaba(id),
        };
        s = s.replace(&format!("{{{}}}", slot.name), &id);
    }
    for (name, v) in &world.accounts {
        s = s.replace(&format!("{{{name}}}"), v);
    }
    s
}

/// The slots `p` may not see.
fn hidden(world: &World, p: Principal) -> Vec<&'static str> {
    world
        .slots
        .iter()
        .map(|s| s.name)
        .filter(|n| match p {
            Principal::Owner => false,
            Principal::Recipient => *n != "shared",
            _ => true,
        })
        .collect()
}

/// A ghost's message with the real ids back in.
fn unghost(world: &World, text: &str) -> String {
    let mut s = text.to_string();
    for slot in &world.slots {
        let suffix = |id: &str| id.rsplit('-').next().unwrap_or("").to_string();
        s = s.replace(&suffix(&slot.ghost), &suffix(&slot.id));
    }
    s
}

async fn send(
    dialect: Dialect,
    env: &crate::alibaba_support::Env,
    key: &ikon_service::Credentials,
    action: &str,
    request: &str,
    how: Signing,
) -> Answer {
    let v: Value = serde_json::from_str(request)
        .unwrap_or_else(|e| panic!("template of {action} is not JSON ({e}): {request}"));
    match dialect {
        Dialect::Tencent => wire::tencent(env, key, action, &v, how).await,
        Dialect::Alibaba => {
            let params: Vec<(String, Option<String>)> = v
                .as_object()
                .unwrap_or_else(|| panic!("template of {action} is not an object"))
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k.clone(), Some(s.clone())),
                    Value::Null => (k.clone(), None),
                    other => panic!("{action}: Alibaba parameters are strings: {k} = {other}"),
                })
                .collect();
            wire::alibaba(env, key, action, &params, how).await
        }
    }
}

/// One row of a table.
pub struct Case<'a> {
    pub spec: &'a Spec,
    pub action: &'static str,
    pub template: &'static str,
    pub expect: [Outcome; 4],
}

/// Runs every cell of `case` (one fresh copy of the world each) into `report`.
pub async fn run_row(world: &World, case: &Case<'_>, report: &mut Report) {
    for p in Principal::SIGNED.into_iter().chain(Principal::REFUSED) {
        let cell = world.cell().await;
        run_cell(world, case, &cell.env, p, report).await;
        cell.finish().await;
        report.cells += 1;
    }
}

async fn run_cell(
    world: &World,
    case: &Case<'_>,
    env: &crate::alibaba_support::Env,
    p: Principal,
    report: &mut Report,
) {
    let dialect = case.spec.dialect;
    let accounts = env.svc.accounts();
    let (key, how) = match p {
        Principal::Owner => (&world.owner, Signing::Good),
        Principal::Other => (&world.other, Signing::Good),
        Principal::Recipient => (&world.recipient, Signing::Good),
        Principal::Admin => (&world.admin, Signing::Good),
        Principal::Unsigned => (&world.owner, Signing::Unsigned),
        Principal::BadSignature => (&world.owner, Signing::WrongSecret),
        Principal::Stale => (&world.owner, Signing::Stale),
        Principal::DisabledKey => {
            let done = accounts.disable_key(&world.owner_key2.secret_id).await;
            assert!(matches!(done, Ok(true)), "disable_key: {done:?}");
            (&world.owner_key2, Signing::Good)
        }
        Principal::DisabledAccount => {
            let done = accounts.disable_account(&world.owner.account_id).await;
            assert!(matches!(done, Ok(true)), "disable_account: {done:?}");
            (&world.owner, Signing::Good)
        }
    };
    let request = expand(world, case.template, dialect, &[]);
    let answer = send(dialect, env, key, case.action, &request, how).await;
    let label = format!("{dialect:?} {} {} as {p:?}", case.action, case.template);
    if p != Principal::Owner {
        scan(world, p, &request, &answer, &label, report);
    }
    if let Some(i) = Principal::REFUSED.iter().position(|r| *r == p) {
        let want = case.spec.auth[i];
        if answer.code != want {
            report.mismatches.push(format!(
                "{label}: expected {want}, got {:?}: {}",
                answer.code,
                excerpt(&answer.text)
            ));
        }
        if p == Principal::DisabledAccount {
            // Re-enabled, the account finds everything as it was.
            let done = accounts.enable_account(&world.owner.account_id).await;
            assert!(matches!(done, Ok(true)), "enable_account: {done:?}");
            let again = send(dialect, env, key, case.action, &request, Signing::Good).await;
            let got = classify(world, case, env, key, Principal::Owner, &again, report).await;
            if !agrees(case.expect[0], &got) {
                report.mismatches.push(format!(
                    "{label}, re-enabled: expected {:?} as for the owner, got {got:?}: {}",
                    case.expect[0],
                    excerpt(&again.text)
                ));
            }
        }
        return;
    }
    let i = Principal::SIGNED.iter().position(|s| *s == p).unwrap_or(0);
    let got = classify(world, case, env, key, p, &answer, report).await;
    if !agrees(case.expect[i], &got) {
        report.mismatches.push(format!(
            "{label}: expected {:?}, got {got:?}: {}",
            case.expect[i],
            excerpt(&answer.text)
        ));
    }
}

/// The class of a signed principal's answer (see the module docs); an error that tells a
/// hidden resource from an absent one is also a leak.
async fn classify(
    world: &World,
    case: &Case<'_>,
    env: &crate::alibaba_support::Env,
    key: &ikon_service::Credentials,
    p: Principal,
    answer: &Answer,
    report: &mut Report,
) -> Got {
    if answer.ok() {
        return Got::Ok;
    }
    let code = answer.code.clone();
    let hide = hidden(world, p);
    if hide.iter().any(|h| case.template.contains(&format!("{{{h}}}"))) {
        let dialect = case.spec.dialect;
        let ghost = expand(world, case.template, dialect, &hide);
        let absent = send(dialect, env, key, case.action, &ghost, Signing::Good).await;
        let message = unghost(world, &absent.message);
        if absent.code == code && message == answer.message {
            return Got::NotFound(code);
        }
        report.leaks.push(format!(
            "{dialect:?} {} {} as {p:?}: the owner's resource is told from an absent one: \
             {code} {:?} against {} {message:?}",
            case.action, case.template, answer.message, absent.code
        ));
    }
    if case.spec.denied.contains(&code.as_str()) {
        Got::Denied(code)
    } else {
        Got::Refused(code)
    }
}

/// Records every secret of the owner's in `answer` that `p` may not see and did not send.
fn scan(world: &World, p: Principal, request: &str, answer: &Answer, label: &str, report: &mut Report) {
    for s in &world.secrets {
        if p == Principal::Recipient && s.shared {
            continue;
        }
        if !request.contains(&s.needle) && answer.text.contains(&s.needle) {
            report.leaks.push(format!(
                "{label}: the answer shows {}: {}",
                s.what,
                excerpt(&answer.text)
            ));
        }
    }
}
