//! Resident memory of idle sessions, counted by a global allocator:
//! `cargo bench -p kairos-engine --bench memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use kairos_engine::synthetic::{self, Size};
use kairos_engine::world::{AudienceId, AudienceState};
use kairos_engine::{Session, Start};
use kairos_rules::Value;
use kairos_rules::time::Timestamp;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SESSIONS: u64 = 10_000;

fn main() {
    let dep = synthetic::deployment(7, Size::BENCHMARK);
    for with_profile in [false, true] {
        let before = LIVE.load(Ordering::Relaxed);
        let sessions: Vec<Session> = (0..SESSIONS)
            .map(|id| {
                let start = Start {
                    session_id: format!("session-{id:012}"),
                    audience: AudienceId {
                        level: "customer".into(),
                        fields: vec![("customer_id".into(), Value::Int(id as i64))],
                    },
                    profile: with_profile.then(|| synthetic::profile(id)),
                    state: AudienceState::default(),
                    params: vec![],
                    debug: false,
                };
                Session::start(&dep, start, Timestamp(0)).expect("starts").0
            })
            .collect();
        let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / SESSIONS as f64;
        let label = if with_profile {
            "with its 5-field profile"
        } else {
            "without its profile"
        };
        println!("idle session {label}: {bytes:.0} bytes (over {SESSIONS} sessions)");
        drop(sessions);
    }
}
