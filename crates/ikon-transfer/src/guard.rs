//! SSRF guard for import URLs: which IP addresses the importer may connect to.
//!
//! Refused unless allow-listed: loopback, unspecified, private (RFC 1918, IPv6 ULA),
//! shared/CGNAT (100.64/10, which holds Alibaba's metadata 100.100.100.200), link-local
//! (169.254/16 with the cloud metadata 169.254.169.254; fe80::/10), multicast, broadcast,
//! reserved and documentation ranges, benchmarking, and every IPv6 form that embeds an IPv4
//! address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) judged by that address.
//! AWS's IPv6 metadata address fd00:ec2::254 falls in the ULA range. The allow-list holds
//! addresses and CIDR blocks (`127.0.0.1`, `10.0.0.0/8`, `::1/128`); an allowed entry
//! matches the address after IPv4-mapped forms are reduced to IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address block: network and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Decides which addresses imports may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    allow: Vec<Cidr>,
}

impl Guard {
    /// A guard with an allow-list (`import_allow` in the configuration plus the
    /// `--allow-import-from` flags).
    pub fn new<S: AsRef<str>>(allow: &[S]) -> Result<Guard, String> {
        let allow = allow
            .iter()
            .map(|s| Cidr::parse(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Guard { allow })
    }

    /// `Ok(())` when `ip` may be connected to, else why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let ip = canonical(ip);
        if self.allow.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        match forbidden_class(ip) {
            None => Ok(()),
            Some(class) => Err(format!(
                "address {ip} is {class}; imports from it are refused unless the server allow-lists it (import_allow / --allow-import-from)"
            )),
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) reduced to IPv4; everything else unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Why an address is refused by default (None = a public unicast address).
pub fn forbidden_class(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn in4(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    Cidr {
        addr: IpAddr::V4(Ipv4Addr::from(net)),
        prefix,
    }
    .contains(IpAddr::V4(ip))
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    const TABLE: &[([u8; 4], u8, &str)] = &[
        (
            [169, 254, 169, 254],
            32,
            "the cloud metadata service address",
        ),
        ([100, 100, 100, 200], 32, "a cloud metadata service address"),
        (
            [0, 0, 0, 0],
            8,
            "in the unspecified/this-network block 0.0.0.0/8",
        ),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([10, 0, 0, 0], 8, "a private address (10.0.0.0/8)"),
        ([172, 16, 0, 0], 12, "a private address (172.16.0.0/12)"),
        ([192, 168, 0, 0], 16, "a private address (192.168.0.0/16)"),
        (
            [100, 64, 0, 0],
            10,
            "a shared (carrier-grade NAT) address (100.64.0.0/10)",
        ),
        ([169, 254, 0, 0], 16, "a link-local address"),
        (
            [192, 0, 0, 0],
            24,
            "an IETF protocol assignment (192.0.0.0/24)",
        ),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        (
            [198, 18, 0, 0],
            15,
            "a benchmarking address (198.18.0.0/15)",
        ),
        ([192, 88, 99, 0], 24, "a deprecated 6to4 relay address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([255, 255, 255, 255], 32, "the broadcast address"),
        ([240, 0, 0, 0], 4, "a reserved address (240.0.0.0/4)"),
    ];
    TABLE
        .iter()
        .find(|(net, p, _)| in4(ip, *net, *p))
        .map(|(_, _, why)| *why)
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let bits = u128::from(ip);
    let in6 = |net: u128, prefix: u32| {
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        bits & mask == net & mask
    };
    let embedded =
        |v4: Ipv4Addr, what: &'static str| -> Option<&'static str> { v4_class(v4).map(|_| what) };
    let low_v4 = Ipv4Addr::from(u32::try_from(bits & 0xffff_ffff).unwrap_or(0));
    if ip.is_unspecified() {
        return Some("the unspecified address ::");
    }
    if ip.is_loopback() {
        return Some("the IPv6 loopback address");
    }
    if s[0] == 0xfd00 && s[1] == 0x0ec2 && bits & 0xffff_ffff_ffff_ffff == 0x254 {
        return Some("the cloud metadata service address (fd00:ec2::254)");
    }
    if in6(0xfc00 << 112, 7) {
        return Some("a unique local (private) IPv6 address (fc00::/7)");
    }
    if in6(0xfe80 << 112, 10) {
        return Some("a link-local IPv6 address (fe80::/10)");
    }
    if in6(0xfec0 << 112, 10) {
        return Some("a site-local IPv6 address (fec0::/10)");
    }
    if in6(0xff00 << 112, 8) {
        return Some("a multicast IPv6 address");
    }
    // IPv4-compatible ::a.b.c.d (deprecated) and NAT64 64:ff9b::/96, 64:ff9b:1::/48.
    if in6(0, 96) {
        return embedded(
            low_v4,
            "an IPv4-compatible address embedding a refused IPv4 address",
        )
        .or(Some("an IPv4-compatible IPv6 address (::/96, deprecated)"));
    }
    if in6(0x0064_ff9b << 96, 96) || in6(0x0064_ff9b_0001 << 80, 48) {
        return embedded(low_v4, "a NAT64 address embedding a refused IPv4 address");
    }
    if in6(0x2002 << 112, 16) {
        let v4 = Ipv4Addr::from(u32::try_from((bits >> 80) & 0xffff_ffff).unwrap_or(0));
        return embedded(v4, "a 6to4 address embedding a refused IPv4 address");
    }
    if in6(0x2001 << 112, 32) {
        return Some("a Teredo address (2001::/32), which hides an IPv4 address");
    }
    if in6(0x2001_0db8 << 96, 32) {
        return Some("an IPv6 documentation address (2001:db8::/32)");
    }
    if in6(0x0100 << 112, 64) {
        return Some("an IPv6 discard-only address (100::/64)");
    }
    if in6(0x2001_0002 << 96, 48) {
        return Some("an IPv6 benchmarking address (2001:2::/48)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(g: &Guard, s: &str) -> bool {
        g.check(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
            .is_err()
    }

    #[test]
    fn every_refused_class() {
        let g = Guard::default();
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "169.254.0.1",
            "169.254.169.254",
            "192.0.0.192",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fd00:ec2::254",
            "fd12:3456::1",
            "fc00::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::ffff:192.168.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378::1",
            "2001:db8::1",
            "100::1",
            "2001:2::1",
        ] {
            assert!(refused(&g, a), "{a} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let g = Guard::default();
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.255.255",
            "193.0.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!refused(&g, a), "{a} must pass");
        }
    }

    #[test]
    fn allow_list_exact_and_cidr() {
        let g = Guard::new(&["127.0.0.1", "10.0.0.0/8", "fd00::/8"]).unwrap_or_default();
        assert!(!refused(&g, "127.0.0.1"));
        assert!(
            !refused(&g, "::ffff:127.0.0.1"),
            "mapped form of an allowed address"
        );
        assert!(refused(&g, "127.0.0.2"), "only the listed loopback address");
        assert!(!refused(&g, "10.9.8.7"));
        assert!(!refused(&g, "fd00:ec2::254"));
        assert!(refused(&g, "169.254.169.254"));
        assert!(refused(&g, "::1"));
        assert!(Guard::new(&["nonsense"]).is_err());
        assert!(Guard::new(&["10.0.0.0/33"]).is_err());
        assert!(Guard::new(&["::/129"]).is_err());
        assert!(Guard::new(&["[::1]"]).is_ok());
        let all = Guard::new(&["0.0.0.0/0"]).unwrap_or_default();
        assert!(!refused(&all, "169.254.169.254"));
        assert!(refused(&all, "::1"), "an IPv4 block does not allow IPv6");
    }
}
