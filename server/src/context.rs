//! What the phone shows about the desktop: browser and OS from the User-Agent (a short
//! table; the order matters because every browser claims to be the ones before it), and a
//! coarse place from the address (no geolocation database yet).

use std::net::IpAddr;

/// Browser family from a User-Agent.
pub fn browser(ua: &str) -> &'static str {
    const TABLE: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("OPR/", "Opera"),
        ("SamsungBrowser/", "Samsung Internet"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("CriOS/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("HeadlessChrome/", "Chrome (headless)"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ];
    TABLE
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map_or("sconosciuto", |(_, name)| name)
}

/// Operating system from a User-Agent.
pub fn os(ua: &str) -> &'static str {
    const TABLE: &[(&str, &str)] = &[
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
        ("FreeBSD", "FreeBSD"),
    ];
    TABLE
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map_or("sconosciuto", |(_, name)| name)
}

/// "rete locale" for loopback and private addresses, else "sconosciuto".
pub fn place(ip: IpAddr) -> &'static str {
    let local = match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg0 & 0xfe00) == 0xfc00 // unique local
                || (seg0 & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| {
                    v4.is_loopback() || v4.is_private() || v4.is_link_local()
                })
        }
    };
    if local { "rete locale" } else { "sconosciuto" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
        assert_eq!((browser(chrome), os(chrome)), ("Chrome", "Linux"));
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0";
        assert_eq!((browser(edge), os(edge)), ("Edge", "Windows"));
        let ff =
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0";
        assert_eq!((browser(ff), os(ff)), ("Firefox", "macOS"));
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        assert_eq!((browser(safari), os(safari)), ("Safari", "iOS"));
        assert_eq!((browser(""), os("")), ("sconosciuto", "sconosciuto"));
    }

    #[test]
    fn places() {
        for local in ["127.0.0.1", "192.168.1.4", "10.0.0.1", "::1", "fd00::1"] {
            assert_eq!(place(local.parse().unwrap()), "rete locale", "{local}");
        }
        assert_eq!(place("8.8.8.8".parse().unwrap()), "sconosciuto");
    }
}
