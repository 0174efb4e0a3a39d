//! Lazy function records: instantiation makes no `VMFuncRef` and no store
//! function per defined function; each is made when its reference first
//! leaves the instance (`ref.func`, an element segment, a constant
//! expression, an export). Whatever path comes first, a function has one
//! identity afterwards, and calls through any of its references work.

use super::*;

/// `n` functions `f<i>` returning `i * 7 + 1`, a table of `n` slots, and
/// exports to fill slots with `ref.func` (in any order) and call them.
fn many_funcs(n: u32) -> String {
    let mut s =
        format!("(module (type $t (func (result i32))) (table (export \"t\") {n} funcref)\n");
    for i in 0..n {
        s += &format!(
            "(func $f{i} (export \"f{i}\") (type $t) i32.const {})\n",
            i * 7 + 1
        );
    }
    // `set (i)` stores ref.func $f<i> into slot i through a br_table.
    s += "(func (export \"set\") (param i32)\n";
    for _ in 0..n {
        s += "(block ";
    }
    s += "(block (br_table";
    for i in 0..n {
        s += &format!(" {i}");
    }
    s += " 0 (local.get 0)))\n";
    for i in 0..n {
        s += &format!("(table.set (local.get 0) (ref.func $f{i})) return)\n",);
    }
    s += ")\n";
    s += "(func (export \"call\") (param i32) (result i32) (call_indirect (type $t) (local.get 0)))\n";
    s + "(elem declare func" + &(0..n).map(|i| format!(" $f{i}")).collect::<String>() + "))"
}

/// Calls `set(i)`: slot `i` gets `ref.func $f<i>`.
fn set(store: &mut Store<()>, inst: &Instance, i: u32) {
    let f = inst.get_func(&mut *store, "set").unwrap();
    f.call(&mut *store, &[Val::I32(i as i32)], &mut []).unwrap();
}

#[test]
fn ref_func_in_any_order_calls_the_right_function() {
    let n = 64;
    for b in BOTH {
        let m = load(&many_funcs(n), b);
        let mut store = Store::new(engine(), ());
        let inst = instantiate(&mut store, &m);
        // Before any ref.func, the slots are null.
        let trap = expect_trap(call_i32(&mut store, &inst, "call", &[Val::I32(3)]));
        assert_eq!(trap.code, TrapCode::IndirectCallToNull);
        // A scattered order; some functions twice.
        let order: Vec<u32> = (0..n)
            .map(|i| (i * 37 + 11) % n)
            .chain([5, 5, 63])
            .collect();
        for &i in &order {
            set(&mut store, &inst, i);
        }
        let t = inst.get_table(&mut store, "t").unwrap();
        for i in 0..n {
            let got = call_i32(&mut store, &inst, "call", &[Val::I32(i as i32)]).unwrap();
            assert_eq!(got, (i * 7 + 1) as i32, "{b:?} slot {i}");
            // One identity per function: the table's and the export's.
            let Some(Val::FuncRef(Some(from_table))) = t.get(&mut store, i) else {
                panic!("slot {i} is not a function");
            };
            let export = inst.get_func(&mut store, &format!("f{i}")).unwrap();
            assert_eq!(from_table, export, "{b:?} function {i}: two identities");
            let mut r = [Val::I32(0)];
            from_table.call(&mut store, &[], &mut r).unwrap();
            assert_eq!(r[0].i32(), Some((i * 7 + 1) as i32));
        }
    }
}

/// The export is asked for first, then `ref.func`, then an element
/// segment of another instance's table import: still one function.
#[test]
fn export_first_then_ref_func_is_the_same_function() {
    let m = load(&many_funcs(4), Bounds::Guard);
    let mut store = Store::new(engine(), ());
    let inst = instantiate(&mut store, &m);
    let f2 = inst.get_func(&mut store, "f2").unwrap();
    assert_eq!(f2, inst.get_func(&mut store, "f2").unwrap());
    set(&mut store, &inst, 2);
    let t = inst.get_table(&mut store, "t").unwrap();
    assert!(matches!(t.get(&mut store, 2), Some(Val::FuncRef(Some(f))) if f == f2));

    // Another instance imports f2 and the table, and its element segment
    // and ref.func of the import all name the same function.
    let user = load(
        r#"(module
             (type $t (func (result i32)))
             (import "m" "f2" (func $g (type $t)))
             (import "m" "t" (table 4 funcref))
             (global (export "gf") funcref (ref.func $g))
             (elem (i32.const 0) func $g)
             (func (export "r") (result funcref) ref.func $g))"#,
        Bounds::Guard,
    );
    let u = Instance::new(&mut store, &user, &[Extern::Func(f2), Extern::Table(t)]).unwrap();
    assert!(matches!(t.get(&mut store, 0), Some(Val::FuncRef(Some(f))) if f == f2));
    let g = u.get_global(&mut store, "gf").unwrap();
    assert!(matches!(g.get(&mut store), Val::FuncRef(Some(f)) if f == f2));
    let r = u.get_func(&mut store, "r").unwrap();
    let mut out = [Val::I32(0)];
    r.call(&mut store, &[], &mut out).unwrap();
    let Val::FuncRef(Some(via_ref_func)) = out[0].clone() else {
        panic!("ref.func returned {:?}", out[0]);
    };
    assert_eq!(via_ref_func, f2);
    let mut v = [Val::I32(0)];
    via_ref_func.call(&mut store, &[], &mut v).unwrap();
    assert_eq!(v[0].i32(), Some(15));
}

/// A module's own element segment and a `ref.func` global: their functions
/// are made at instantiation (they leave the instance there), the rest on
/// first use; every call works.
#[test]
fn element_segments_and_globals_make_their_functions() {
    for b in BOTH {
        let m = load(
            r#"(module
                 (type $t (func (param i32) (result i32)))
                 (table 3 funcref)
                 (func $a (type $t) (i32.add (local.get 0) (i32.const 1)))
                 (func $b (type $t) (i32.mul (local.get 0) (i32.const 2)))
                 (func $c (type $t) (i32.sub (local.get 0) (i32.const 3)))
                 (elem (i32.const 0) func $b $a)
                 (global $g funcref (ref.func $c))
                 (func (export "call") (param i32 i32) (result i32)
                   (call_indirect (type $t) (local.get 1) (local.get 0)))
                 (func (export "via_global") (param i32) (result i32)
                   (table.set (i32.const 2) (global.get $g))
                   (call_indirect (type $t) (local.get 0) (i32.const 2))))"#,
            b,
        );
        let mut store = Store::new(engine(), ());
        let inst = instantiate(&mut store, &m);
        let call = |s: &mut Store<()>, slot: i32, x: i32| {
            call_i32(s, &inst, "call", &[Val::I32(slot), Val::I32(x)])
        };
        assert_eq!(call(&mut store, 0, 10).unwrap(), 20);
        assert_eq!(call(&mut store, 1, 10).unwrap(), 11);
        assert_eq!(
            expect_trap(call(&mut store, 2, 10)).code,
            TrapCode::IndirectCallToNull
        );
        assert_eq!(
            call_i32(&mut store, &inst, "via_global", &[Val::I32(10)]).unwrap(),
            7
        );
        assert_eq!(call(&mut store, 2, 1).unwrap(), -2);
    }
}
