//! A first look before looking an id up in a set of a few (`IdScreen`).

/// One bit per hash of an id's length and last eight bytes, about 64 bits
/// per id of the set it was made of. An id whose bit is clear is not in
/// the set; one whose bit is set (the set's, and about one in 64 of the
/// others) is then looked up. Transaction ids are long and begin alike
/// (`T20261005...`, 19 bytes in the generator's exports; a bank's
/// reference number is longer): hashing every row's whole id to look it up
/// in a set of a few (the ids the cases name, the originals refunds name)
/// missed the cache or hashed 19 bytes for nothing on nearly every row.
pub(crate) struct IdScreen {
    bits: Vec<u64>,
    /// 64 less the base-2 log of the number of bits.
    shift: u32,
}

impl IdScreen {
    pub(crate) fn of<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> IdScreen {
        // From 4,096 bits (a few ids) to 16M (2 MB, for 256K ids or more).
        let n_bits = (ids.len().max(1) * 64).next_power_of_two().clamp(1 << 12, 1 << 24);
        let mut screen = IdScreen {
            bits: vec![0; n_bits / 64],
            shift: 64 - n_bits.trailing_zeros(),
        };
        for id in ids {
            let b = screen.bit(id);
            screen.bits[b / 64] |= 1 << (b % 64);
        }
        screen
    }

    fn bit(&self, id: &str) -> usize {
        let id = id.as_bytes();
        let take = id.len().min(8);
        let mut tail = [0u8; 8];
        tail[..take].copy_from_slice(&id[id.len() - take..]);
        let key = u64::from_le_bytes(tail).wrapping_add((id.len() as u64) << 58 | id.len() as u64);
        // Fibonacci hashing: the top bits of the product.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// False: `id` is not one of the ids the screen was made of.
    #[inline]
    pub(crate) fn may_hold(&self, id: &str) -> bool {
        let b = self.bit(id);
        self.bits[b / 64] >> (b % 64) & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_holds_every_named_id_and_lets_few_others_through() {
        // Ids alike but for their last digits, as an export's are; some
        // shorter than eight bytes, one empty.
        let named: Vec<String> = (0..3000)
            .map(|i| format!("T2026100500{:08}", i * 7))
            .chain(["t1", "", "T12345678"].map(String::from))
            .collect();
        let screen = IdScreen::of(named.iter().map(String::as_str));
        assert!(named.iter().all(|id| screen.may_hold(id)));
        let through = (0..100_000)
            .map(|i| format!("T2026100500{:08}", i * 7 + 1))
            .filter(|id| screen.may_hold(id))
            .count();
        // About one in 64 expected; a screen that let through more than
        // one in 16 would save little.
        assert!(through < 100_000 / 16, "{through} of 100,000 let through");
        // Short ids (held whole in the eight bytes) likewise.
        let short = (2..1002).filter(|i| screen.may_hold(&format!("t{i}"))).count();
        assert!(short < 1000 / 16, "{short} of 1,000 short ids let through");
    }
}
