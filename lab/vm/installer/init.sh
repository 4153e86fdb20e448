#!/bin/sh
# The init of Beskar7's test installer (lab/vm/installer/build.ts puts it in a busybox
# initramfs). It stands in for the stock installers of Kairos, Talos, Flatcar and openSUSE Leap
# Micro in the VM tests: it prints on the serial console what this machine saw (its kernel
# command line, the labelled volumes and their files, the configuration it fetched from the URL
# its OS family reads), posts a hardware report and a callback when asked to, and powers off
# (beskar7.hold=<seconds> delays that).
# Every line for the tests starts with "BESKAR7-" (lab/vm/console.ts waits for them). Anything
# that fails is said in a BESKAR7-...-ERROR line; the script never stops before the power-off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /mnt
seen=/tmp/seen

say() {
  echo "BESKAR7-$*"
  echo "BESKAR7-$*" >>"$seen"
}

# Boot tokens are long base64url path segments (boot/session.ts); UUIDs (36) stay readable.
redact() {
  sed -E 's/[A-Za-z0-9_-]{40,}/<redacted>/g'
}

read -r cmdline </proc/cmdline
say "CMDLINE: $(echo "$cmdline" | redact)"

arg() {
  for word in $cmdline; do
    case "$word" in "$1"=*)
      echo "${word#*=}"
      return 0
      ;;
    esac
  done
  return 1
}

sha() { sha256sum <"$1" | cut -d' ' -f1; }

# Debian's static busybox 1.35 wget crashes with -T (its own timeout): bound it from outside.
http() { timeout 30 wget -q "$@"; }

# The steps run in a subshell: a shell error there (ash leaves on a bad arithmetic expression)
# ends the subshell, not init, so the machine still powers off instead of panicking.
(
while read -r module; do
  # usb-storage waits delay_use (1 s) before it scans a stick; nothing here needs that.
  case "$module" in usb-storage.ko) params=delay_use=0 ;; *) params="" ;; esac
  insmod "/lib/modules/$module" $params 2>/dev/null
done </lib/modules/load.list

# A USB stick enumerates behind its xHCI controller (PCI class 0c0330) well after the PCI devices
# appear, longer than a quiet second when several TCG machines share the cores; the VM BMC adds
# that controller only for a stick, so with one present the wait lasts until a USB disk is there.
usb_disk_pending() {
  grep -qs '^0x0c0330$' /sys/bus/pci/devices/*/class || return 1
  for block in /sys/block/sd*; do
    case "$(readlink -f "$block")" in */usb*) return 1 ;; esac
  done
  return 0
}

# Disks and NICs appear as their drivers probe; wait until the block devices stop changing.
last=""
stable=0
for _ in $(seq 1 80); do
  now="$(ls /sys/block) $(ls /sys/class/net)"
  if [ "$now" = "$last" ]; then stable=$((stable + 1)); else stable=0; fi
  [ "$stable" -ge 4 ] && ! usb_disk_pending && break
  last="$now"
  sleep 0.25
done
usb_disk_pending && say "MEDIA-ERROR: a USB controller but no USB disk after 20 s"

uuid=$(cat /sys/class/dmi/id/product_uuid 2>/dev/null)
say "UUID: ${uuid:-unknown}"

ip link set lo up
nic=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
address=""
if [ -z "$nic" ]; then
  say "NET-ERROR: no network interface"
else
  ip link set "$nic" up
  if udhcpc -i "$nic" -n -q -t 5 -T 2 -s /etc/udhcpc.sh >/dev/null 2>&1; then
    address=$(cat /tmp/address)
    say "NET: $nic $address $(cat "/sys/class/net/$nic/address")"
  else
    say "NET-ERROR: $nic got no DHCP lease"
  fi
fi

for dev in /dev/sr* /dev/sd* /dev/vd*; do
  [ -b "$dev" ] || continue
  # Debian's busybox has no blkid: read the ISO9660 primary volume descriptor as blkid does.
  label=""
  type=none
  if [ "$(dd if="$dev" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ]; then
    type=iso9660
    label=$(dd if="$dev" bs=1 skip=32808 count=32 2>/dev/null | sed 's/ *$//')
  fi
  say "MEDIA: ${dev#/dev/} ${label:-none} $type"
  case "$label" in
  cidata | CIDATA | metal-iso | ignition | combustion | config-2)
    mkdir -p "/mnt/$label"
    if mount -t "$type" -o ro "$dev" "/mnt/$label" 2>/tmp/mount.err; then
      (cd "/mnt/$label" && find . -type f | sort) | while read -r file; do
        say "VOLUME: $label ${file#./} $(sha "/mnt/$label/$file")"
      done
    else
      say "VOLUME-ERROR: $label $(tail -n 1 /tmp/mount.err)"
    fi
    ;;
  esac
done

# The hardware report, in the boot service's inspection report schema (boot/server/report.ts,
# closed: every field, nothing more). It goes before the configuration fetch, as an inspection
# image reports before the OS it boots fetches its configuration.
report() {
  cpus=$(grep -c '^processor' /proc/cpuinfo)
  sockets=$(sed -n 's/^physical id[^:]*: *//p' /proc/cpuinfo | sort -u | wc -l)
  [ "$sockets" -gt 0 ] || sockets=1
  per_socket=$(sed -n 's/^cpu cores[^:]*: *//p' /proc/cpuinfo | head -n 1)
  model=$(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -n 1 | tr -d '"\\')
  memory=$(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / 1024))
  disks=""
  for block in /sys/block/*; do
    name=${block##*/}
    [ -r "$block/size" ] || continue # no disks: the glob stays unexpanded
    case "$name" in loop* | ram*) continue ;; esac
    case "$name" in
    nvme*) type=NVMe ;;
    *) case "$(cat "$block/removable" 2>/dev/null)$(cat "$block/queue/rotational" 2>/dev/null)" in
      00) type=SSD ;;
      01) type=HDD ;;
      *) type=Unknown ;; # removable (a CD drive, a USB stick)
      esac ;;
    esac
    disks="$disks${disks:+,}{\"name\":\"$name\",\"sizeBytes\":$(($(cat "$block/size") * 512)),\"type\":\"$type\"}"
  done
  nics=""
  for path in /sys/class/net/*; do
    name=${path##*/}
    [ -r "$path/address" ] || continue
    [ "$name" = lo ] && continue
    nics="$nics${nics:+,}{\"name\":\"$name\",\"mac\":\"$(cat "$path/address")\"}"
  done
  printf '{"systemUUID":"%s","cpu":{"count":%s,"cores":%s,"model":"%s"},"memoryMiB":%s,"disks":[%s],"nics":[%s]}' \
    "$uuid" "$sockets" "$((${per_socket:-$cpus} * sockets))" "$model" "$memory" "$disks" "$nics"
}

if url=$(arg beskar7.report); then
  report >/tmp/report.json
  if http -O /dev/null --header 'Content-Type: application/json' \
    --post-file /tmp/report.json "$url" 2>/tmp/wget.err; then
    say "REPORT: $(echo "$url" | redact) $(wc -c </tmp/report.json)"
  else
    say "REPORT-ERROR: $(echo "$url" | redact) $(tail -n 1 /tmp/wget.err | redact)"
  fi
fi

# fetch NAME URL: what the OS does with its configuration URL (a GET), said without the token.
fetch() {
  shown=$(echo "$2" | redact)
  if http -O "/tmp/$1" "$2" 2>/tmp/wget.err; then
    say "CONFIG: $shown $(sha "/tmp/$1") $(wc -c <"/tmp/$1")"
  else
    say "CONFIG-ERROR: $shown $(tail -n 1 /tmp/wget.err | redact)"
  fi
}

# Each OS family's own parameter (boot/os.ts); Talos fills ${uuid} in the URL itself.
for parameter in config_url talos.config ignition.config.url combustion.url; do
  url=$(arg "$parameter") || continue
  case "$url" in
  http://* | https://*)
    [ "$parameter" = talos.config ] && url=$(echo "$url" | sed "s/\${uuid}/$uuid/g")
    fetch config "$url"
    ;;
  *) say "CONFIG-SOURCE: $parameter=$url" ;;
  esac
done

if url=$(arg beskar7.callback); then
  say "CALLBACK: $(echo "$url" | redact)"
  http -O /dev/null --header 'Content-Type: text/plain' --post-file "$seen" "$url" 2>/dev/null ||
    echo "BESKAR7-CALLBACK-ERROR: $(echo "$url" | redact)"
fi
)
status=$?
[ "$status" -eq 0 ] || say "ERROR: the installer's steps stopped with status $status"

# beskar7.hold=<seconds>: stay up before powering off, for tests of power actions on a running OS.
if hold=$(arg beskar7.hold); then
  say "HOLD: $hold"
  sleep "$hold"
fi

say "POWEROFF"
sync
poweroff -f
sleep 5
echo o >/proc/sysrq-trigger
