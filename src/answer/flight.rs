//! One decision per callback in this process. Two deliveries of one ICE can arrive together
//! (a proxy retrying on a slow upstream, a duplicate on the network); the first decides, and
//! the others wait for its answer instead of asking the application again. Nothing here is
//! durable: it only joins requests that are alive at the same time, and the journal stays
//! the record of what was answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::time::Instant;

/// An answer as one delivery gave it, for the deliveries that waited on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub body: String,
    /// Where it came from (`application`, `policy`, `fallback`, `journal`).
    pub origin: String,
    /// Whether it is in the journal; if not, a later retry may be answered anew.
    pub stored: bool,
}

/// Where a delivery waits for the answer another one is deciding.
pub type Slot = watch::Receiver<Option<Shared>>;

/// The callbacks being answered in this process, by dedupe key.
#[derive(Debug, Default, Clone)]
pub struct Flights {
    deciding: Arc<Mutex<HashMap<String, Slot>>>,
}

/// Whose turn it is to decide an answer.
pub enum Turn {
    /// Nobody else here is deciding it: decide, then [`Lead::publish`].
    Lead(Lead),
    /// Another delivery is deciding it.
    Follow(Slot),
}

/// The right to decide one callback's answer here. Dropped without publishing (the request
/// failed or was cancelled), it lets the waiting deliveries decide for themselves.
pub struct Lead {
    key: String,
    flights: Flights,
    sender: watch::Sender<Option<Shared>>,
}

impl Flights {
    /// Takes the lead on `key`, or joins the delivery that has it.
    pub fn join(&self, key: &str) -> Turn {
        let mut deciding = self.lock();
        if let Some(slot) = deciding.get(key) {
            return Turn::Follow(slot.clone());
        }
        let (sender, slot) = watch::channel(None);
        deciding.insert(key.to_owned(), slot);
        Turn::Lead(Lead {
            key: key.to_owned(),
            flights: self.clone(),
            sender,
        })
    }

    /// How many callbacks are being decided.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A panic elsewhere cannot leave the map inconsistent: every change is one call.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.deciding
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Lead {
    /// Gives the answer to every delivery waiting on it.
    pub fn publish(self, shared: Shared) {
        // No receiver left is fine: nobody was waiting.
        let _ = self.sender.send(Some(shared));
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.flights.lock().remove(&self.key);
    }
}

/// The leader's answer, if it publishes one before `deadline`; `None` if it gave up (its
/// request failed or was cancelled) or is still deciding at the deadline.
pub async fn follow(mut slot: Slot, deadline: Instant) -> Option<Shared> {
    let published = slot.wait_for(Option::is_some);
    match tokio::time::timeout_at(deadline, published).await {
        Ok(Ok(shared)) => shared.clone(),
        Ok(Err(_)) | Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn shared(body: &str) -> Shared {
        Shared {
            body: body.into(),
            origin: "policy".into(),
            stored: true,
        }
    }

    fn lead(turn: Turn) -> Lead {
        match turn {
            Turn::Lead(lead) => lead,
            Turn::Follow(_) => panic!("expected the lead"),
        }
    }

    fn slot(turn: Turn) -> Slot {
        match turn {
            Turn::Follow(slot) => slot,
            Turn::Lead(_) => panic!("expected to follow"),
        }
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn the_second_delivery_of_a_callback_waits_for_the_first_ones_answer() {
        let flights = Flights::default();
        let first = lead(flights.join("VOICE_ICE:c1"));
        let second = slot(flights.join("VOICE_ICE:c1"));
        let waiting = tokio::spawn(follow(second, soon()));
        first.publish(shared("{\"action\":{\"name\":\"hangup\"}}"));
        let got = waiting.await.unwrap();
        assert_eq!(got, Some(shared("{\"action\":{\"name\":\"hangup\"}}")));
        assert!(
            flights.is_empty(),
            "the lead leaves the map once it has answered"
        );
    }

    #[tokio::test]
    async fn other_callbacks_do_not_wait_on_each_other() {
        let flights = Flights::default();
        let _first = lead(flights.join("VOICE_ICE:c1"));
        let _other = lead(flights.join("VOICE_ICE:c2"));
        assert_eq!(flights.len(), 2);
    }

    #[tokio::test]
    async fn a_lead_that_gives_up_frees_its_followers_and_the_next_delivery_leads() {
        let flights = Flights::default();
        let first = lead(flights.join("k"));
        let second = slot(flights.join("k"));
        let waiting = tokio::spawn(follow(second, soon()));
        drop(first);
        assert_eq!(waiting.await.unwrap(), None);
        let _next = lead(flights.join("k"));
    }

    #[tokio::test]
    async fn a_follower_stops_waiting_at_its_deadline() {
        let flights = Flights::default();
        let _first = lead(flights.join("k"));
        let second = slot(flights.join("k"));
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(follow(second, deadline).await, None);
    }

    #[tokio::test]
    async fn a_follower_joining_after_the_answer_was_published_gets_it() {
        let flights = Flights::default();
        let first = lead(flights.join("k"));
        let second = slot(flights.join("k"));
        first.publish(shared("a"));
        assert_eq!(follow(second, soon()).await, Some(shared("a")));
    }
}
