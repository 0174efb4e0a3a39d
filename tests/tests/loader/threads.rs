//! Threads: many threads, each with its own store over one shared module,
//! trap and recover concurrently.

use super::*;
use crate::traps::{trap_cases, TRAPS};

#[test]
fn threads_trap_and_recover_concurrently() {
    for b in BOTH {
        let m = load(TRAPS, b);
        std::thread::scope(|s| {
            for t in 0..6 {
                let m = m.clone();
                s.spawn(move || {
                    let mut store = Store::new(engine(), ());
                    let i = instantiate(&mut store, &m);
                    let cases = trap_cases();
                    for k in 0..150usize {
                        let case = &cases[(k + t) % cases.len()];
                        let f = i.get_func(&mut store, case.export).unwrap();
                        let mut r: Vec<Val> = f
                            .ty(&store)
                            .results
                            .iter()
                            .map(|t| Val::default_for(*t))
                            .collect();
                        let tr = expect_trap(f.call(&mut store, &case.args, &mut r));
                        assert_eq!(tr.code, case.code);
                        assert_eq!(frame_names(&tr), case.frames);
                        let v = (t * 1000 + k) as i32;
                        assert_eq!(
                            call_i32(&mut store, &i, "call_ind", &[Val::I32(v), Val::I32(0)])
                                .unwrap(),
                            v
                        );
                    }
                    // Stack overflow on every thread too.
                    let tr = expect_trap(call_i32(&mut store, &i, "inf", &[Val::I32(0)]));
                    assert_eq!(tr.code, TrapCode::StackOverflow);
                });
            }
        });
    }
}
