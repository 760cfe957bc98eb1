//! A deterministic corpus of ~450-byte log events in the seeds' schema.

/// A small, fast, deterministic generator (xorshift64*); no dependency needed for this.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// `n` distinct events, one JSON object per string.
pub fn generate(n: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed | 1);
    let services = ["payment-gateway", "user-profile", "order-api", "search-api"];
    let levels = [
        "info", "INFO", "INFO", "warning", "DEBUG", "debug", "error", "INFO",
    ];
    let names = ["mario.rossi", "giulia.bianchi", "luca.verdi", "anna.neri"];
    (0..n)
        .map(|i| {
            let id = rng.next() % 100_000;
            let path = match rng.next() % 3 {
                0 => format!("/users/{id}/orders"),
                1 => format!("/orders/{id}/items/{}", rng.next() % 100),
                _ => "/search".to_owned(),
            };
            let secret = if i % 4 == 0 { format!(r#","password":"p{}""#, rng.next() % 10_000) } else { String::new() };
            let token = if i % 5 == 0 { format!(r#","token":"tok_{:012x}""#, rng.next() & 0xffff_ffff_ffff) } else { String::new() };
            format!(
                concat!(
                    r#"{{"timestamp":"2025-01-15T10:{:02}:{:02}.{:03}Z","level":"{}","service":"{}","version":"2.1.4","hostname":"web-{:02}","#,
                    r#""trace_id":"{:016x}{:016x}","user_id":"usr_{:016x}","request_id":"req_{:016x}","#,
                    r#""message":"GET {} -> 200 in {}ms","method":"GET","path":"{}","status_code":200,"duration_ms":{}.{},"#,
                    r#""email":"{}@example.com","context":{{"client_ip":"81.2.69.{}"{}}}{}}}"#
                ),
                i / 60 % 60,
                i % 60,
                rng.next() % 1000,
                rng.pick(&levels),
                rng.pick(&services),
                rng.next() % 40,
                rng.next(),
                rng.next(),
                rng.next(),
                rng.next(),
                path,
                rng.next() % 3000,
                path,
                rng.next() % 3000,
                rng.next() % 10,
                rng.pick(&names),
                rng.next() % 255,
                secret,
                token,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_are_valid_json_of_about_450_bytes_and_deterministic() {
        let a = super::generate(200, 7);
        assert_eq!(a, super::generate(200, 7));
        let avg = a.iter().map(String::len).sum::<usize>() / a.len();
        assert!((400..=500).contains(&avg), "average {avg} bytes");
        for e in &a {
            let v: serde_json::Value = serde_json::from_str(e).unwrap();
            assert!(v.is_object());
        }
    }
}
