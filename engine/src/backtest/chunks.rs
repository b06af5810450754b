//! Events handed from the parsers to the replays in replay order, a chunk
//! at a time, as soon as each chunk is parsed: the replays start while the
//! rest of the history is still being parsed, and every replay reads the
//! same chunks without copying them.

use std::sync::{Arc, Condvar, Mutex};

use crate::event::Event;

/// Events per chunk: large enough that handing one over costs nothing next
/// to deciding it, small enough that a replay starts soon.
pub const CHUNK_EVENTS: usize = 4096;

/// One chunk of events, in replay order.
pub type Chunk = Arc<Vec<Arc<Event>>>;

enum Slot {
    Pending,
    Ready(Chunk),
    /// The chunk could not be parsed: replays stop here.
    Failed,
}

/// The chunks of one history, filled in any order and read in order.
pub struct Chunks {
    slots: Mutex<Vec<Slot>>,
    filled: Condvar,
    events: usize,
}

impl Chunks {
    /// `count` chunks still to be parsed, `events` events in all.
    pub fn pending(count: usize, events: usize) -> Self {
        Chunks {
            slots: Mutex::new((0..count).map(|_| Slot::Pending).collect()),
            filled: Condvar::new(),
            events,
        }
    }

    /// The chunks of events already in memory.
    pub fn ready(events: &[Arc<Event>]) -> Self {
        let slots = events
            .chunks(CHUNK_EVENTS)
            .map(|chunk| Slot::Ready(Arc::new(chunk.to_vec())))
            .collect();
        Chunks {
            slots: Mutex::new(slots),
            filled: Condvar::new(),
            events: events.len(),
        }
    }

    /// How many chunks there are.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many events there are in all.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Hand over chunk `at`, or say it failed (`None`).
    pub fn fill(&self, at: usize, chunk: Option<Chunk>) {
        self.lock()[at] = match chunk {
            Some(chunk) => Slot::Ready(chunk),
            None => Slot::Failed,
        };
        self.filled.notify_all();
    }

    /// Chunk `at`, waiting until it is parsed; `None` if it failed.
    pub fn get(&self, at: usize) -> Option<Chunk> {
        let mut slots = self.lock();
        loop {
            match &slots[at] {
                Slot::Ready(chunk) => return Some(chunk.clone()),
                Slot::Failed => return None,
                Slot::Pending => {
                    slots = self
                        .filled
                        .wait(slots)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        // A parser that panicked leaves its slot pending; the panic is
        // reported when its thread is joined, so the data is still sound.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Entity;

    fn event(n: usize) -> Arc<Event> {
        Arc::new(Event::new(
            format!("e{n}"),
            "k",
            n as i64,
            Entity::account("a"),
        ))
    }

    #[test]
    fn chunks_filled_out_of_order_are_read_in_order() {
        let chunks = Chunks::pending(3, 3);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                (0..3)
                    .map(|at| chunks.get(at).map(|c| c[0].id.clone()))
                    .collect::<Vec<_>>()
            });
            for at in [2, 0, 1] {
                chunks.fill(at, Some(Arc::new(vec![event(at)])));
            }
            let read = reader.join().unwrap();
            assert_eq!(
                read,
                [Some("e0".into()), Some("e1".into()), Some("e2".into())]
            );
        });
    }

    #[test]
    fn a_failed_chunk_stops_the_reader() {
        let chunks = Chunks::pending(2, 2);
        chunks.fill(1, Some(Arc::new(vec![event(1)])));
        chunks.fill(0, None);
        assert!(chunks.get(0).is_none());
        assert!(chunks.get(1).is_some());
    }

    #[test]
    fn events_in_memory_are_cut_into_chunks() {
        let events: Vec<_> = (0..CHUNK_EVENTS + 1).map(event).collect();
        let chunks = Chunks::ready(&events);
        assert_eq!((chunks.len(), chunks.events()), (2, CHUNK_EVENTS + 1));
        assert_eq!(chunks.get(1).unwrap()[0].id, format!("e{CHUNK_EVENTS}"));
    }
}
