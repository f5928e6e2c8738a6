#!/bin/sh
# Uninstalls Mamori from a Mac (administrators only):
#   sudo "/Applications/Mamori.app/Contents/Resources/macos/uninstall.sh" [--purge]
# Stops the agent daemon, gives the OS its removable-media controls back, removes the daemon,
# the tray's login item, the command and the app. The local log stays in
# /Library/Application Support/Mamori unless --purge is given.
set -e
if [ "$(id -u)" != 0 ]; then
  echo "管理者として実行してください / run as an administrator: sudo $0" >&2
  exit 1
fi
APP=/Applications/Mamori.app
DATA="/Library/Application Support/Mamori"

launchctl bootout system/jp.mamori.agent 2>/dev/null || true
ELECTRON_RUN_AS_NODE=1 "$APP/Contents/MacOS/Mamori" "$APP/Contents/Resources/app.asar/bin/mamori.js" agent release \
  --data-dir "$DATA" --ipc /var/run/mamori/agent.sock --log "$DATA/install.log"
rm -f /Library/LaunchDaemons/jp.mamori.agent.plist /Library/LaunchAgents/jp.mamori.tray.plist /usr/local/bin/mamori
# Trays still running in login sessions end with the app.
killall Mamori 2>/dev/null || true
rm -rf "$APP"
pkgutil --forget jp.mamori.endpoint >/dev/null 2>&1 || true
if [ "$1" = "--purge" ]; then rm -rf "$DATA" /Library/Logs/Mamori; fi
echo "Mamori を削除しました / Mamori removed"
