#!/usr/bin/env bash
# A throwaway S3 engine for the tests: a single-node Ceph cluster (1 mon, 1 OSD on memstore
# — RAM, data lost at stop — and 1 mgr) with the RADOS Gateway on 127.0.0.1:$S3PORT, as root,
# no systemd. Installs Ceph from Debian's packages if absent (scripts/install-s3.sh). Creates
# an S3 user and the buckets in $S3BUCKETS, then prints `export IKON_TEST_S3_…=…` lines
# (endpoint, region, keys, first bucket) for `eval`.
# Env: S3ROOT (/tmp/ikon-s3), S3PORT (7480; the monitor listens on S3PORT+1 and S3PORT+2 so
# that several clusters can run side by side), S3BUCKETS ("ikon-test ikon-export").
# Stop with scripts/stop-s3.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/install-s3.sh"
S3ROOT=${S3ROOT:-/tmp/ikon-s3}
S3PORT=${S3PORT:-7480}
S3BUCKETS=${S3BUCKETS:-ikon-test ikon-export}
MON2=$((S3PORT + 1))
MON1=$((S3PORT + 2))
KEY_ID=IKONTESTACCESSKEY001
SECRET=ikontestsecretkey00000000000000000000001
bash "$here/stop-s3.sh" >/dev/null 2>&1 || true
mkdir -p "$S3ROOT"/{mon.a,osd.0,mgr.x,rgw.a,run,log}
# ceph-mon shuts itself down when its file system has under 5 % free (mon_data_avail_crit).
free_pct=$(df -P "$S3ROOT" | awk 'NR==2 {gsub("%", "", $5); print 100 - $5}')
if [ "${free_pct:-0}" -le 5 ]; then
    echo "start-s3: only ${free_pct}% of the disk holding $S3ROOT is free; Ceph's monitor needs more than 5%" >&2
    exit 1
fi
FSID=$(uuidgen)
CONF=$S3ROOT/ceph.conf
cat > "$CONF" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $S3ROOT/run
pid file = $S3ROOT/run/\$name.pid
admin socket = $S3ROOT/run/\$name.asok
log file = $S3ROOT/log/\$name.log
keyring = $S3ROOT/keyring
mon data = $S3ROOT/mon.\$id
osd data = $S3ROOT/osd.\$id
mgr data = $S3ROOT/mgr.\$id
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
[osd]
osd objectstore = memstore
memstore device bytes = 6442450944
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$S3PORT
rgw data = $S3ROOT/rgw.a
rgw dns name = localhost
CONF
C=(-c "$CONF")
ceph-authtool --create-keyring "$S3ROOT/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$S3ROOT/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]" --fsid "$FSID" "$S3ROOT/monmap" >/dev/null
ceph-mon "${C[@]}" --mkfs -i a --monmap "$S3ROOT/monmap" --keyring "$S3ROOT/keyring"
ceph-mon "${C[@]}" -i a
timeout 60 ceph "${C[@]}" mon stat >/dev/null
ceph "${C[@]}" auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
    -o "$S3ROOT/mgr.x/keyring"
ceph-mgr "${C[@]}" -i x --keyring "$S3ROOT/mgr.x/keyring"
OSD_UUID=$(uuidgen)
OSD_ID=$(ceph "${C[@]}" osd new "$OSD_UUID")
ceph-authtool --create-keyring "$S3ROOT/osd.$OSD_ID/keyring" --gen-key -n "osd.$OSD_ID" >/dev/null
ceph "${C[@]}" auth add "osd.$OSD_ID" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
    -i "$S3ROOT/osd.$OSD_ID/keyring" 2>/dev/null
ceph-osd "${C[@]}" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" --keyring "$S3ROOT/osd.$OSD_ID/keyring" 2>/dev/null
ceph-osd "${C[@]}" -i "$OSD_ID" --keyring "$S3ROOT/osd.$OSD_ID/keyring"
up=0
for _ in $(seq 1 240); do
    if ceph "${C[@]}" osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; then up=1; break; fi
    sleep 0.5
done
[ $up = 1 ] || { echo "start-s3: the OSD did not come up (see $S3ROOT/log)" >&2; exit 1; }
ceph "${C[@]}" auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' mgr 'allow rw' \
    -o "$S3ROOT/rgw.a/keyring"
radosgw "${C[@]}" -n client.rgw.a --keyring "$S3ROOT/rgw.a/keyring"
up=0
for _ in $(seq 1 480); do
    if curl -s -o /dev/null "http://127.0.0.1:$S3PORT/"; then up=1; break; fi
    sleep 0.5
done
[ $up = 1 ] || { echo "start-s3: the gateway did not answer on $S3PORT (see $S3ROOT/log)" >&2; exit 1; }
radosgw-admin "${C[@]}" user create --uid=ikon-test --display-name=ikon-test \
    --access-key="$KEY_ID" --secret-key="$SECRET" >/dev/null
for b in $S3BUCKETS; do   # SigV4-signed PUT (curl >= 7.75); retried while RGW warms up
    ok=0
    for _ in $(seq 1 60); do
        if curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY_ID:$SECRET" \
            -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "http://127.0.0.1:$S3PORT/$b" >/dev/null; then
            ok=1; break
        fi
        sleep 0.5
    done
    [ $ok = 1 ] || { echo "start-s3: could not create bucket $b" >&2; exit 1; }
done
first=${S3BUCKETS%% *}
echo "export IKON_TEST_S3_ENDPOINT=http://127.0.0.1:$S3PORT IKON_TEST_S3_REGION=us-east-1" \
     "IKON_TEST_S3_ACCESS_KEY_ID=$KEY_ID IKON_TEST_S3_SECRET_ACCESS_KEY=$SECRET" \
     "IKON_TEST_S3_BUCKET=$first"
