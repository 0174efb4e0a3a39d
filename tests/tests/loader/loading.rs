//! Loading: from a file and from bytes; host-compatibility errors that name
//! the header field with the artifact's and the host's values (another
//! architecture, CPU features checked against the running CPU, patched
//! header fields); truncated, bit-flipped and foreign files give errors and
//! never crash; `Module` is `Send + Sync` and shared by threads; dropping the
//! last `Module` releases its mappings.

use super::*;

pub(crate) const SMALL: &str = r#"
(module $small
  (memory (export "memory") 1)
  (data (i32.const 16) "small data")
  (global $counter (export "counter") (mut i32) (i32.const 0))
  (func $add (export "add") (param i32 i32) (result i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (i32.add (local.get 0) (local.get 1)))
  (func $read (export "read") (param i32) (result i32)
    (i32.load8_u (local.get 0)))
  (func $boom (export "boom") (unreachable)))
"#;

pub(crate) fn check_small(m: &Module) {
    assert_eq!(m.name(), Some("small"));
    let mut store = Store::new(engine(), ());
    let i = instantiate(&mut store, m);
    let add = i
        .get_typed_func::<(i32, i32), i32>(&mut store, "add")
        .unwrap();
    assert_eq!(add.call(&mut store, (40, 2)).unwrap(), 42);
    assert_eq!(add.call(&mut store, (-1, 1)).unwrap(), 0);
    assert_eq!(
        call_i32(&mut store, &i, "read", &[Val::I32(16)]).unwrap(),
        i32::from(b's')
    );
    let t = expect_trap(
        i.get_func(&mut store, "boom")
            .unwrap()
            .call(&mut store, &[], &mut []),
    );
    assert_eq!(t.code, TrapCode::UnreachableCodeReached);
}

#[test]
fn loads_from_file_and_from_bytes() {
    for b in BOTH {
        let bytes = compile(SMALL, b);
        let dir = TempDir::new("both");
        let path = dir.write("small.o", &bytes);
        let from_file = Module::from_file(engine(), &path).unwrap();
        check_small(&from_file);
        let from_bytes = Module::from_bytes(engine(), &bytes).unwrap();
        check_small(&from_bytes);
        assert_eq!(from_file.header(), from_bytes.header());
        from_file.verify_content_hash().unwrap();
        from_bytes.verify_content_hash().unwrap();
        let want = match b {
            Bounds::Guard => CompileOptions::default().memory,
            Bounds::Explicit => MemoryStrategy::Explicit,
        };
        assert_eq!(
            from_file.header().settings.memory,
            wasmc_format::MemoryLayout::of(want)
        );
    }
    // A file that does not exist names the path.
    let e = Module::from_file(engine(), "/nonexistent/dir/app.o").unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/dir/app.o"), "{e}");
    // The OS error is printed once, also by a printer of the whole chain
    // (the message and every `source()`, as anyhow's `{:#}`).
    let mut chain = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        chain.push_str(&format!(": {c}"));
        cause = c.source();
    }
    assert_eq!(chain.matches("os error 2").count(), 1, "{chain}");
}

#[test]
fn another_architecture_is_refused_naming_the_field() {
    let other = if cfg!(target_arch = "aarch64") {
        ("x86_64-unknown-linux-gnu", "x86_64")
    } else {
        ("aarch64-unknown-linux-gnu", "aarch64")
    };
    let opts = CompileOptions {
        target: Some(other.0.into()),
        ..CompileOptions::default()
    };
    let bytes = compile_with(SMALL, &opts);
    let dir = TempDir::new("arch");
    let path = dir.write("other.o", &bytes);
    for r in [
        Module::from_bytes(engine(), &bytes),
        Module::from_file(engine(), &path),
    ] {
        let e = r.unwrap_err();
        let LoadError::Incompatible(m) = &e else {
            panic!("expected an incompatibility, got {e:?}")
        };
        let arch = m
            .iter()
            .find(|m| m.field == "architecture")
            .expect("architecture mismatch");
        assert_eq!(arch.artifact, other.1);
        assert_eq!(arch.host, std::env::consts::ARCH);
        let msg = e.to_string();
        assert!(
            msg.contains("architecture")
                && msg.contains(other.1)
                && msg.contains(std::env::consts::ARCH),
            "{msg}"
        );
    }
}

/// Every optional x86-64 feature the compiler knows: an artifact that needs
/// it lists it in its header, and loads exactly when the CPU has it.
#[cfg(target_arch = "x86_64")]
#[test]
fn cpu_features_are_checked_against_the_host() {
    let features: [(&str, bool); 8] = [
        ("avx", is_x86_feature_detected!("avx")),
        ("avx2", is_x86_feature_detected!("avx2")),
        ("bmi1", is_x86_feature_detected!("bmi1")),
        ("bmi2", is_x86_feature_detected!("bmi2")),
        ("lzcnt", is_x86_feature_detected!("lzcnt")),
        ("fma", is_x86_feature_detected!("fma")),
        ("avx512f", is_x86_feature_detected!("avx512f")),
        ("avx512vl", is_x86_feature_detected!("avx512vl")),
    ];
    for (name, host_has) in features {
        let opts = CompileOptions {
            cpu: CpuSpec::Features(vec![name.into()]),
            ..CompileOptions::default()
        };
        let bytes = compile_with(SMALL, &opts);
        match Module::from_bytes(engine(), &bytes) {
            Ok(m) => {
                assert!(host_has, "{name}: loaded although the host lacks it");
                assert!(m.header().cpu_features.iter().any(|f| f == name));
                check_small(&m);
            }
            Err(e) => {
                assert!(!host_has, "{name}: refused although the host has it: {e}");
                let LoadError::Incompatible(m) = &e else {
                    panic!("{name}: expected an incompatibility, got {e:?}")
                };
                assert!(
                    m.iter()
                        .any(|m| m.field == "cpu feature" && m.artifact == name),
                    "{m:?}"
                );
                let msg = e.to_string();
                assert!(msg.contains("cpu feature") && msg.contains(name), "{msg}");
            }
        }
    }
    // The baseline loads everywhere wasmc runs (x86-64-v2).
    let base = compile(SMALL, Bounds::Guard);
    let m = Module::from_bytes(engine(), &base).unwrap();
    assert!(m.header().cpu_features.iter().any(|f| f == "sse4.2"));
    assert!(!m.header().cpu_features.iter().any(|f| f == "avx"));
}

/// Finds `needle` in `hay` starting at `from`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn meta_range(bytes: &[u8]) -> std::ops::Range<usize> {
    wasmc_loader::artifact::ParsedArtifact::parse(bytes)
        .unwrap()
        .ranges()
        .meta
        .clone()
}

/// Header fields patched in place (the header is bincode with fixed-width
/// integers: a string is its u64 length then its bytes).
#[test]
fn patched_header_fields_are_refused_naming_the_field() {
    let bytes = compile(SMALL, Bounds::Guard);
    let meta = meta_range(&bytes);
    let arch = std::env::consts::ARCH.as_bytes();
    let mut encoded = (arch.len() as u64).to_le_bytes().to_vec();
    encoded.extend_from_slice(arch);

    // Architecture.
    let at = find(&bytes[..meta.end], &encoded, meta.start).expect("arch in header") + 8;
    let mut patched = bytes.clone();
    patched[at..at + arch.len()].copy_from_slice(&b"sparc64-xx"[..arch.len()]);
    let fake = String::from_utf8(patched[at..at + arch.len()].to_vec()).unwrap();
    let e = Module::from_bytes(engine(), &patched).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("architecture") && msg.contains(&fake) && msg.contains(std::env::consts::ARCH),
        "{msg}"
    );

    // Memory strategy: the layout is the strategy's tag (1 = guard) and
    // the sizes the code assumes; the loader provides only its own sizes
    // and refuses others before it looks at anything else in the header.
    let mut guard = 1u32.to_le_bytes().to_vec();
    guard.extend_from_slice(&(1u64 << 32).to_le_bytes());
    guard.extend_from_slice(&(1u64 << 31).to_le_bytes());
    let at = find(&bytes[..meta.end], &guard, meta.start).expect("strategy in header") + 4;
    let mut patched = bytes.clone();
    patched[at..at + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
    let e = Module::from_bytes(engine(), &patched).unwrap_err();
    assert!(matches!(e, LoadError::Sandbox(_)), "{e:?}");
    assert!(e.to_string().contains("reservation size mismatch"), "{e}");
    assert!(e.to_string().contains("0x100000"), "{e}");
}

#[test]
fn truncated_artifacts_are_errors() {
    let bytes = compile(SMALL, Bounds::Guard);
    let parsed = wasmc_loader::artifact::ParsedArtifact::parse(&bytes).unwrap();
    // Every cut near a section boundary, and every 13th byte elsewhere.
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(13).collect();
    for s in parsed.sections() {
        let (o, n) = (s.file_offset as usize, s.size as usize);
        for c in [o, o + n] {
            cuts.extend(c.saturating_sub(3)..(c + 3).min(bytes.len()));
        }
    }
    cuts.extend(bytes.len() - 64..bytes.len());
    drop(parsed);
    for &n in &cuts {
        assert!(
            Module::from_bytes(engine(), &bytes[..n]).is_err(),
            "truncated to {n} of {} bytes and still loaded",
            bytes.len()
        );
    }
    let dir = TempDir::new("trunc");
    for &n in cuts.iter().step_by(17) {
        let p = dir.write("t.o", &bytes[..n]);
        let e = Module::from_file(engine(), &p).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
}

/// Bit flips anywhere give an error or a module that still works: the safe
/// loading functions check the content hash before any code is executable,
/// so every flip in `.text`, a `.wasmc.*` table or the header is refused,
/// and what loads (flips in ELF bookkeeping no section covers) runs
/// unchanged. The full campaign is in `tests/trust.rs`.
#[test]
fn bit_flips_never_crash_and_are_caught_by_the_hash() {
    let bytes = compile(SMALL, Bounds::Guard);
    let text = wasmc_loader::artifact::ParsedArtifact::parse(&bytes)
        .unwrap()
        .ranges()
        .text
        .clone();
    let (mut ran, mut refused) = (0, 0);
    for i in (0..bytes.len()).filter(|i| !text.contains(i)) {
        let mut b = bytes.clone();
        b[i] ^= 1 << (i % 8);
        match Module::from_bytes(engine(), &b) {
            Err(e) => {
                assert!(!e.to_string().is_empty());
                refused += 1;
            }
            Ok(m) => {
                check_small(&m);
                ran += 1;
            }
        }
    }
    assert!(refused > 100, "only {refused} flips were refused");
    assert!(ran > 0, "ran {ran}");
    for i in text.clone().step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        assert!(
            matches!(
                Module::from_bytes(engine(), &b),
                Err(LoadError::HashMismatch)
            ),
            "flip at {i} in .text passed the content hash"
        );
    }
}

/// The memory layout is covered by the content hash, and a guard of 0 is
/// refused even with the hash recomputed (`tests/trust.rs`).
#[test]
fn content_hash_covers_the_memory_strategy() {
    let bytes = compile(SMALL, Bounds::Guard);
    let meta = meta_range(&bytes);
    let mut guard = 1u32.to_le_bytes().to_vec();
    guard.extend_from_slice(&(1u64 << 32).to_le_bytes());
    guard.extend_from_slice(&(1u64 << 31).to_le_bytes());
    let at = find(&bytes[..meta.end], &guard, meta.start).expect("strategy in header");
    let mut patched = bytes.clone();
    patched[at..at + 4].copy_from_slice(&2u32.to_le_bytes());
    assert!(
        matches!(
            Module::from_bytes(engine(), &patched),
            Err(LoadError::HashMismatch)
        ),
        "a changed memory strategy passed the content hash"
    );
    let mut patched = bytes.clone();
    patched[at + 12..at + 20].copy_from_slice(&0u64.to_le_bytes());
    let e = Module::from_bytes(engine(), &patched).unwrap_err();
    assert!(e.to_string().contains("guard size mismatch"), "{e}");
}

#[test]
fn foreign_and_malformed_files_are_errors() {
    let dir = TempDir::new("foreign");
    let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("this test binary", exe, "not a wasmc artifact"),
        (
            "wasm",
            wat::parse_str(SMALL).unwrap(),
            "not a wasmc artifact",
        ),
        ("text", SMALL.as_bytes().to_vec(), "not a wasmc artifact"),
        ("empty", Vec::new(), "empty"),
        (
            "elf magic only",
            b"\x7fELF\x02\x01\x01".to_vec(),
            "not a wasmc artifact",
        ),
    ];
    // Random bytes (a fixed xorshift stream).
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    cases.push(("random", random, "not a wasmc artifact"));
    // A real artifact whose `.wasmc.meta` section was renamed.
    let mut renamed = compile(SMALL, Bounds::Guard);
    let at = find(
        &renamed,
        format!("{}\0", wasmc_format::sections::ELF_WASMC_META).as_bytes(),
        0,
    )
    .expect("section name");
    renamed[at + 10] = b'X';
    cases.push(("renamed section", renamed, "missing section `.wasmc.meta`"));
    if let Ok(ls) = std::fs::read("/bin/ls") {
        cases.push(("/bin/ls", ls, "not a wasmc artifact"));
    }
    for (what, bytes, expect) in &cases {
        let p = dir.write("f.o", bytes);
        for r in [
            Module::from_file(engine(), &p),
            Module::from_bytes(engine(), bytes),
        ] {
            let e = r.expect_err(what).to_string();
            assert!(e.contains(expect), "{what}: `{e}` lacks `{expect}`");
        }
    }
    // A directory.
    assert!(Module::from_file(engine(), &dir.0).is_err());
}

#[test]
fn module_is_send_sync_and_shared_by_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Module>();
    let m = load(SMALL, Bounds::Guard);
    std::thread::scope(|s| {
        for t in 0..4 {
            let m = &m;
            s.spawn(move || {
                let mut store = Store::new(engine(), ());
                let i = instantiate(&mut store, m);
                let add = i
                    .get_typed_func::<(i32, i32), i32>(&mut store, "add")
                    .unwrap();
                for k in 0..100 {
                    assert_eq!(add.call(&mut store, (t, k)).unwrap(), t + k);
                }
            });
        }
    });
    // Clones moved to threads outlive the original.
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || check_small(&m))
        })
        .collect();
    drop(m);
    for h in handles {
        h.join().unwrap();
    }
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// Loading, instantiating, trapping and dropping many modules returns the
/// process to its mapping count: code, memories and VMContexts are released
/// and the code registry lets go of the module. Runs in a child process,
/// because other tests' threads map and unmap concurrently.
#[test]
fn dropping_modules_releases_mappings() {
    if child_job().as_deref() == Some("maps") {
        let bytes = compile(SMALL, Bounds::Guard);
        let dir = TempDir::new("maps");
        let path = dir.write("m.o", &bytes);
        let cycle = |n: usize| {
            for k in 0..n {
                let m = if k % 2 == 0 {
                    Module::from_file(engine(), &path).unwrap()
                } else {
                    Module::from_bytes(engine(), &bytes).unwrap()
                };
                check_small(&m);
            }
        };
        cycle(4); // warm up: handlers, signal stack, type registry
        let base = map_count();
        // Live modules do hold mappings, so the count can tell.
        let live: Vec<Module> = (0..50)
            .map(|_| Module::from_file(engine(), &path).unwrap())
            .collect();
        let with_live = map_count();
        assert!(with_live >= base + 50, "{base} -> {with_live}");
        drop(live);
        // The allocator may merge or drop a mapping of its own, so the count
        // may fall; a leak would add several per module.
        let after = map_count();
        assert!(
            after <= base + 2,
            "mappings leaked by dropped modules: {base} -> {after}"
        );
        cycle(200);
        let after = map_count();
        assert!(
            after <= base + 2,
            "mappings leaked by 200 load cycles: {base} -> {after}"
        );
        println!("child ok: base {base}, with 50 live {with_live}");
        return;
    }
    let out = run_child(module_path!(), "dropping_modules_releases_mappings", "maps");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("child ok"),
        "child failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
