#!/bin/sh
# udhcpc event script of the tiny test guest.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "occi-tiny: lease $interface $ip/$mask" > /dev/console
    ;;
esac
