#!/usr/bin/env bash
# Build the known-unsafe and edge-case images (the cases of OpenStack's os-test-images
# manifest, rebuilt with qemu-img, plus VM-image specific ones) and a table of what Ikon must
# do with each. Usage: make-security-images.sh OUTDIR
# OUTDIR/expected.tsv columns: file, qemu format, ikon verdict (ok | unsafe | unsupported),
# note. "unsafe" means Ikon must refuse it even though qemu-img may open it.
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR}; mkdir -p "$OUT"; cd "$OUT"
rm -rf ./* 
E() { printf '%s\t%s\t%s\t%s\n' "$@" >> expected.tsv; }
Q() { qemu-img create -q "$@"; }
printf 'file\tformat\tverdict\tnote\n' > expected.tsv

Q -f qcow2 standard-qcow2v3.qcow2 10M;                          E standard-qcow2v3.qcow2 qcow2 ok "blank qcow2 v3"
Q -f qcow2 -o compat=0.10 standard-qcow2v2.qcow2 10M;           E standard-qcow2v2.qcow2 qcow2 ok "blank qcow2 v2"
Q -f qcow2 -F raw -b /etc/hosts qcow-with-backing.qcow2 10M;    E qcow-with-backing.qcow2 qcow2 unsafe "backing file = host /etc/hosts"
Q -f qcow2 -o data_file=qcow-data-file,data_file_raw=on qcow-with-datafile.qcow2 10M; rm -f qcow-data-file
                                                                E qcow-with-datafile.qcow2 qcow2 unsafe "external data file"
Q -f qcow2 -F qcow2 -b 'json:{"driver":"qcow2","file":{"driver":"file","filename":"/etc/hosts"}}' -u qcow-with-json-backing.qcow2 10M
                                                                E qcow-with-json-backing.qcow2 qcow2 unsafe "json: pseudo-protocol backing"
Q -f qcow2 -F raw -b 'nbd://127.0.0.1:1/x' -u qcow-with-nbd-backing.qcow2 10M
                                                                E qcow-with-nbd-backing.qcow2 qcow2 unsafe "network protocol backing"
Q -f raw raw-blank.raw 1M;                                      E raw-blank.raw raw ok "blank raw"
Q -f raw gpt-blank.gpt 1M; printf 'label: gpt\n' | sfdisk -q gpt-blank.gpt
                                                                E gpt-blank.gpt raw ok "protective MBR + empty GPT"
Q -f qed standard.qed 10M;                                      E standard.qed qed unsupported "QED"
mkisofs -quiet -V standard-iso9660 -o standard-iso9660.iso /etc/hosts
                                                                E standard-iso9660.iso raw ok "ISO 9660 with one file"
mkisofs -quiet -V iso-qcow2 -o iso-with-qcow2-in-system.iso /etc/hosts
Q -f qcow2 tmp.qcow2 10M; dd if=tmp.qcow2 of=iso-with-qcow2-in-system.iso bs=32k count=1 conv=notrunc status=none; rm -f tmp.qcow2
                                                                E iso-with-qcow2-in-system.iso qcow2 unsafe "qcow2 header in ISO system area"
Q -f vmdk -o subformat=monolithicSparse vmdk-monolithicSparse.vmdk 10M; E vmdk-monolithicSparse.vmdk vmdk ok ""
Q -f vmdk -o subformat=streamOptimized vmdk-streamOptimized.vmdk 10M;   E vmdk-streamOptimized.vmdk vmdk ok ""
Q -f vmdk -o subformat=monolithicFlat vmdk-monolithicFlat.vmdk 10M
                                                                E vmdk-monolithicFlat.vmdk vmdk unsafe "descriptor -> separate flat extent"
Q -f vmdk -o subformat=monolithicFlat vmdk-monolithicFlat-leak.vmdk 10M; rm -f vmdk-monolithicFlat-leak-flat.vmdk
sed -i 's#vmdk-monolithicFlat-leak-flat.vmdk#/etc/hosts#' vmdk-monolithicFlat-leak.vmdk
                                                                E vmdk-monolithicFlat-leak.vmdk vmdk unsafe "flat extent = host /etc/hosts"
Q -f vmdk -o subformat=monolithicFlat vmdk-monolithicFlat-dotdot.vmdk 10M
sed -i 's#"vmdk-monolithicFlat-dotdot-flat.vmdk"#"../vmdk-monolithicFlat-dotdot-flat.vmdk"#' vmdk-monolithicFlat-dotdot.vmdk
                                                                E vmdk-monolithicFlat-dotdot.vmdk vmdk unsafe "flat extent escapes with ../"
Q -f vmdk -o subformat=monolithicSparse vmdk-sparse-with-url-backing.vmdk 10M
dd if=vmdk-sparse-with-url-backing.vmdk bs=512 count=1 skip=1 status=none | \
    sed 's#vmdk-sparse-with-url-backing.vmdk#/etc/hosts#' | dd of=vmdk-sparse-with-url-backing.vmdk conv=notrunc seek=1 status=none
                                                                E vmdk-sparse-with-url-backing.vmdk vmdk unsafe "embedded descriptor extent = /etc/hosts"
Q -f vmdk -o subformat=monolithicSparse vmdk-sparse-with-footer.vmdk 10M
python3 - vmdk-sparse-with-footer.vmdk <<'PY'
# header says "grain directory at end" (gdOffset = -1); footer marker + footer + EOS appended
import struct, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    hdr = f.read(512)
    f.seek(56); f.write(struct.pack("<Q", 0xFFFFFFFFFFFFFFFF))
    f.seek(0, 2)
    marker = bytearray(512); struct.pack_into("<QII", marker, 0, 1, 0, 3)
    f.write(bytes(marker) + hdr + bytes(512))
PY
                                                                E vmdk-sparse-with-footer.vmdk vmdk ok "gdOffset=GD_AT_END, real one in footer"
Q -f vmdk -o subformat=twoGbMaxExtentSparse vmdk-2gbsparse.vmdk 10M
                                                                E vmdk-2gbsparse.vmdk vmdk unsafe "descriptor + separate extent files"
Q -f vpc -o subformat=dynamic vhd-dynamic.vhd 10M;              E vhd-dynamic.vhd vpc ok ""
Q -f vpc -o subformat=fixed vhd-fixed.vhd 10M;                  E vhd-fixed.vhd vpc ok "fixed VHD = raw + footer"
Q -f vhdx vhdx-dynamic.vhdx 10M;                                E vhdx-dynamic.vhdx vhdx ok ""
Q -f vdi vdi-standard.vdi 10M;                                  E vdi-standard.vdi vdi unsupported "VDI"
