//! A linker's host functions are made once and shared by every store that
//! instantiates them (`vm::func::SharedHostFunc`): the store gets a record
//! of one only when the host asks for it as a `Func`. These tests check
//! that such an import still behaves as a function of each store: its
//! `Caller` is the calling store's, and every way the import can leave its
//! instance (an export, `ref.func`, a table, an import of another
//! instance, a typed view) gives a working `Func`; and that nothing it
//! needs is freed with the linker or the `InstancePre`.

use super::*;
use wasmc_loader::Caller;

/// Imports `host::id` (the calling store's number) and re-exports it, hands
/// it out as a funcref, and calls through a table it puts it in.
const REEXPORT: &str = r#"
(module
  (import "host" "id" (func $id (param i32) (result i32)))
  (import "host" "twice" (func $twice (param i32) (result i32)))
  (table $t 2 funcref)
  (elem (table $t) (i32.const 1) func $twice)
  (export "id" (func $id))
  (func (export "call_id") (param i32) (result i32) (call $id (local.get 0)))
  (func (export "ref_id") (result funcref) (ref.func $id))
  (func (export "put") (table.set $t (i32.const 0) (ref.func $id)))
  ;; via_table(element, x)
  (func (export "via_table") (param i32 i32) (result i32)
    (call_indirect $t (param i32) (result i32) (local.get 1) (local.get 0))))
"#;

/// A linker whose `host::id` returns its argument plus 1000 times the
/// calling store's data, and `host::twice` doubles its argument.
fn linker() -> Linker<i32> {
    let mut l = Linker::new(engine());
    l.func_wrap("host", "id", |c: Caller<'_, i32>, x: i32| {
        x + 1000 * *c.data()
    })
    .unwrap();
    l.func_wrap("host", "twice", |x: i32| 2 * x).unwrap();
    l
}

fn call(store: &mut Store<i32>, f: &Func, x: i32) -> i32 {
    let mut r = [Val::I32(0)];
    f.call(&mut *store, &[Val::I32(x)], &mut r)
        .unwrap_or_else(|e| panic!("call: {e}"));
    r[0].i32().unwrap()
}

fn export(store: &mut Store<i32>, inst: &Instance, name: &str) -> Func {
    inst.get_func(&mut *store, name)
        .unwrap_or_else(|| panic!("no export {name}"))
}

#[test]
fn each_store_sees_its_own_data_through_one_instance_pre() {
    for b in BOTH {
        let m = load(REEXPORT, b);
        let pre = linker().instantiate_pre(&m).unwrap();
        let mut stores: Vec<(Store<i32>, Instance)> = (1..=3)
            .map(|n| {
                let mut s = Store::new(engine(), n);
                let i = pre.instantiate(&mut s).unwrap();
                (s, i)
            })
            .collect();
        for (s, i) in stores.iter_mut() {
            let n = *s.data();
            let f = export(s, i, "call_id");
            assert_eq!(call(s, &f, 7), 7 + 1000 * n, "{b:?}");
        }
    }
}

#[test]
fn a_shared_import_leaves_its_instance_as_a_working_func() {
    for b in BOTH {
        let m = load(REEXPORT, b);
        let pre = linker().instantiate_pre(&m).unwrap();
        let mut s = Store::new(engine(), 4);
        let inst = pre.instantiate(&mut s).unwrap();

        // The re-exported import, called by the host, typed and dynamic.
        let id = export(&mut s, &inst, "id");
        assert_eq!(call(&mut s, &id, 5), 4005, "{b:?}");
        let typed = inst.get_typed_func::<i32, i32>(&mut s, "id").unwrap();
        assert_eq!(typed.call(&mut s, 6).unwrap(), 4006);
        // One identity: the export twice, and the funcref Wasm makes of it.
        let again = export(&mut s, &inst, "id");
        let r = export(&mut s, &inst, "ref_id");
        let mut out = [Val::FuncRef(None)];
        r.call(&mut s, &[], &mut out).unwrap();
        let Val::FuncRef(Some(from_wasm)) = out[0] else {
            panic!("ref.func gave {:?}", out[0]);
        };
        assert_eq!(call(&mut s, &from_wasm, 1), 4001);
        assert_eq!(call(&mut s, &again, 2), 4002);

        // Through a table: the element segment's import and one `table.set`.
        let via = export(&mut s, &inst, "via_table");
        let mut r = [Val::I32(0)];
        via.call(&mut s, &[Val::I32(1), Val::I32(21)], &mut r)
            .unwrap();
        assert_eq!(r[0].i32(), Some(42));
        export(&mut s, &inst, "put")
            .call(&mut s, &[], &mut [])
            .unwrap();
        via.call(&mut s, &[Val::I32(0), Val::I32(3)], &mut r)
            .unwrap();
        assert_eq!(r[0].i32(), Some(4003));

        // As an import of another instance in the same store.
        let other = load(
            r#"(module (import "x" "f" (func $f (param i32) (result i32)))
                 (func (export "g") (param i32) (result i32)
                   (i32.add (call $f (local.get 0)) (i32.const 1))))"#,
            b,
        );
        let i2 = Instance::new(&mut s, &other, &[Extern::Func(id)]).unwrap();
        let g = export(&mut s, &i2, "g");
        assert_eq!(call(&mut s, &g, 10), 4011);
    }
}

#[test]
fn the_linker_and_instance_pre_may_go_first() {
    let m = load(REEXPORT, Bounds::Guard);
    let mut s = Store::new(engine(), 9);
    let inst = {
        let pre = linker().instantiate_pre(&m).unwrap();
        pre.instantiate(&mut s).unwrap()
        // The linker went with `linker()`'s temporary; `pre` goes here.
    };
    let f = export(&mut s, &inst, "call_id");
    assert_eq!(call(&mut s, &f, 1), 9001);
    let id = export(&mut s, &inst, "id");
    assert_eq!(call(&mut s, &id, 2), 9002);
    // `Linker::instantiate` (no `InstancePre`) too.
    let inst2 = linker().instantiate(&mut s, &m).unwrap();
    let f2 = export(&mut s, &inst2, "call_id");
    assert_eq!(call(&mut s, &f2, 3), 9003);
}

#[test]
fn a_shared_import_of_the_wrong_type_is_refused_by_name() {
    let m = load(
        r#"(module (import "host" "id" (func (param i64) (result i32))))"#,
        Bounds::Guard,
    );
    let e = linker().instantiate_pre(&m).unwrap_err().to_string();
    assert!(e.contains("host") && e.contains("id"), "{e}");
    assert!(e.contains("i64") && e.contains("i32"), "{e}");
}

#[test]
fn instantiation_makes_no_store_record_for_a_shared_import() {
    let m = load(REEXPORT, Bounds::Guard);
    let pre = linker().instantiate_pre(&m).unwrap();
    let mut s = Store::new(engine(), 1);
    let inst = pre.instantiate(&mut s).unwrap();
    // Neither import has a record yet (`twice`, in a lazy table, gets one
    // when its element is first read).
    let before = s.num_function_records();
    let f = export(&mut s, &inst, "call_id");
    assert_eq!(call(&mut s, &f, 0), 1000);
    assert_eq!(s.num_function_records(), before + 1, "only `call_id`");
    export(&mut s, &inst, "id");
    assert_eq!(s.num_function_records(), before + 2, "`id` on first use");
    export(&mut s, &inst, "id");
    assert_eq!(s.num_function_records(), before + 2, "and only once");
}
