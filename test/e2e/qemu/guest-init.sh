#!/bin/busybox sh
# /init of the test's initramfs (packed by prepare.sh). Loads the modules, mounts the host's root
# read-only over 9p (QEMU -virtfs mount_tag=hostroot), gives it the guest's own proc, sysfs,
# devtmpfs and writable tmpfs directories, and switches root into it to run the host's Node on
# guest-agent.js as PID 1. udevadm refuses to act under a plain chroot, hence switch_root.
# The kernel command line passes mamori_node and mamori_agent (absolute host paths).

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

fail() {
  echo "@@MAMORI FATAL {\"stage\":\"init\",\"error\":\"$*\"}"
  echo o > /proc/sysrq-trigger
  sleep 10
}

# Keep kernel messages off the console: the host reads protocol lines from it.
echo 1 > /proc/sys/kernel/printk
# Commands arrive on the console; do not echo them back into the protocol stream.
stty -echo 2>/dev/null

for m in $(cat /modules.list); do
  # crct10dif-pclmul and the like are optional accelerations; a failure there is harmless.
  insmod "/mods/$m" 2>/dev/null
done

mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /newroot \
  || fail "cannot mount the host root over 9p (mount_tag hostroot)"
mount -t proc proc /newroot/proc || fail "mount proc"
mount -t sysfs sysfs /newroot/sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /newroot/dev || fail "mount devtmpfs"
mount -t tmpfs -o mode=755 tmpfs /newroot/run || fail "mount /run"
# Not over /tmp: the checkout under test may live there (CI clones into /tmp), and it must stay
# visible. The guest's own scratch space is /run/tmp.
mkdir -p /newroot/run/tmp && chmod 1777 /newroot/run/tmp
export TMPDIR=/run/tmp
# The agent writes its udev rules here; the host's own directory is read-only and not ours.
if [ -d /newroot/etc/udev/rules.d ]; then
  mount -t tmpfs -o mode=755 tmpfs /newroot/etc/udev/rules.d || fail "mount /etc/udev/rules.d"
else
  fail "/etc/udev/rules.d does not exist on the host (is udev installed?)"
fi

[ -x "/newroot$mamori_node" ] || fail "node not found at $mamori_node"
[ -f "/newroot$mamori_agent" ] || fail "guest agent not found at $mamori_agent"
echo "@@MAMORI STAGE1 {\"kernel\":\"$(uname -r)\"}"
exec switch_root /newroot "$mamori_node" "$mamori_agent"
fail "switch_root failed"
