//! The NBD server against real clients: qemu-io writes and reads patterns, qemu-img
//! converts and maps the export (block status), nbdinfo reads size and map, and refused or
//! unknown export names get nothing. The tools are required (the test fails without them).

use ikon_disk::device::push_extent;
use ikon_disk::{BlockDevice, Extent, ExtentKind, WritableDevice};
use ikon_nbd::{BoxFuture, Exports};
use std::process::Command;
use std::sync::{Arc, Mutex};

const BLOCK: u64 = 64 << 10;
const SIZE: u64 = 8 << 20;

/// A RAM disk that tracks which 64 KiB blocks were ever written.
struct Ram {
    data: Mutex<(Vec<u8>, Vec<bool>)>,
}

impl Ram {
    fn new() -> Ram {
        let n = usize::try_from(SIZE / BLOCK).unwrap_or(0);
        Ram {
            data: Mutex::new((vec![0; usize::try_from(SIZE).unwrap_or(0)], vec![false; n])),
        }
    }
}

fn range(off: u64, len: usize) -> std::ops::Range<usize> {
    let o = usize::try_from(off).unwrap_or(usize::MAX);
    o..o + len
}

impl WritableDevice for Ram {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> ikon_disk::Result<()> {
        let mut g = self
            .data
            .lock()
            .map_err(|_| ikon_disk::Error::invalid("lock"))?;
        g.0[range(offset, buf.len())].copy_from_slice(buf);
        let (a, b) = (offset / BLOCK, (offset + buf.len() as u64).div_ceil(BLOCK));
        for i in a..b {
            g.1[usize::try_from(i).unwrap_or(0)] = true;
        }
        Ok(())
    }
    fn write_zeroes(&self, offset: u64, len: u64) -> ikon_disk::Result<()> {
        let mut g = self
            .data
            .lock()
            .map_err(|_| ikon_disk::Error::invalid("lock"))?;
        g.0[range(offset, usize::try_from(len).unwrap_or(0))].fill(0);
        Ok(())
    }
    fn flush(&self) -> ikon_disk::Result<()> {
        Ok(())
    }
}

impl BlockDevice for Ram {
    fn len(&self) -> u64 {
        SIZE
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> ikon_disk::Result<()> {
        let g = self
            .data
            .lock()
            .map_err(|_| ikon_disk::Error::invalid("lock"))?;
        buf.copy_from_slice(&g.0[range(offset, buf.len())]);
        Ok(())
    }
    fn as_writable(&self) -> Option<&dyn WritableDevice> {
        Some(self)
    }
    fn map(&self, offset: u64, len: u64) -> ikon_disk::Result<Vec<Extent>> {
        let g = self
            .data
            .lock()
            .map_err(|_| ikon_disk::Error::invalid("lock"))?;
        let mut out = Vec::new();
        let end = (offset + len).min(SIZE);
        let mut pos = offset;
        while pos < end {
            let next = ((pos / BLOCK) + 1) * BLOCK;
            let next = next.min(end);
            let kind = if g.1[usize::try_from(pos / BLOCK).unwrap_or(0)] {
                ExtentKind::Data
            } else {
                ExtentKind::Unallocated
            };
            push_extent(&mut out, pos, next - pos, kind, false);
            pos = next;
        }
        Ok(out)
    }
}

struct One(Arc<Ram>);

impl Exports for One {
    fn open<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn BlockDevice>, String>> {
        Box::pin(async move {
            if name == "good" {
                let d: Arc<dyn BlockDevice> = self.0.clone();
                Ok(d)
            } else {
                Err(format!("no export {name}"))
            }
        })
    }
}

fn run(tool: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} is required (scripts/install-test-deps.sh): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn tool(tool: &str, args: Vec<String>) -> (bool, String) {
    let t = tool.to_string();
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&t, &a)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_read_write_map() {
    let ram = Arc::new(Ram::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ikon_nbd::serve(
        listener,
        Arc::new(One(ram.clone())),
        async move {
            let _ = rx.await;
        },
    ));
    let url = format!("nbd://127.0.0.1:{port}/good");

    // qemu-io: write two patterns (one straddling blocks), flush, read them back.
    let (ok, out) = tool(
        "qemu-io",
        s(&[
            "-f",
            "raw",
            &url,
            "-c",
            "write -P 0xab 1M 64k",
            "-c",
            "write -P 0xcd 3000k 200k",
            "-c",
            "flush",
            "-c",
            "read -P 0xab 1M 64k",
            "-c",
            "read -P 0xcd 3000k 200k",
            "-c",
            "read -P 0 0 1M",
            "-c",
            "write -z 3000k 4k",
            "-c",
            "read -P 0 3000k 4k",
            "-c",
            "discard 7M 64k",
        ]),
    )
    .await;
    assert!(
        ok && !out.contains("Pattern verification failed"),
        "qemu-io: {out}"
    );
    {
        let g = ram.data.lock().unwrap_or_else(|e| panic!("{e}"));
        assert!(g.0[1 << 20..(1 << 20) + 65536].iter().all(|b| *b == 0xab));
    }

    // qemu-img map uses block status: data exactly where the RAM disk says.
    let (ok, out) = tool("qemu-img", s(&["map", "--output=json", "-f", "raw", &url])).await;
    assert!(ok, "qemu-img map: {out}");
    let want: Vec<(u64, u64)> = ram
        .map(0, SIZE)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .filter(|e| e.kind == ExtentKind::Data)
        .map(|e| (e.offset, e.len))
        .collect();
    let mut got = Vec::new();
    for line in out.lines().filter(|l| l.contains("\"data\": true")) {
        let num = |k: &str| -> u64 {
            let i = line.find(k).unwrap_or_else(|| panic!("{k} in {line}")) + k.len();
            line[i..]
                .trim_start_matches([':', ' ', '"'])
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or_else(|e| panic!("{e}: {line}"))
        };
        got.push((num("\"start\""), num("\"length\"")));
    }
    assert_eq!(got, want, "qemu-img map vs device map\n{out}");

    // qemu-img convert reads the whole export; content equals the RAM disk.
    let dir = std::env::temp_dir().join(format!("ikon-nbd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let out_path = dir.join("out.raw");
    let (ok, out) = tool(
        "qemu-img",
        s(&[
            "convert",
            "-f",
            "raw",
            "-O",
            "raw",
            &url,
            &out_path.to_string_lossy(),
        ]),
    )
    .await;
    assert!(ok, "qemu-img convert: {out}");
    let got = std::fs::read(&out_path).unwrap_or_else(|e| panic!("{e}"));
    {
        let g = ram.data.lock().unwrap_or_else(|e| panic!("{e}"));
        assert!(got == g.0, "converted export differs from the device");
    }

    // nbdinfo (libnbd): size and map.
    let (ok, out) = tool("nbdinfo", s(&["--size", &url])).await;
    assert!(
        ok && out.trim() == SIZE.to_string(),
        "nbdinfo --size: {out}"
    );
    let (ok, out) = tool("nbdinfo", s(&["--map", &url])).await;
    assert!(
        ok && out.contains("data") && out.contains("hole"),
        "nbdinfo --map: {out}"
    );

    // A refused name opens nothing; listing reveals nothing.
    let bad = format!("nbd://127.0.0.1:{port}/other");
    let (ok, out) = tool("qemu-io", s(&["-f", "raw", &bad, "-c", "read 0 512"])).await;
    assert!(
        !ok || out.contains("export unknown") || out.contains("Could not"),
        "{out}"
    );
    assert!(
        !out.contains("read 512/512"),
        "refused export was read: {out}"
    );
    let (ok, out) = tool(
        "nbdinfo",
        s(&["--list", &format!("nbd://127.0.0.1:{port}")]),
    )
    .await;
    assert!(
        !out.contains("good"),
        "nbdinfo --list revealed an export: {ok} {out}"
    );

    // Out-of-range I/O fails cleanly and the server keeps serving.
    let (_, out) = tool("qemu-io", s(&["-f", "raw", &url, "-c", "read 9M 4k"])).await;
    assert!(
        !out.contains("read 4096/4096"),
        "read past the end succeeded: {out}"
    );
    let (ok, out) = tool(
        "qemu-io",
        s(&["-f", "raw", &url, "-c", "read -P 0xab 1M 4k"]),
    )
    .await;
    assert!(
        ok && !out.contains("failed"),
        "server stopped serving: {out}"
    );

    let _ = tx.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
}
