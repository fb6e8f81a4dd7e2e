#!/usr/bin/env bash
# (Re)build the generated seeds of fuzz/seeds/ (the qemu-img ones of qcow2/vhd/vmdk/vhdx
# were made by hand and are left alone):
#   make-seeds.py  bochs, parallels (v1), cloop, dmg, detect extras, the four API targets
#   here           parallels (v2, qemu-img), ext4 + ntfs volumes, registry hives, and small
#                  raw disks (MBR / GPT / extended partitions; Linux on ext4 with things the
#                  hygiene scan looks for, Windows on NTFS with its hives) for partition,
#                  inspect and scan.
# Sizes stay under scripts/fuzz.sh's -max_len (4 MiB). Needs python3, qemu-img, e2fsprogs,
# sfdisk, ntfs-3g (mkntfs, ntfscp) + libntfs-3g headers and gcc, hivexregedit (all from
# scripts/install-guest-deps.sh); faketime makes the filesystems reproducible.
# Usage: fuzz/make-seeds.sh
set -euo pipefail
cd "$(dirname "$0")"
S=$PWD/seeds FX=$PWD/../scripts/fixtures
PATH=$PATH:/usr/sbin:/sbin
W=$(mktemp -d "${TMPDIR:-/tmp}/ikon-seeds.XXXX"); trap 'rm -rf "$W"' EXIT
FT=(); command -v faketime >/dev/null && FT=(env TZ=UTC faketime -f "2024-01-01 00:00:00")

python3 make-seeds.py "$S"

# ---- Parallels v2 written by qemu-img (a few data clusters)
head -c 65536 /dev/zero | tr '\0' 'P' > "$W/p.raw"; truncate -s 1M "$W/p.raw"
printf 'tail' | dd of="$W/p.raw" bs=1 seek=$((1048576 - 4096)) conv=notrunc status=none
qemu-img convert -f raw -O parallels -o cluster_size=64k "$W/p.raw" "$S/parallels/v2-qemu.hds"

# ---- registry hives (small SOFTWARE with Winlogon + sysprep state, SYSTEM)
cat > "$W/software.reg" <<'EOF'
Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft]

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT]

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion]
"ProductName"="Windows Server 2019 Datacenter"
"CurrentVersion"="6.3"
"CurrentBuildNumber"="17763"
"InstallationType"="Server"
"EditionID"="ServerDatacenter"
"CurrentMajorVersionNumber"=dword:0000000a
"CurrentMinorVersionNumber"=dword:00000000
"InstallDate"=dword:52a1b2c3
"Multi"=hex(7):61,00,00,00,62,00,00,00,00,00
"Bin"=hex:01,02,03

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon]
"AutoAdminLogon"="1"
"DefaultUserName"="Administrator"
"DefaultPassword"="hunter2"

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows]

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion]
"ProgramFilesDir"="C:\\Program Files"

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup]

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State]
"ImageState"="IMAGE_STATE_COMPLETE"
EOF
for i in $(seq 0 39); do printf '\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Many%02d]\n"V"="%d"\n' "$i" "$i"; done >> "$W/software.reg"
cat > "$W/system.reg" <<'EOF'
Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\SYSTEM\Select]
"Current"=dword:00000001

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\ComputerName]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\ComputerName\ComputerName]
"ComputerName"="FUZZ-WIN"

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\Session Manager]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\Session Manager\Environment]
"PROCESSOR_ARCHITECTURE"="AMD64"

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services]

[HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\viostor]
"Start"=dword:00000000
"ImagePath"=hex(2):73,00,79,00,73,00,00,00
EOF
python3 "$FX/mkhive.py" "$W/SOFTWARE" "CMI-CreateHive{199DAFC2-6F16-4946-BF90-5A3FC3A60902}" '\SystemRoot\System32\Config\SOFTWARE'
python3 "$FX/mkhive.py" "$W/SYSTEM" "CMI-CreateHive{2A7FB991-7BBE-4F9D-B91E-7CB51D4737F5}" '\SystemRoot\System32\Config\SYSTEM'
"${FT[@]}" hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SOFTWARE' "$W/SOFTWARE" "$W/software.reg"
"${FT[@]}" hivexregedit --merge --prefix 'HKEY_LOCAL_MACHINE\SYSTEM' "$W/SYSTEM" "$W/system.reg"
mkdir -p "$S/registry"; cp "$W/SOFTWARE" "$S/registry/SOFTWARE"; cp "$W/SYSTEM" "$S/registry/SYSTEM"

# ---- NTFS: a 2 MiB Windows system volume (hives, an answer file with a password)
gcc -O2 -o "$W/ntfs-mkdir" "$FX/ntfs-mkdir.c" -lntfs-3g
printf '<unattend><settings><component><UserAccounts><AdministratorPassword><Value>cABhAHMAcwA=</Value><PlainText>false</PlainText></AdministratorPassword></UserAccounts></component></settings></unattend>\n' > "$W/unattend.xml"
printf 'MZ fake\n' > "$W/cmd.exe"
ntfs_volume() { # FILE SECTORS START_SECTOR
    rm -f "$1"; truncate -s $(($2 * 512)) "$1"
    mkntfs -F -Q -q -T -s 512 -c 4096 -p "$3" -H 255 -S 63 -L Windows "$1" >/dev/null 2>&1
    printf '\x11\x22\x33\x44\x55\x66\x77\x88' | dd of="$1" bs=1 seek=$((0x48)) conv=notrunc status=none
    printf '\x11\x22\x33\x44\x55\x66\x77\x88' | dd of="$1" bs=1 seek=$((($2 - 1) * 512 + 0x48)) conv=notrunc status=none
    "${FT[@]}" "$W/ntfs-mkdir" "$1" /Windows/System32/config /Windows/Panther /Users/Administrator
    "${FT[@]}" ntfscp -q "$1" "$W/SOFTWARE" Windows/System32/config/SOFTWARE
    "${FT[@]}" ntfscp -q "$1" "$W/SYSTEM" Windows/System32/config/SYSTEM
    "${FT[@]}" ntfscp -q "$1" "$W/cmd.exe" Windows/System32/cmd.exe
    "${FT[@]}" ntfscp -q "$1" "$W/unattend.xml" Windows/Panther/unattend.xml
}
NTFS_SECTORS=4096                       # 2 MiB
ntfs_volume "$W/ntfs.fs" $NTFS_SECTORS 0
mkdir -p "$S/ntfs"; cp "$W/ntfs.fs" "$S/ntfs/windows-2m.ntfs"

# ---- ext4: a small Linux root with what the hygiene scan looks for
. "$FX/lib-linux-tree.sh"
make_linux_tree "$W/root" ubuntu2204 >/dev/null
R=$W/root
truncate -s 4096 "$R/usr/bin/ls"        # the ELF header is what inspection reads
printf 'root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n' > "$R/etc/passwd"
printf 'root:$6$salt$abcdefghijklmnopqrstuv:19000:0:99999:7:::\nadmin::19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' > "$R/etc/shadow"
mkdir -p "$R/root/.ssh" "$R/home/admin/.ssh" "$R/home/admin/.aws" "$R/etc/ssh/sshd_config.d"
printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuz admin@build\n' > "$R/root/.ssh/authorized_keys"
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n' > "$R/home/admin/.ssh/id_ed25519"
cp "$R/home/admin/.ssh/id_ed25519" "$R/etc/ssh/ssh_host_ed25519_key"
printf '[default]\naws_access_key_id = AKIAFUZZFUZZFUZZFUZZ\naws_secret_access_key = fuzz\n' > "$R/home/admin/.aws/credentials"
printf 'mysql -p secret\nls\n' > "$R/root/.bash_history"
printf 'Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nMatch User admin\n  PasswordAuthentication yes\n' > "$R/etc/ssh/sshd_config"
printf 'PasswordAuthentication yes\n' > "$R/etc/ssh/sshd_config.d/50-cloud.conf"
printf '0123456789abcdef0123456789abcdef\n' > "$R/etc/machine-id"
ln -s ../../etc/passwd "$R/home/admin/loop-passwd"; ln -s loop-a "$R/home/admin/loop-b"; ln -s loop-b "$R/home/admin/loop-a"
export FIXED_EPOCH
UUID=6a1c7e4e-0f7d-4e3a-9a3b-2d7c1e0f0a01
BLOCK_SIZE=1024 ext4_from_tree "$W/ext4.fs" 1 "$R" $UUID rootfs
BLOCK_SIZE=1024 EXT4_OPTS="^extent,^flex_bg,^64bit,^metadata_csum,^huge_file,^dir_nlink,^extra_isize,^orphan_file" \
    ext4_from_tree "$W/ext3.fs" 1 "$R" $UUID rootfs
mkdir -p "$S/ext4"; cp "$W/ext4.fs" "$S/ext4/linux-1k.ext4"; cp "$W/ext3.fs" "$S/ext4/linux-noextents.ext3"

# ---- raw disks: partition tables around those filesystems
disk() { # OUT SIZE_SECTORS SFDISK_SCRIPT [FS START]...
    local out=$1 size=$2 script=$3; shift 3
    rm -f "$out"; truncate -s $(($size * 512)) "$out"
    printf '%b' "$script" | sfdisk -q "$out" >/dev/null
    while [ $# -ge 2 ]; do dd if="$1" of="$out" bs=512 seek="$2" conv=notrunc status=none; shift 2; done
}
ntfs_volume "$W/ntfs-p.fs" $NTFS_SECTORS 64
mkdir -p "$S/partition" "$S/inspect" "$S/scan"
disk "$W/linux-mbr.raw" $((64 + 2048 + 8)) 'label: dos\nlabel-id: 0x1234abcd\nunit: sectors\nstart=64, size=2048, type=83, bootable\n' "$W/ext4.fs" 64
disk "$W/linux-gpt.raw" $((2048 + 34 + 64)) 'label: gpt\nlabel-id: 3B7F3A56-1D2C-4E5F-8A9B-0C1D2E3F4A5B\nunit: sectors\nfirst-lba: 34\nstart=64, size=2048, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=11111111-2222-4333-8444-555555555555\n' "$W/ext4.fs" 64
disk "$W/windows-mbr.raw" $((64 + NTFS_SECTORS + 8)) 'label: dos\nlabel-id: 0x5ec1a11d\nunit: sectors\nstart=64, size=4096, type=7, bootable\n' "$W/ntfs-p.fs" 64
disk "$W/extended.raw" 2048 'label: dos\nunit: sectors\nstart=64, size=256, type=83\nstart=512, size=1024, type=5\nstart=576, size=128, type=83\nstart=768, size=128, type=7\nstart=1024, size=256, type=c\n'
for d in linux-mbr linux-gpt windows-mbr; do
    cp "$W/$d.raw" "$S/inspect/$d.raw"; cp "$W/$d.raw" "$S/scan/$d.raw"; cp "$W/$d.raw" "$S/partition/$d.raw"
done
cp "$W/extended.raw" "$S/partition/extended.raw"; cp "$W/extended.raw" "$S/inspect/extended.raw"
ls -la "$S"/*/ | awk '$5 > 4194304 { print "too large for -max_len: " $0; bad=1 } END { exit bad }'
echo "seeds written to $S"
