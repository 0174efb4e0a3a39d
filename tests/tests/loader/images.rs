//! Memory images: instantiation maps a memory's initial contents
//! copy-on-write from a sealed memfd copy made at load (from the artifact
//! file itself only on the `unsafe` unchecked path), or copies them where
//! the memory's layout cannot take a mapping. The contents must equal applying the data segments one by one, in
//! order, with the spec's bounds checks; nothing written by one instance may
//! be seen by the next one from the same image or reused reservation.

use super::*;

use wasmc_tests::fuzz::Rng;

enum Seg {
    Const(u32, Vec<u8>),
    Global(Vec<u8>),
    Passive(Vec<u8>),
}

fn wat_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}

/// A module importing global `env.g` and defining one exported memory of
/// `pages` pages with `segs`.
fn module_text(pages: u64, segs: &[Seg]) -> String {
    let mut s =
        format!("(module (import \"env\" \"g\" (global i32)) (memory (export \"mem\") {pages})\n");
    for seg in segs {
        s += &match seg {
            Seg::Const(off, b) => {
                format!("(data (i32.const {}) \"{}\")\n", *off as i32, wat_bytes(b))
            }
            Seg::Global(b) => format!("(data (global.get 0) \"{}\")\n", wat_bytes(b)),
            Seg::Passive(b) => format!("(data \"{}\")\n", wat_bytes(b)),
        };
    }
    s + ")"
}

/// The memory after applying `segs` in order, or the index of the first
/// out-of-bounds segment (with what was applied before it).
fn expected(pages: u64, segs: &[Seg], g: u32) -> (Vec<u8>, Option<u32>) {
    let mut mem = vec![0u8; (pages * 65536) as usize];
    for (i, s) in segs.iter().enumerate() {
        let (off, b) = match s {
            Seg::Const(o, b) => (*o, b),
            Seg::Global(b) => (g, b),
            Seg::Passive(_) => continue,
        };
        let end = u64::from(off) + b.len() as u64;
        if end > mem.len() as u64 {
            return (mem, Some(i as u32));
        }
        mem[off as usize..end as usize].copy_from_slice(b);
    }
    (mem, None)
}

fn random_bytes(r: &mut Rng) -> Vec<u8> {
    let len = match r.below_u64(4) {
        0 => r.below_u64(16),
        1 => r.below_u64(5000),
        2 => 4096 * (1 + r.below_u64(3)),
        _ => r.below_u64(20000),
    } as usize;
    let zeros = r.below_u64(3) == 0;
    (0..len)
        .map(|i| {
            if zeros && (i / 1000) % 2 == 0 {
                0
            } else {
                r.next_u64() as u8
            }
        })
        .collect()
}

fn instantiate_with_g(store: &mut Store<()>, m: &Module, g: u32) -> Result<Instance, Error> {
    let glob = Global::new(
        &mut *store,
        GlobalType {
            ty: ValType::I32,
            mutable: false,
        },
        Val::I32(g as i32),
    )
    .unwrap();
    Instance::new(&mut *store, m, &[Extern::Global(glob)])
}

#[test]
fn images_equal_copying_segments_in_order() {
    let dir = TempDir::new("images");
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut imaged = 0;
    for case in 0..40 {
        let pages = 1 + rng.below_u64(3);
        let size = pages * 65536;
        let g = rng.below_u64(size - 32) as u32;
        let mut segs = Vec::new();
        for _ in 0..1 + rng.below_u64(10) {
            let b = random_bytes(&mut rng);
            let n = b.len() as u64;
            segs.push(match rng.below_u64(10) {
                0 => Seg::Passive(b),
                1 => Seg::Global(b[..b.len().min(32)].to_vec()),
                // Out of bounds: past the end by 1..=n bytes (n > 0).
                2 if case % 4 == 0 && n > 0 => {
                    Seg::Const((size - n + 1 + rng.below_u64(n)) as u32, b)
                }
                3 => Seg::Const((rng.below_u64((size - n) / 4096 + 1) * 4096) as u32, b),
                _ => Seg::Const(rng.below_u64(size - n + 1) as u32, b),
            });
        }
        let wat = module_text(pages, &segs);
        let (want, oob) = expected(pages, &segs, g);
        for b in BOTH {
            let artifact = compile(&wat, b);
            let path = dir.write(&format!("m{case}-{b:?}.o"), &artifact);
            let from_file = Module::from_file(engine(), &path).unwrap();
            let from_bytes = Module::from_bytes(engine(), &artifact).unwrap();
            if !from_file.info().memory_images.is_empty() {
                imaged += 1;
            }
            for m in [&from_file, &from_bytes] {
                let mut store = Store::new(engine(), ());
                match (instantiate_with_g(&mut store, m, g), oob) {
                    (Ok(inst), None) => {
                        let mem = inst.get_memory(&mut store, "mem").unwrap();
                        let got = mem.data(&store);
                        assert!(got == &want[..], "case {case} {b:?}: memory differs\n{wat}");
                    }
                    (
                        Err(Error::Instantiation(InstantiationError::DataSegmentOutOfBounds {
                            segment,
                            memory: 0,
                        })),
                        Some(i),
                    ) => assert_eq!(segment, i, "case {case}"),
                    (r, oob) => panic!("case {case} {b:?}: {:?}, expected oob {oob:?}", r.err()),
                }
            }
        }
    }
    assert!(imaged > 20, "only {imaged} modules had images");
}

/// Which segments the images cover: a prefix that stops at the first
/// segment whose placement is not known at compile time.
#[test]
fn images_stop_at_global_offsets_and_out_of_bounds() {
    let segs = [
        Seg::Const(0, vec![1; 10]),
        Seg::Passive(vec![2; 3]),
        Seg::Global(vec![3; 4]),
        Seg::Const(100, vec![4; 4]),
    ];
    let m = load(&module_text(1, &segs), Bounds::Guard);
    assert_eq!(m.info().image_segments, 2);
    assert_eq!(m.info().memory_images.len(), 1);
    let mut store = Store::new(engine(), ());
    let inst = instantiate_with_g(&mut store, &m, 50).unwrap();
    let mem = inst.get_memory(&mut store, "mem").unwrap();
    let d = mem.data(&store);
    assert_eq!(&d[..10], &[1; 10]);
    assert_eq!(&d[50..54], &[3; 4]);
    assert_eq!(&d[100..104], &[4; 4]);

    let oob = [
        Seg::Const(0, vec![1; 10]),
        Seg::Const(65535, vec![2; 2]),
        Seg::Const(20, vec![3; 2]),
    ];
    let m = load(&module_text(1, &oob), Bounds::Guard);
    assert_eq!(m.info().image_segments, 1);
}

/// Segments into an imported memory are never imaged: an out-of-bounds one
/// fails instantiation with the ones before it written and the ones after
/// it not.
#[test]
fn out_of_bounds_segment_into_imported_memory_keeps_earlier_writes() {
    for b in BOTH {
        let mut store = Store::new(engine(), ());
        let ty = MemoryType {
            min: 1,
            max: None,
            memory64: false,
            shared: false,
        };
        let mem = Memory::new(&mut store, ty).unwrap();
        let m = load(
            r#"(module (import "env" "mem" (memory 1))
                 (data (i32.const 0) "abc")
                 (data (i32.const 65535) "xy")
                 (data (i32.const 10) "zz"))"#,
            b,
        );
        assert_eq!(m.info().image_segments, 0);
        let e = Instance::new(&mut store, &m, &[Extern::Memory(mem)]).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Instantiation(InstantiationError::DataSegmentOutOfBounds {
                    segment: 1,
                    memory: 0
                })
            ),
            "{e}"
        );
        let d = mem.data(&store);
        assert_eq!(&d[..3], b"abc");
        assert_eq!(&d[10..12], &[0, 0]);
    }
}

const DATA_MODULE: &str = r#"(module
  (memory (export "mem") 20)
  (data (i32.const 0) "first page")
  (data (i32.const 70000) "second")
  (func (export "store") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))"#;

fn initial() -> Vec<u8> {
    let mut want = vec![0u8; 20 * 65536];
    want[..10].copy_from_slice(b"first page");
    want[70000..70006].copy_from_slice(b"second");
    want
}

/// Write everywhere, tear down, instantiate again (the reservation comes
/// back from the pool): the memory is the initial image again. Two live
/// instances of one image do not see each other's writes.
#[test]
fn no_leak_between_instances_of_one_image() {
    for b in BOTH {
        let m = load(DATA_MODULE, b);
        let empty = load(r#"(module (memory (export "mem") 20))"#, b);
        assert!(!m.info().memory_images.is_empty());
        let want = initial();
        for round in 0..6u8 {
            let mut store = Store::new(engine(), ());
            let inst = instantiate(&mut store, &m);
            let mem = inst.get_memory(&mut store, "mem").unwrap();
            assert!(
                mem.data(&store) == &want[..],
                "{b:?} round {round}: not the image"
            );
            // Through Wasm (faults the copy-on-write pages) and the host.
            for at in [0, 5, 4096, 70001, 20 * 65536 - 1] {
                call_i32(&mut store, &inst, "store", &[Val::I32(at), Val::I32(0x5a)]).ok();
            }
            mem.data_mut(&mut store).fill(round + 1);
            assert_eq!(
                call_i32(&mut store, &inst, "load", &[Val::I32(70000)]).unwrap(),
                i32::from(round + 1)
            );
            mem.grow(&mut store, 1).unwrap();
            mem.data_mut(&mut store)[20 * 65536 + 7] = 9;

            // A second instance of the same image in another store.
            let mut other = Store::new(engine(), ());
            let inst2 = instantiate(&mut other, &m);
            let mem2 = inst2.get_memory(&mut other, "mem").unwrap();
            assert!(
                mem2.data(&other) == &want[..],
                "{b:?} round {round}: sees a write"
            );
            drop(store);
            drop(other);

            // A module without data reuses the released reservations: it
            // sees neither the writes nor the image.
            let mut store = Store::new(engine(), ());
            let inst = instantiate(&mut store, &empty);
            let mem = inst.get_memory(&mut store, "mem").unwrap();
            assert!(
                mem.data(&store).iter().all(|x| *x == 0),
                "{b:?} round {round}: a reused reservation is not zero"
            );
        }
    }
}

/// The artifact on disk is not changed by writes to the memory (the mapping
/// is private), also when the images are mapped from the file itself.
#[test]
fn writes_do_not_reach_the_artifact_file() {
    let dir = TempDir::new("images-file");
    let artifact = compile(DATA_MODULE, Bounds::Guard);
    let path = dir.write("m.o", &artifact);
    // SAFETY: the file is not changed while the module lives.
    let m = unsafe { Module::from_file_unchecked(engine(), &path) }.unwrap();
    let mut store = Store::new(engine(), ());
    let inst = instantiate(&mut store, &m);
    let mem = inst.get_memory(&mut store, "mem").unwrap();
    mem.data_mut(&mut store)[..4096].fill(0xee);
    drop(store);
    assert!(std::fs::read(&path).unwrap() == artifact);
}

/// Where `needle` is in `hay` (once).
fn find_once(hay: &[u8], needle: &[u8]) -> usize {
    let at: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "{} occurrences", at.len());
    at[0]
}

/// The safe loading paths never map memory images from the artifact file:
/// a rewrite of the file's image bytes in place (what a careless deploy
/// does) reaches neither a live instance nor a new one. (The unchecked path
/// maps the file; its contract forbids exactly this.)
#[test]
fn safe_load_does_not_map_images_from_the_file() {
    let dir = TempDir::new("images-rewrite");
    let artifact = compile(DATA_MODULE, Bounds::Guard);
    let path = dir.write("m.o", &artifact);
    let at = find_once(&artifact, b"first page") as u64;
    let m = Module::from_file(engine(), &path).unwrap();
    assert!(!m.info().memory_images.is_empty());
    let mut store = Store::new(engine(), ());
    let before = instantiate(&mut store, &m);
    // Rewrite the image's bytes in the file, in place (same inode).
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"CHANGED!!!", at).unwrap();
        f.sync_all().unwrap();
    }
    assert!(std::fs::read(&path).unwrap() != artifact);
    let after = instantiate(&mut store, &m);
    for inst in [before, after] {
        let mem = inst.get_memory(&mut store, "mem").unwrap();
        assert_eq!(&mem.data(&store)[..10], b"first page");
        assert!(mem.data(&store) == &initial()[..]);
    }

    // What backs the image pages: the sealed memfd, not the file.
    let mem = before.get_memory(&mut store, "mem").unwrap();
    let line = mapping_of(mem.data(&store).as_ptr() as usize);
    assert!(line.contains("memfd:wasmc-artifact"), "{line}");
    assert!(!line.contains("m.o"), "{line}");

    // The unchecked path maps the file itself.
    std::fs::write(&path, &artifact).unwrap();
    // SAFETY: the file is not changed while the module lives.
    let m2 = unsafe { Module::from_file_unchecked(engine(), &path) }.unwrap();
    let mut store = Store::new(engine(), ());
    let inst = instantiate(&mut store, &m2);
    let mem = inst.get_memory(&mut store, "mem").unwrap();
    assert!(mem.data(&store) == &initial()[..]);
    let line = mapping_of(mem.data(&store).as_ptr() as usize);
    assert!(line.ends_with("/m.o"), "{line}");
}

/// `from_bytes` keeps only `.wasmc.data` in the sealed memfd (the rest of
/// the verified copy is private anonymous memory), and the images are
/// still mapped from it, not copied.
#[test]
fn a_safe_load_from_bytes_maps_images_from_its_sealed_data() {
    let artifact = compile(DATA_MODULE, Bounds::Guard);
    let m = Module::from_bytes(engine(), &artifact).unwrap();
    let mut store = Store::new(engine(), ());
    let inst = instantiate(&mut store, &m);
    let mem = inst.get_memory(&mut store, "mem").unwrap();
    assert!(mem.data(&store) == &initial()[..]);
    let line = mapping_of(mem.data(&store).as_ptr() as usize);
    assert!(line.contains("memfd:wasmc-artifact"), "{line}");
    // The code is not in a memfd: no artifact memfd is mapped executable
    // (in this process, whatever other tests load meanwhile).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        !maps
            .lines()
            .any(|l| l.contains("memfd:wasmc-artifact") && l.contains("r-x")),
        "an executable memfd mapping:\n{maps}"
    );
}

/// The line of `/proc/self/maps` whose range holds `addr`.
fn mapping_of(addr: usize) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines()
        .find(|l| {
            let range = l.split(' ').next().unwrap();
            let (a, b) = range.split_once('-').unwrap();
            let a = usize::from_str_radix(a, 16).unwrap();
            let b = usize::from_str_radix(b, 16).unwrap();
            (a..b).contains(&addr)
        })
        .unwrap_or_else(|| panic!("{addr:#x} not mapped"))
        .to_string()
}
