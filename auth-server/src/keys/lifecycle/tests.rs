use super::*;

fn at(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap()
}

/// A key created at `created`, signing from `active` (if set).
fn key(kid: &str, created: i64, active: Option<i64>) -> KeyMeta {
    KeyMeta {
        kid: kid.into(),
        created_at: at(created),
        active_from: active.map(at),
        retired_at: None,
        revoked_at: None,
    }
}

fn revoked(mut meta: KeyMeta, when: i64) -> KeyMeta {
    meta.revoked_at = Some(at(when));
    meta
}

const TTL: Duration = Duration::from_secs(900);
const LEEWAY: Duration = Duration::from_secs(60);
const LEAD: Duration = Duration::from_secs(360);

fn states(metas: &[KeyMeta], now: i64) -> Vec<KeyState> {
    metas.iter().map(|m| state(m, metas, at(now))).collect()
}

#[test]
fn the_latest_started_key_signs_and_an_unscheduled_key_is_next() {
    let metas = [key("a", 0, Some(0)), key("b", 10, None)];
    assert_eq!(pick_active(&metas, at(100)).unwrap().kid, "a");
    assert_eq!(states(&metas, 100), [KeyState::Active, KeyState::Next]);
}

#[test]
fn a_scheduled_key_takes_over_exactly_at_active_from() {
    let metas = [key("a", 0, Some(0)), key("b", 10, Some(500))];
    assert_eq!(states(&metas, 499), [KeyState::Active, KeyState::Next]);
    assert_eq!(states(&metas, 500), [KeyState::Retired, KeyState::Active]);
}

#[test]
fn equal_start_times_are_broken_by_kid() {
    let metas = [key("y", 0, Some(10)), key("x", 0, Some(10))];
    assert_eq!(pick_active(&metas, at(10)).unwrap().kid, "y");
}

#[test]
fn a_revoked_key_never_signs_and_is_never_published() {
    let metas = [key("a", 0, Some(0)), revoked(key("b", 10, Some(20)), 30)];
    assert_eq!(pick_active(&metas, at(40)).unwrap().kid, "a");
    assert_eq!(states(&metas, 40), [KeyState::Active, KeyState::Revoked]);
    assert!(!is_published(&metas[1], &metas, at(40), TTL, LEEWAY));
}

#[test]
fn an_old_directory_key_retired_explicitly_stays_retired() {
    let mut old = key("old", 0, Some(0));
    old.retired_at = Some(at(50));
    let metas = [old, key("cur", 50, Some(50))];
    assert_eq!(states(&metas, 60), [KeyState::Retired, KeyState::Active]);
    assert_eq!(retired_at(&metas[0], &metas), Some(at(50)));
}

#[test]
fn a_key_retires_when_its_successor_takes_over() {
    let metas = [
        key("a", 0, Some(0)),
        key("b", 10, Some(500)),
        key("c", 20, None),
    ];
    assert_eq!(retired_at(&metas[0], &metas), Some(at(500)));
    assert_eq!(retired_at(&metas[1], &metas), None);
    assert_eq!(
        retired_at(&metas[2], &metas),
        None,
        "a next key never retired"
    );
}

#[test]
fn a_successor_revoked_before_it_started_does_not_retire_anyone() {
    let metas = [key("a", 0, Some(0)), revoked(key("b", 10, Some(500)), 100)];
    assert_eq!(retired_at(&metas[0], &metas), None);
    assert_eq!(pick_active(&metas, at(600)).unwrap().kid, "a");
}

#[test]
fn a_successor_revoked_after_it_started_still_retired_its_predecessor() {
    let metas = [
        key("a", 0, Some(0)),
        revoked(key("b", 10, Some(500)), 700),
        key("c", 20, Some(700)),
    ];
    assert_eq!(retired_at(&metas[0], &metas), Some(at(500)));
    assert_eq!(pick_active(&metas, at(800)).unwrap().kid, "c");
}

#[test]
fn next_and_active_keys_are_always_published() {
    let metas = [key("a", 0, Some(0)), key("b", 10, None)];
    for m in &metas {
        assert!(is_published(m, &metas, at(10_000_000), TTL, LEEWAY));
    }
}

#[test]
fn a_retired_key_is_published_until_its_last_token_expires_plus_the_leeway() {
    let metas = [key("a", 0, Some(0)), key("b", 10, Some(1000))];
    let a = &metas[0];
    assert!(is_published(a, &metas, at(999), TTL, LEEWAY));
    assert!(is_published(a, &metas, at(1000 + 900 + 59), TTL, LEEWAY));
    assert!(!is_published(a, &metas, at(1000 + 900 + 60), TTL, LEEWAY));
}

#[test]
fn the_signing_key_is_published_even_if_a_revoked_successor_retired_it() {
    // Only a hand-edited store gets here: the revoked successor left `a` the only signer.
    let metas = [key("a", 0, Some(0)), revoked(key("b", 10, Some(20)), 30)];
    assert!(is_published(&metas[0], &metas, at(100_000), TTL, LEEWAY));
}

#[test]
fn activation_waits_for_the_lead_after_publication() {
    assert_eq!(
        activation_time(at(100), at(150), LEAD, Some(at(0))),
        at(460)
    );
    assert_eq!(
        activation_time(at(100), at(1000), LEAD, Some(at(0))),
        at(1000),
        "published long ago: now"
    );
    let just_after = activation_time(at(0), at(10), Duration::ZERO, Some(at(10)));
    assert!(
        just_after > at(10),
        "strictly after the current key started"
    );
}

#[test]
fn rotation_schedules_the_oldest_next_key_after_its_lead() {
    let metas = [
        key("a", 0, Some(0)),
        key("n2", 200, None),
        key("n1", 100, None),
    ];
    let plan = plan_rotation(&metas, at(150), LEAD, false).unwrap();
    assert_eq!(plan.kid, "n1");
    assert_eq!(plan.active_from, at(100 + 360));
}

#[test]
fn rotation_refuses_while_another_is_scheduled() {
    let metas = [
        key("a", 0, Some(0)),
        key("n1", 100, Some(460)),
        key("n2", 150, None),
    ];
    let err = plan_rotation(&metas, at(200), LEAD, false).unwrap_err();
    assert_eq!(
        err,
        RotationError::AlreadyScheduled {
            kid: "n1".into(),
            active_from: at(460)
        }
    );
    // Once it has taken over, the next rotation schedules the following key.
    let plan = plan_rotation(&metas, at(500), LEAD, false).unwrap();
    assert_eq!((plan.kid.as_str(), plan.active_from), ("n2", at(510)));
}

#[test]
fn an_immediate_rotation_promotes_the_scheduled_key_at_once() {
    let metas = [
        key("a", 0, Some(0)),
        key("n1", 100, Some(460)),
        key("n2", 150, None),
    ];
    let plan = plan_rotation(&metas, at(200), LEAD, true).unwrap();
    assert_eq!((plan.kid.as_str(), plan.active_from), ("n1", at(200)));
}

#[test]
fn rotation_without_a_next_key_is_an_error() {
    let metas = [key("a", 0, Some(0))];
    assert_eq!(
        plan_rotation(&metas, at(10), LEAD, false),
        Err(RotationError::NoNextKey)
    );
    assert_eq!(
        plan_rotation(&metas, at(10), LEAD, true),
        Err(RotationError::NoNextKey)
    );
}

#[test]
fn a_next_key_is_needed_when_only_scheduled_or_spent_keys_remain() {
    assert!(needs_next_key(&[key("a", 0, Some(0))]));
    assert!(needs_next_key(&[
        key("a", 0, Some(0)),
        key("b", 1, Some(9))
    ]));
    assert!(needs_next_key(&[
        key("a", 0, Some(0)),
        revoked(key("b", 1, None), 2)
    ]));
    assert!(!needs_next_key(&[key("a", 0, Some(0)), key("b", 1, None)]));
}

#[test]
fn automatic_rotation_is_due_when_enabled_old_enough_and_not_already_scheduled() {
    let day = Duration::from_secs(86_400);
    let metas = [key("a", 0, Some(0)), key("b", 10, None)];
    assert!(!rotation_due(&metas, at(10 * 86_400), None));
    assert!(!rotation_due(&metas, at(86_399), Some(day)));
    assert!(rotation_due(&metas, at(86_400), Some(day)));
    let scheduled = [key("a", 0, Some(0)), key("b", 10, Some(90_000))];
    assert!(!rotation_due(&scheduled, at(86_400), Some(day)));
}

#[test]
fn revoking_the_active_key_promotes_the_next_key_at_once() {
    let metas = [key("a", 0, Some(0)), key("b", 10, None)];
    let plan = plan_revocation(&metas, "a", at(100)).unwrap();
    assert_eq!(
        plan.promote,
        Some(Promotion {
            kid: "b".into(),
            active_from: at(100)
        })
    );
    let plan = plan_revocation(&metas, "b", at(100)).unwrap();
    assert_eq!(plan.promote, None, "a next key just goes");
}

#[test]
fn revocation_refuses_unknown_repeated_and_last_keys() {
    let metas = [key("a", 0, Some(0)), revoked(key("b", 10, None), 20)];
    assert_eq!(
        plan_revocation(&metas, "zz", at(30)),
        Err(RevocationError::UnknownKey("zz".into()))
    );
    assert_eq!(
        plan_revocation(&metas, "b", at(30)),
        Err(RevocationError::AlreadyRevoked("b".into()))
    );
    assert_eq!(
        plan_revocation(&metas, "a", at(30)),
        Err(RevocationError::LastKey("a".into()))
    );
}

#[test]
fn times_are_kept_at_microsecond_precision() {
    assert_eq!(now().timestamp_subsec_nanos() % 1000, 0);
}
