#!/bin/sh
# udhcpc's event script for the test installer (init.sh): busybox udhcpc only reports a lease,
# this applies it (address, default route) and leaves the address in /tmp/address for init.sh.
case "$1" in
bound | renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/${mask:-24}" dev "$interface"
  [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
  echo "$ip" >/tmp/address
  ;;
deconfig)
  ip addr flush dev "$interface"
  ;;
esac
exit 0
