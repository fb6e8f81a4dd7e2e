//! The machinery of the authorisation matrix (`tests/authz.rs`): principals, outcome
//! classes, filling a row's parameter template with the world's ids, running one cell on a
//! fresh copy of the world, classifying its answer and scanning it for leaks.
//!
//! Classes. `Ok` is success. `NotFound` is an error identical (code and message, ids aside)
//! to the one the same principal gets for the same request with every resource it may not
//! see replaced by a well-formed id that names nothing (when the request names none of
//! those, every resource of the owner's): the resource is indistinguishable from an absent
//! one. `Denied` is one of the dialect's refusal codes, on something the caller can see (a
//! recipient changing a shared image). `Fails(code)` is any other error with that code: a
//! rule of the domain the call reached (deleting a shared image), or `DryRunOperation`. The
//! five principals without working credentials must get their dialect's authentication
//! code.
//!
//! Leaks. An answer to anyone but the owner leaks when it contains an id or text of the
//! owner's private resources the caller did not send itself (the recipient may see the
//! shared image), or when it answers a request naming the owner's resources it may not see
//! differently than the same request naming absent ones (their existence leaks).

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
    Code(String),
}

fn agrees(expect: Outcome, got: &Got) -> bool {
    match (expect, got) {
        (Outcome::Ok, Got::Ok)
        | (Outcome::NotFound, Got::NotFound(_))
        | (Outcome::Denied, Got::Denied(_)) => true,
        (Outcome::Fails(c), Got::NotFound(g) | Got::Denied(g) | Got::Code(g)) => c == g,
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
                self.coverage.push(format!(
                    "{:?} action {a} has no row in the table",
                    spec.dialect
                ));
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

/// The template with each `{name}` replaced by the world's id in the dialect's form (the
/// ghost for a slot of `hidden`; for `{my_instance}`, `p`'s own instance, the owner's for
/// the principals authentication refuses).
fn expand(
    world: &World,
    template: &str,
    dialect: Dialect,
    p: Principal,
    hidden: &[&str],
) -> String {
    let form = |id: &str| match dialect {
        Dialect::Tencent => id.to_string(),
        Dialect::Alibaba => ikon_api::alibaba::views::to_alibaba(id),
    };
    let mut s = template.to_string();
    for slot in &world.slots {
        let id = if hidden.contains(&slot.name) {
            &slot.ghost
        } else {
            &slot.id
        };
        s = s.replace(&format!("{{{}}}", slot.name), &form(id));
    }
    for (name, id) in &world.plain {
        s = s.replace(&format!("{{{name}}}"), &form(id));
    }
    let mine = world
        .own_instances
        .iter()
        .find(|(q, _)| *q == p)
        .or_else(|| world.own_instances.first())
        .map(|(_, id)| form(id))
        .unwrap_or_default();
    s = s.replace("{my_instance}", &mine);
    // JSON braces are followed by a quote or a brace; `{word}` is an unknown placeholder.
    let left = s.split('{').skip(1).find(|rest| {
        rest.split_once('}').is_some_and(|(w, _)| {
            !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
    });
    assert!(left.is_none(), "unknown placeholder in {template}");
    s
}

/// The credentials `p` signs with.
fn key_of(world: &World, p: Principal) -> &ikon_service::Credentials {
    match p {
        Principal::Other => &world.other,
        Principal::Recipient => &world.recipient,
        Principal::Admin => &world.admin,
        Principal::DisabledKey => &world.owner_key2,
        _ => &world.owner,
    }
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
struct Case<'a> {
    spec: &'a Spec,
    action: &'static str,
    template: &'static str,
    expect: [Outcome; 4],
}

/// Runs a dialect's matrix into `report`: the coverage of its actions, every cell of every
/// row (two rows at a time, each cell on a fresh copy of the world), then [`run_warm`].
pub async fn run_spec(world: &World, spec: &Spec, report: &mut Report) {
    use futures::StreamExt;
    report.check_coverage(spec);
    let rows = futures::stream::iter(spec.rows)
        .map(|(action, template, expect)| async move {
            let case = Case {
                spec,
                action,
                template,
                expect: *expect,
            };
            let mut part = Report::default();
            run_row(world, &case, &mut part).await;
            part
        })
        .buffered(2)
        .collect::<Vec<_>>()
        .await;
    for part in rows {
        report.cells += part.cells;
        report.mismatches.extend(part.mismatches);
        report.leaks.extend(part.leaks);
    }
    run_warm(world, spec, report).await;
}

/// Runs every cell of `case` (one fresh copy of the world each) into `report`.
async fn run_row(world: &World, case: &Case<'_>, report: &mut Report) {
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
    let key = key_of(world, p);
    let how = match p {
        Principal::Unsigned => Signing::Unsigned,
        Principal::BadSignature => Signing::WrongSecret,
        Principal::Stale => Signing::Stale,
        Principal::DisabledKey => {
            let done = accounts.disable_key(&key.secret_id).await;
            assert!(matches!(done, Ok(true)), "disable_key: {done:?}");
            Signing::Good
        }
        Principal::DisabledAccount => {
            let done = accounts.disable_account(&key.account_id).await;
            assert!(matches!(done, Ok(true)), "disable_account: {done:?}");
            Signing::Good
        }
        _ => Signing::Good,
    };
    let request = expand(world, case.template, dialect, p, &[]);
    let answer = send(dialect, env, key, case.action, &request, how).await;
    let label = format!("{dialect:?} {} {} as {p:?}", case.action, case.template);
    if p != Principal::Owner {
        scan(
            world,
            p == Principal::Recipient,
            &request,
            &answer,
            &label,
            report,
        );
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
    if code == "DryRunOperation" {
        // A dry run that would succeed: nothing was refused.
        return Got::Code(code);
    }
    let mentioned = |names: &[&str]| {
        names
            .iter()
            .any(|h| case.template.contains(&format!("{{{h}}}")))
    };
    // Measured against the same request with the resources `p` may not see replaced by
    // absent ones (an answer that differs leaks their existence); when it names none, with
    // every resource of the owner's replaced (a recipient refused on the shared image as if
    // it were absent is `NotFound`, and not a leak: it sees that image; so is the owner
    // naming its image in another region).
    let (hide, leaks) = match hidden(world, p) {
        h if mentioned(&h) => (h, true),
        _ => (world.slots.iter().map(|s| s.name).collect(), false),
    };
    if mentioned(&hide) {
        let dialect = case.spec.dialect;
        let ghost = expand(world, case.template, dialect, p, &hide);
        let absent = send(dialect, env, key, case.action, &ghost, Signing::Good).await;
        let message = unghost(world, &absent.message);
        if absent.code == code && message == answer.message {
            return Got::NotFound(code);
        }
        if leaks {
            report.leaks.push(format!(
                "{dialect:?} {} {} as {p:?}: the owner's resource is told from an absent one: \
                 {code} {:?} against {} {message:?}",
                case.action, case.template, answer.message, absent.code
            ));
        }
    }
    if case.spec.denied.contains(&code.as_str()) {
        Got::Denied(code)
    } else {
        Got::Code(code)
    }
}

/// Records every secret of the owner's in `answer` that the caller did not send (the
/// shared image's are allowed with `shared`).
fn scan(
    world: &World,
    shared: bool,
    request: &str,
    answer: &Answer,
    label: &str,
    report: &mut Report,
) {
    for s in &world.secrets {
        if shared && s.shared {
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

/// The listings (rows of `Describe…` actions every signed principal gets) once more on one
/// copy of the world, every principal after the owner with the listing caches warm; then
/// the owner cancels its share and the recipient asks again: the shared image must be gone
/// from its answers.
async fn run_warm(world: &World, spec: &Spec, report: &mut Report) {
    let dialect = spec.dialect;
    let cell = world.cell().await;
    let env = &cell.env;
    let rows: Vec<&Row> = spec
        .rows
        .iter()
        .filter(|(a, _, e)| a.starts_with("Describe") && e.iter().all(|o| *o == Outcome::Ok))
        .collect();
    for revoked in [false, true] {
        if revoked {
            let owner = ikon_service::Caller {
                account_id: world.owner.account_id.clone(),
                is_admin: false,
                region: world::REGION.into(),
            };
            let done = env
                .svc
                .images()
                .change_shares(
                    &owner,
                    world.id("shared"),
                    std::slice::from_ref(&world.recipient.account_id),
                    ikon_service::ShareChange::Cancel,
                )
                .await;
            assert!(done.is_ok(), "cancelling the share: {done:?}");
        }
        let who: &[Principal] = if revoked {
            &[Principal::Recipient]
        } else {
            &Principal::SIGNED
        };
        for (action, template, _) in &rows {
            for p in who {
                let request = expand(world, template, dialect, *p, &[]);
                let answer = send(
                    dialect,
                    env,
                    key_of(world, *p),
                    action,
                    &request,
                    Signing::Good,
                )
                .await;
                report.cells += 1;
                let when = if revoked {
                    "after the share was cancelled"
                } else {
                    "with warm caches"
                };
                let label = format!("{dialect:?} {action} {template} as {p:?} {when}");
                if !answer.ok() {
                    report.mismatches.push(format!(
                        "{label}: expected Ok, got {}",
                        excerpt(&answer.text)
                    ));
                }
                if *p != Principal::Owner {
                    let shared = *p == Principal::Recipient && !revoked;
                    scan(world, shared, &request, &answer, &label, report);
                }
            }
        }
    }
    cell.finish().await;
}
