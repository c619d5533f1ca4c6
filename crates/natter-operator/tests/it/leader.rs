//! Leader election against the fake API server: one holder at a time, renewal keeps it,
//! an expired lease is taken over, a released one at once, and a stale write loses.

use natter_operator::leader::{LEASE_DURATION, LeaseLock};

use crate::fake::FakeApi;

#[tokio::test]
async fn only_one_candidate_leads_until_the_lease_expires() {
    let (client, api) = FakeApi::start();
    let first = LeaseLock::new(client.clone(), "natter-system", "natter-operator", "pod-a");
    let second = LeaseLock::new(client, "natter-system", "natter-operator", "pod-b");

    assert!(
        first.try_acquire().await.unwrap(),
        "the first candidate creates the lease"
    );
    assert!(
        !second.try_acquire().await.unwrap(),
        "a held lease is not taken"
    );
    assert!(first.try_acquire().await.unwrap(), "the holder renews");
    assert!(!second.try_acquire().await.unwrap());

    // The holder stops renewing: once the lease has expired the other candidate takes it,
    // and the old holder, coming back, finds it held.
    api.age_lease("natter-operator", LEASE_DURATION.as_secs() as i64 + 1);
    assert!(
        second.try_acquire().await.unwrap(),
        "an expired lease is taken over"
    );
    assert!(
        !first.try_acquire().await.unwrap(),
        "the old holder no longer leads"
    );
    assert_eq!(api.unexpected(), Vec::<String>::new());
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once() {
    let (client, api) = FakeApi::start();
    let first = LeaseLock::new(client.clone(), "natter-system", "natter-operator", "pod-a");
    let second = LeaseLock::new(client, "natter-system", "natter-operator", "pod-b");
    assert!(first.try_acquire().await.unwrap());
    second.release().await.unwrap();
    assert!(
        !second.try_acquire().await.unwrap(),
        "only the holder can release"
    );
    first.release().await.unwrap();
    assert!(
        second.try_acquire().await.unwrap(),
        "taken without waiting for the lease to expire"
    );
    assert_eq!(api.unexpected(), Vec::<String>::new());
}
