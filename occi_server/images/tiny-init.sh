#!/bin/busybox sh
# /init of the tiny test guest: boots, reads its NoCloud seed, prints what it
# found on the serial console, takes a DHCP lease, runs user data that is a
# shell script, and powers off on ACPI.
/bin/busybox mkdir -p /proc /sys /dev /seed /etc /tmp /run /bin
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /lib/modules/order); do
  insmod "/lib/modules/$module.ko" 2>/dev/null
done
echo "occi-tiny: booted $(uname -r)"
case " $(cat /proc/cmdline) " in
  *" occi.probe "*) echo "occi-tiny: probe ok"; poweroff -f ;;
esac

for _ in $(seq 1 50); do  # the seed CD-ROM appears a moment after its driver loads
  [ -b /dev/sr0 ] && ls /dev/vd? >/dev/null 2>&1 && break
  sleep 0.1
done
for dev in /dev/vd? /dev/sr?; do
  [ -b "$dev" ] || continue
  if mount -t iso9660 -o ro "$dev" /seed 2>/dev/null; then
    [ -f /seed/meta-data ] && break
    umount /seed
  fi
done
if [ -f /seed/meta-data ]; then
  name=$(sed -n 's/^local-hostname: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /seed/meta-data)
  [ -n "$name" ] && hostname "$name"
  echo "occi-tiny: hostname $(hostname)"
  sed 's/^/occi-tiny: meta-data: /' /seed/meta-data
  sed 's/^/occi-tiny: user-data: /' /seed/user-data
else
  echo "occi-tiny: no seed"
fi

ip link set lo up
for nic in $(ls /sys/class/net); do
  [ "$nic" = lo ] && continue
  ip link set "$nic" up
  udhcpc -i "$nic" -n -q -t 4 -T 1 -s /bin/dhcp-event >/dev/null 2>&1 \
    || echo "occi-tiny: no lease on $nic"
done

# Two TCP ports that answer with their number (security group tests connect to them).
for port in 8080 8081; do
  nc -ll -p "$port" -e echo "occi-tiny: port $port" &
done

# busybox acpid runs /etc/acpi/<event>/<code> on the power button.
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\necho "occi-tiny: power button, shutting down"\nsync\npoweroff -f\n' \
  > /etc/acpi/PWRF/00000080
chmod 755 /etc/acpi/PWRF/00000080
acpid -c /etc/acpi -l /tmp/acpid.log
echo "occi-tiny: ready"

# User data that is a shell script runs once the network is up, its output
# on the console (tests have the guest reach others with it).
if [ "$(head -c 2 /seed/user-data 2>/dev/null)" = "#!" ]; then
  (sh /seed/user-data 2>&1 | sed 's/^/occi-tiny: script: /') &
fi

# Disks beyond the boot disk and the seed: report each one that appears; mark a
# blank one, or report the mark it already carries (so a volume is recognised
# after being detached and attached again).
seen=" "
while true; do
  present=" "
  for dev in /dev/vd[b-z]; do
    [ -b "$dev" ] || continue
    [ "$(cat "/sys/block/${dev#/dev/}/ro" 2>/dev/null)" = 1 ] && continue  # the seed
    present="$present$dev "
    case "$seen" in *" $dev "*) continue ;; esac
    mark=$(head -c 64 "$dev" 2>/dev/null | tr -d '\000' | sed -n 's/^\(occi-marker:[^ ]*\).*/\1/p')
    if [ -n "$mark" ]; then
      echo "occi-tiny: disk $dev carries $mark"
    else
      if printf 'occi-marker:%s:%s ' "$(hostname)" "${dev#/dev/}" \
          | dd of="$dev" conv=notrunc,fsync 2>/dev/null; then
        echo "occi-tiny: disk $dev marked occi-marker:$(hostname):${dev#/dev/}"
      else
        echo "occi-tiny: disk $dev cannot be written"
      fi
    fi
  done
  seen="$present"
  sleep 1
done
