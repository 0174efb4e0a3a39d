//! Which `.text` offsets are return addresses of call instructions.
//!
//! A stack-map key must be the return address of a call in a Wasm function
//! (see [`wasmc_format::stack_map`]): that is the only PC at which a frame can
//! be suspended while the collector walks it. The loader checks each key
//! against the machine code itself, so that a key moved by damage or by an
//! edit that recomputed the content hash is refused at load instead of
//! leaving the real call site without its map (the collector would then free
//! a reference that frame still holds).
//!
//! The check decodes the instruction that ends at the key, backwards, for the
//! forms the compiler emits (Cranelift's calls):
//!
//! ```text
//! x86-64   E8 rel32          call rel32 (direct; its target must be in .text)
//!          [REX] FF /2 reg   call *%reg (ModRM mod = 11)
//! aarch64  BL imm26          (word & 0xfc000000) == 0x94000000
//!          BLR Xn            (word & 0xfffffc1f) == 0xd63f0000
//! ```
//!
//! On x86-64 a byte sequence can end in such bytes without being one
//! instruction (variable-length encoding), so this catches moved keys with
//! high probability rather than with certainty; on aarch64 (fixed 4-byte
//! instructions) it is exact. Other architectures are not checked.

/// Whether the instruction ending at `.text` offset `ret` is a call, on
/// `arch` (Rust's name, as in the artifact header). `None` if this loader
/// does not decode `arch`.
pub(crate) fn is_call_return(arch: &str, text: &[u8], ret: usize) -> Option<bool> {
    match arch {
        "x86_64" => Some(x86_64(text, ret)),
        "aarch64" => Some(aarch64(text, ret)),
        _ => None,
    }
}

fn x86_64(text: &[u8], ret: usize) -> bool {
    if ret > text.len() {
        return false;
    }
    // call rel32, whose target lies inside `.text` (intra-module calls are
    // resolved by the compiler; nothing else is reached by a direct call).
    if ret >= 5 && text[ret - 5] == 0xe8 {
        let rel = i32::from_le_bytes([text[ret - 4], text[ret - 3], text[ret - 2], text[ret - 1]]);
        let target = ret as i64 + i64::from(rel);
        if (0..text.len() as i64).contains(&target) {
            return true;
        }
    }
    // call *%reg: FF, ModRM with mod = 11 and reg = 2 (0xd0..=0xd7); an
    // optional REX prefix selects r8..r15.
    ret >= 2 && text[ret - 2] == 0xff && text[ret - 1] & 0xf8 == 0xd0
}

fn aarch64(text: &[u8], ret: usize) -> bool {
    if ret < 4 || !ret.is_multiple_of(4) || ret > text.len() {
        return false;
    }
    let w = u32::from_le_bytes([text[ret - 4], text[ret - 3], text[ret - 2], text[ret - 1]]);
    w & 0xfc00_0000 == 0x9400_0000 || w & 0xffff_fc1f == 0xd63f_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_64_calls() {
        // nop; call +0 (to the next instruction); call *%rax; call *%r11; ret
        let text = [0x90, 0xe8, 0, 0, 0, 0, 0xff, 0xd0, 0x41, 0xff, 0xd3, 0xc3];
        let ret = |r| is_call_return("x86_64", &text, r);
        assert_eq!(ret(6), Some(true));
        assert_eq!(ret(8), Some(true));
        assert_eq!(ret(11), Some(true));
        for r in [0, 1, 2, 5, 7, 9, 10, 12, 13, 100] {
            assert_eq!(ret(r), Some(false), "{r}");
        }
        // A direct call whose target leaves `.text` is not one of ours.
        let out = [0xe8, 0xff, 0xff, 0xff, 0x7f];
        assert_eq!(is_call_return("x86_64", &out, 5), Some(false));
    }

    #[test]
    fn aarch64_calls() {
        let mut text = Vec::new();
        for w in [0xd503_201f_u32, 0x9400_0002, 0xd63f_0100, 0xd65f_03c0] {
            // nop; bl +8; blr x8; ret
            text.extend_from_slice(&w.to_le_bytes());
        }
        let ret = |r| is_call_return("aarch64", &text, r);
        assert_eq!(ret(8), Some(true));
        assert_eq!(ret(12), Some(true));
        for r in [0, 4, 6, 16, 20] {
            assert_eq!(ret(r), Some(false), "{r}");
        }
        assert_eq!(is_call_return("riscv64", &text, 8), None);
    }
}
