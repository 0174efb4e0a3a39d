//! `wasmc keygen`, `compile --sign`, `sign`, `run --trusted-key` and what
//! `inspect` says about signatures.

use super::common::{example, tmp_dir, wasmc, wasmc_compile};

fn s(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn keygen_sign_run_and_inspect() {
    let dir = tmp_dir("trust");
    let key = dir.join("key");
    let other = dir.join("other");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(&other);
    for k in [&key, &other] {
        let o = wasmc(&["keygen", "-o", k.to_str().unwrap()]);
        assert!(o.status.success(), "{:?}", s(&o));
    }
    let key_s = key.to_str().unwrap();
    let pub_s = format!("{key_s}.pub");
    let other_pub = format!("{}.pub", other.to_str().unwrap());
    // keygen refuses to overwrite a key.
    assert!(!wasmc(&["keygen", "-o", key_s]).status.success());

    let fib = example("fib.wat");
    let plain = dir.join("plain.o");
    let signed = dir.join("signed.o");
    let later = dir.join("later.o");
    wasmc_compile(&fib, &plain, &[]);
    wasmc_compile(&fib, &signed, &["--sign", key_s]);
    wasmc_compile(&fib, &later, &[]);
    let o = wasmc(&["sign", "--key", key_s, later.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", s(&o));
    // Signing at build time and afterwards give the same bytes.
    assert_eq!(
        std::fs::read(&signed).unwrap(),
        std::fs::read(&later).unwrap()
    );
    assert_ne!(
        std::fs::read(&signed).unwrap(),
        std::fs::read(&plain).unwrap()
    );

    let run = |a: &std::path::Path, k: &str| {
        wasmc(&[
            "run",
            "--trusted-key",
            k,
            "--invoke",
            "fib",
            a.to_str().unwrap(),
            "10",
        ])
    };
    let o = run(&signed, &pub_s);
    assert!(o.status.success(), "{:?}", s(&o));
    assert_eq!(s(&o).0.trim(), "55");
    let o = run(&plain, &pub_s);
    assert_eq!(o.status.code(), Some(126), "{:?}", s(&o));
    assert!(s(&o).1.contains("not signed"), "{:?}", s(&o));
    // A module compiled by `run` itself is unsigned too.
    let o = run(&fib, &pub_s);
    assert_eq!(o.status.code(), Some(126), "{:?}", s(&o));
    assert!(s(&o).1.contains("not signed"), "{:?}", s(&o));
    // A key file that cannot be read is a usage error.
    let o = run(&signed, dir.join("missing.pub").to_str().unwrap());
    assert_eq!(o.status.code(), Some(2), "{:?}", s(&o));
    assert!(s(&o).1.contains("--trusted-key"), "{:?}", s(&o));
    let o = run(&signed, &other_pub);
    assert_eq!(o.status.code(), Some(126), "{:?}", s(&o));
    assert!(s(&o).1.contains("not a trusted key"), "{:?}", s(&o));
    // Tampered after signing (one byte of `.text`).
    let mut b = std::fs::read(&signed).unwrap();
    let text = wasmc_loader::artifact::ParsedArtifact::parse(&b)
        .unwrap()
        .ranges()
        .text
        .clone();
    b[text.start + 1] ^= 1;
    let tampered = dir.join("tampered.o");
    std::fs::write(&tampered, &b).unwrap();
    let o = run(&tampered, &pub_s);
    assert!(!o.status.success());
    assert!(s(&o).1.contains("does not verify"), "{:?}", s(&o));
    // Without --trusted-key the damage is still caught, by the hash.
    let o = wasmc(&["run", "--invoke", "fib", tampered.to_str().unwrap(), "10"]);
    assert_eq!(o.status.code(), Some(126), "{:?}", s(&o));
    assert!(
        s(&o)
            .1
            .contains("artifact is damaged: content hash mismatch"),
        "{:?}",
        s(&o)
    );

    // inspect: signed or not, key id, and with --key whether it verifies.
    let o = wasmc(&["inspect", plain.to_str().unwrap()]);
    assert!(s(&o).0.contains("unsigned"), "{}", s(&o).0);
    let o = wasmc(&["inspect", signed.to_str().unwrap(), "--key", &pub_s]);
    let out = s(&o).0;
    assert!(out.contains("signed by key"), "{out}");
    assert!(out.contains("signature verifies"), "{out}");
    let o = wasmc(&[
        "inspect",
        "--json",
        signed.to_str().unwrap(),
        "--key",
        &other_pub,
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["host"]["signature"]["signed"], true);
    assert_eq!(j["signature_check"]["verifies"], false);
    let o = wasmc(&[
        "inspect",
        "--check",
        signed.to_str().unwrap(),
        "--key",
        &other_pub,
    ]);
    assert!(!o.status.success());

    // --json failures are JSON objects.
    let junk = dir.join("junk.o");
    std::fs::write(&junk, b"\x7fELF not really").unwrap();
    let o = wasmc(&["inspect", "--json", junk.to_str().unwrap()]);
    assert!(!o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        j["error"]["message"].as_str().unwrap().contains("junk.o"),
        "{j}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
