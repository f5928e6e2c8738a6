; Mamori: what the NSIS installer adds to electron-builder's one-click, per-machine installer
; (`nsis.include` in electron-builder.yml). electron-builder inserts these macros at fixed points:
;   customInit            .onInit, install mode known ($INSTDIR set)
;   customCheckAppRunning before files are replaced or removed (installer and uninstaller)
;   customInstall         after the files and the uninstall registry entry are in place
;   customUnInstall       before the files are removed (also when an upgrade runs the old
;                         uninstaller with --updated)
;
; Silent install, one line per PC (docs/deploy.*.md):
;   Mamori-Setup-<version>.exe /S /COLLECTOR=https://mamori.example.lg.jp:8765 /TOKEN=<token> /SEGMENT=lgwan [/PUBKEY=<key>]
; or a mamori-provision.json beside the installer. Exit codes: 0 installed; 2 provisioning invalid
; or missing; 3 the agent service could not be registered or started; 4 the data folder could
; not be secured. Uninstall: 5 the OS controls could not be restored (nothing removed).
; Each outcome is also written to %ProgramData%\Mamori\install.log (UTF-8).
;
; This file is compiled by Debian's makensis in CI inside a small wrapper that stands in for
; electron-builder's script (test/e2e/packaging.test.ts) and run under Wine
; (test/e2e/installer-windows.test.ts).

!include LogicLib.nsh
!include FileFunc.nsh
!include WordFunc.nsh

; electron-builder declares these only when it runs its own app check; ours replaces that check
; and still calls its _CHECK_APP_RUNNING, which needs them.
!include "getProcessInfo.nsh"
Var pid

!define MAMORI_SERVICE "MamoriAgent"
!define MAMORI_WINSW "$INSTDIR\resources\service\mamori-agent.exe"
!define MAMORI_CLI '"$INSTDIR\${APP_EXECUTABLE_FILENAME}" "$INSTDIR\resources\app.asar\bin\mamori.js"'
; $APPDATA is ProgramData under SetShellVarContext all, which every macro below sets first.
!define MAMORI_DATA "$APPDATA\Mamori"
!define MAMORI_LOG "$APPDATA\Mamori\install.log"
!define MAMORI_RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
; The service's security descriptor: SYSTEM and Administrators control it; interactive, service
; and authenticated users may only query it, so no staff account can stop or pause protection.
!define MAMORI_SDDL "D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)(A;;CCLCSWLORC;;;IU)(A;;CCLCSWLORC;;;SU)(A;;CCLCSWLORC;;;AU)S:(AU;FA;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;WD)"

Var mamoriLine
Var mamoriCode
Var mamoriOut
Var mamoriMark
!ifndef BUILD_UNINSTALLER
  Var mamoriUpgrade
!endif

; Appends one line to install.log as UTF-8 (NSIS's FileWrite would write the ANSI code page, and
; the agent's own lines in the same file are UTF-8).
!macro mamoriLog TEXT
  StrCpy $mamoriLine "${TEXT}"
  Push $0
  Push $1
  Push $2
  Push $3
  Push $4
  Push $5
  Push $6
  Push $7
  SetShellVarContext all
  CreateDirectory "${MAMORI_DATA}"
  ${GetTime} "" "L" $1 $2 $3 $4 $5 $6 $7
  StrCpy $mamoriLine "$3-$2-$1 $5:$6:$7 [Mamori-Setup ${VERSION}] $mamoriLine$\r$\n"
  ClearErrors
  FileOpen $0 "${MAMORI_LOG}" a
  ${IfNot} ${Errors}
    FileSeek $0 0 END
    ; Passed through a register, so quotes in the text cannot break the call.
    StrCpy $4 $mamoriLine
    System::Call 'kernel32::WideCharToMultiByte(i 65001, i 0, w r4, i -1, p 0, i 0, p 0, p 0) i .r1'
    System::Alloc $1
    Pop $2
    System::Call 'kernel32::WideCharToMultiByte(i 65001, i 0, w r4, i -1, p r2, i r1, p 0, p 0)'
    IntOp $1 $1 - 1
    System::Call 'kernel32::WriteFile(p r0, p r2, i r1, *i .r3, p 0)'
    System::Free $2
    FileClose $0
  ${EndIf}
  Pop $7
  Pop $6
  Pop $5
  Pop $4
  Pop $3
  Pop $2
  Pop $1
  Pop $0
!macroend

; $mamoriMark ← the size of install.log now (0 when it does not exist yet).
!macro mamoriLogMark
  StrCpy $mamoriMark 0
  ClearErrors
  FileOpen $mamoriCode "${MAMORI_LOG}" r
  ${IfNot} ${Errors}
    FileSeek $mamoriCode 0 END $mamoriMark
    FileClose $mamoriCode
  ${EndIf}
!macroend

; $mamoriOut ← the last line appended to install.log since $mamoriMark, decoded from UTF-8;
; unchanged when nothing was appended. nsExec decodes a child's output with the ANSI code page,
; which garbles the agent's Japanese; the agent writes the same line to the log as UTF-8.
!macro mamoriLogSince
  Push $0
  Push $1
  Push $2
  Push $3
  Push $4
  ClearErrors
  FileOpen $0 "${MAMORI_LOG}" r
  ${IfNot} ${Errors}
    FileSeek $0 0 END $1
    IntOp $2 $1 - $mamoriMark
    ${If} $2 > 0
      ; At most the last 1000 bytes: they decode to fewer characters than an NSIS string holds.
      ${If} $2 > 1000
        StrCpy $2 1000
      ${EndIf}
      IntOp $1 $1 - $2
      FileSeek $0 $1 SET
      IntOp $3 $2 + 1
      System::Alloc $3
      Pop $3
      System::Call 'kernel32::ReadFile(p r0, p r3, i r2, *i .r4, p 0)'
      System::Call 'kernel32::MultiByteToWideChar(i 65001, i 0, p r3, i -1, w .r4, i ${NSIS_MAX_STRLEN})'
      System::Free $3
      ${WordReplace} "$4" "$\r" "" "+" $4
      ; The last non-empty line.
      ${WordFind} "$4" "$\n" "E-1" $1
      ${If} ${Errors}
      ${OrIf} $1 == ""
        ClearErrors
        ${WordFind} "$4" "$\n" "E-2" $1
      ${EndIf}
      ${IfNot} ${Errors}
      ${AndIf} $1 != ""
        ; Without the agent's own time stamp: the log line shows it already.
        ${WordFind} "$1" " " "E+1}" $2
        ${IfNot} ${Errors}
          StrCpy $1 $2
        ${EndIf}
        StrCpy $mamoriOut $1
      ${EndIf}
    ${EndIf}
    FileClose $0
  ${EndIf}
  Pop $4
  Pop $3
  Pop $2
  Pop $1
  Pop $0
!macroend

; Runs `mamori ARGS` on Electron's bundled Node, the runtime the service uses. Exit code in
; $mamoriCode ("error" when it could not start); on failure $mamoriOut holds the agent's
; message (from install.log when it wrote one there, else its output), on one line.
!macro mamoriCli ARGS
  !insertmacro mamoriLogMark
  System::Call 'kernel32::SetEnvironmentVariable(t "ELECTRON_RUN_AS_NODE", t "1") i'
  nsExec::ExecToStack '${MAMORI_CLI} ${ARGS}'
  Pop $mamoriCode
  Pop $mamoriOut
  ; Only this call runs as Node: anything started later (the tray) must start as Electron.
  System::Call 'kernel32::SetEnvironmentVariable(t "ELECTRON_RUN_AS_NODE", p 0) i'
  ${If} $mamoriCode != 0
    !insertmacro mamoriLogSince
  ${EndIf}
  ${WordReplace} "$mamoriOut" "$\r" "" "+" $mamoriOut
  ${WordReplace} "$mamoriOut" "$\n" " " "+" $mamoriOut
!macroend

; Stops the agent service through the service manager and waits up to 30 s for it to stop.
; (Killing its process would only make the service manager restart it.)
!macro mamoriStopService
  nsExec::Exec '"$SYSDIR\sc.exe" query ${MAMORI_SERVICE}'
  Pop $mamoriCode
  ${If} $mamoriCode == 0
    DetailPrint "Stopping ${MAMORI_SERVICE}"
    nsExec::Exec '"$SYSDIR\sc.exe" stop ${MAMORI_SERVICE}'
    Pop $mamoriCode
    Push $0
    StrCpy $0 0
    ${Do}
      nsExec::ExecToStack '"$SYSDIR\sc.exe" query ${MAMORI_SERVICE}'
      Pop $mamoriCode
      Pop $mamoriOut
      ${If} $mamoriCode != 0
        ${Break}
      ${EndIf}
      ClearErrors
      ${WordFind} "$mamoriOut" "STOPPED" "E+1{" $mamoriOut
      ${IfNot} ${Errors}
        ${Break}
      ${EndIf}
      IntOp $0 $0 + 1
      ${If} $0 > 60
        ${Break}
      ${EndIf}
      Sleep 500
    ${Loop}
    Pop $0
  ${EndIf}
!macroend

!macro customCheckAppRunning
  ; Runs before files are replaced or removed. The agent service runs Mamori.exe from $INSTDIR
  ; as SYSTEM: stop it first, then close the trays the way electron-builder does. The uninstaller
  ; starts unelevated and elevates itself afterwards; unelevated it can neither stop the service
  ; nor close other users' trays, so it leaves both to its elevated self.
  ${If} ${UAC_IsAdmin}
    !insertmacro mamoriStopService
    !insertmacro IS_POWERSHELL_AVAILABLE
    !insertmacro _CHECK_APP_RUNNING
  ${EndIf}
!macroend

!ifndef BUILD_UNINSTALLER

!macro customInit
  ; An upgrade (or a repair) finds the previous install or its service; a failure then keeps
  ; the terminal protected instead of removing anything.
  StrCpy $mamoriUpgrade "0"
  ReadRegStr $mamoriOut HKLM "${INSTALL_REGISTRY_KEY}" InstallLocation
  ${If} $mamoriOut != ""
    StrCpy $mamoriUpgrade "1"
  ${EndIf}
  nsExec::Exec '"$SYSDIR\sc.exe" query ${MAMORI_SERVICE}'
  Pop $mamoriCode
  ${If} $mamoriCode == 0
    StrCpy $mamoriUpgrade "1"
  ${EndIf}
!macroend

; A failed fresh install leaves nothing behind but its log; a failed upgrade starts the service
; again, so the terminal stays protected with what it has.
!macro mamoriRollback
  ${If} $mamoriUpgrade == "1"
    nsExec::Exec '"${MAMORI_WINSW}" start'
    Pop $mamoriCode
  ${Else}
    nsExec::Exec '"$SYSDIR\sc.exe" query ${MAMORI_SERVICE}'
    Pop $mamoriCode
    ${If} $mamoriCode == 0
      nsExec::Exec '"${MAMORI_WINSW}" uninstall'
      Pop $mamoriCode
    ${EndIf}
    DeleteRegValue HKLM "${MAMORI_RUN_KEY}" "${PRODUCT_NAME}"
    Delete "$newStartMenuLink"
    Delete "$newDesktopLink"
    DeleteRegKey SHELL_CONTEXT "${UNINSTALL_REGISTRY_KEY}"
    !ifdef UNINSTALL_REGISTRY_KEY_2
      DeleteRegKey SHELL_CONTEXT "${UNINSTALL_REGISTRY_KEY_2}"
    !endif
    DeleteRegKey SHELL_CONTEXT "${INSTALL_REGISTRY_KEY}"
    SetOutPath $TEMP
    RMDir /r "$INSTDIR"
  ${EndIf}
!macroend

!macro mamoriFail CODE TEXT
  !insertmacro mamoriLog "インストールを中止しました / installation aborted (exit ${CODE}): ${TEXT}"
  DetailPrint "${TEXT}"
  MessageBox MB_OK|MB_ICONSTOP "Mamori をインストールできませんでした。$\r$\nMamori could not be installed.$\r$\n$\r$\n${TEXT}$\r$\n$\r$\n${MAMORI_LOG}" /SD IDOK
  !insertmacro mamoriRollback
  SetErrorLevel ${CODE}
  Quit
!macroend

!macro customInstall
  SetShellVarContext all
  !insertmacro mamoriLog "install to $INSTDIR (upgrade: $mamoriUpgrade)"

  ; 1. The data folder holds the agent's token and the per-agent unlock secret: SYSTEM and
  ; Administrators only, nothing inherited from ProgramData (where Users may read and create).
  CreateDirectory "${MAMORI_DATA}"
  CreateDirectory "${MAMORI_DATA}\logs"
  nsExec::ExecToStack '"$SYSDIR\icacls.exe" "${MAMORI_DATA}" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F'
  Pop $mamoriCode
  Pop $mamoriOut
  ${If} $mamoriCode != 0
    !insertmacro mamoriFail 4 "データフォルダーを保護できませんでした / the data folder could not be secured (icacls exited $mamoriCode): $mamoriOut"
  ${EndIf}

  ; 2. Provisioning: the installer's own arguments (after --, so its switches are never read as
  ; the CLI's) and a mamori-provision.json beside it. The CLI validates them, keeps an existing
  ; enrollment on upgrades, and names every problem in one line.
  ${GetParameters} $R0
  !insertmacro mamoriCli 'agent provision --data-dir "${MAMORI_DATA}" --beside "$EXEPATH" --log "${MAMORI_LOG}" -- $R0'
  ${If} $mamoriCode != 0
    !insertmacro mamoriFail 2 "$mamoriOut"
  ${EndIf}

  ; 3. The agent service (WinSW): LocalSystem, automatic start, restart on failure, a security
  ; descriptor that lets no staff account stop it. An upgrade keeps the registration (WinSW
  ; reads mamori-agent.xml at each start) and only starts it again.
  nsExec::Exec '"$SYSDIR\sc.exe" query ${MAMORI_SERVICE}'
  Pop $mamoriCode
  ${If} $mamoriCode != 0
    nsExec::ExecToStack '"${MAMORI_WINSW}" install'
    Pop $mamoriCode
    Pop $mamoriOut
    ${If} $mamoriCode != 0
      !insertmacro mamoriFail 3 "エージェントのサービスを登録できませんでした / the agent service could not be registered (exit $mamoriCode): $mamoriOut"
    ${EndIf}
  ${EndIf}
  ; Restart after any failure, a non-zero exit included (failureflag), not only after a crash.
  nsExec::Exec '"$SYSDIR\sc.exe" failure ${MAMORI_SERVICE} reset= 3600 actions= restart/2000/restart/10000/restart/60000'
  Pop $mamoriCode
  nsExec::Exec '"$SYSDIR\sc.exe" failureflag ${MAMORI_SERVICE} 1'
  Pop $mamoriCode
  nsExec::ExecToStack '"$SYSDIR\sc.exe" sdset ${MAMORI_SERVICE} ${MAMORI_SDDL}'
  Pop $mamoriCode
  Pop $mamoriOut
  ${If} $mamoriCode != 0
    ; Windows' default descriptor already denies non-administrators a stop; ours states it.
    !insertmacro mamoriLog "warning: sc sdset exited $mamoriCode: $mamoriOut"
  ${EndIf}
  nsExec::ExecToStack '"${MAMORI_WINSW}" start'
  Pop $mamoriCode
  Pop $mamoriOut
  ${If} $mamoriCode != 0
    !insertmacro mamoriFail 3 "エージェントのサービスを開始できませんでした / the agent service could not be started (exit $mamoriCode): $mamoriOut"
  ${EndIf}

  ; 4. The tray starts at every user's logon; quitting it never stops the service.
  WriteRegStr HKLM "${MAMORI_RUN_KEY}" "${PRODUCT_NAME}" '"$INSTDIR\${APP_EXECUTABLE_FILENAME}"'
  !insertmacro mamoriLog "installed: service ${MAMORI_SERVICE} running, tray at logon"
!macroend

!endif ; !BUILD_UNINSTALLER

!ifdef BUILD_UNINSTALLER

!macro customUnInstall
  ; An upgrade runs this uninstaller with --updated: the service, its registration, the data and
  ; the enrollment all stay; the new installer starts the service again.
  ${IfNot} ${isUpdated}
    SetShellVarContext all
    !insertmacro mamoriStopService
    !insertmacro mamoriCli 'agent release --data-dir "${MAMORI_DATA}" --log "${MAMORI_LOG}"'
    ${If} $mamoriCode != 0
      !insertmacro mamoriLog "アンインストールを中止しました / uninstall aborted (exit 5): $mamoriOut"
      MessageBox MB_OK|MB_ICONSTOP "OS の外部記録媒体の制御を元に戻せなかったため、アンインストールを中止しました。$\r$\nThe OS removable-media controls could not be restored; nothing was removed.$\r$\n$\r$\n$mamoriOut" /SD IDOK
      ; Protection stays on rather than half off.
      nsExec::Exec '"${MAMORI_WINSW}" start'
      Pop $mamoriCode
      SetErrorLevel 5
      Quit
    ${EndIf}
    nsExec::ExecToStack '"${MAMORI_WINSW}" uninstall'
    Pop $mamoriCode
    Pop $mamoriOut
    ${If} $mamoriCode != 0
      !insertmacro mamoriLog "warning: the service registration could not be removed (exit $mamoriCode): $mamoriOut"
    ${EndIf}
    DeleteRegValue HKLM "${MAMORI_RUN_KEY}" "${PRODUCT_NAME}"
    ; The local log is audit evidence: kept unless IT asks for /PURGE.
    ${GetParameters} $R0
    ClearErrors
    ${GetOptions} $R0 "/PURGE" $R1
    ${IfNot} ${Errors}
      RMDir /r "${MAMORI_DATA}"
    ${Else}
      !insertmacro mamoriLog "uninstalled: service removed, OS controls restored, data kept in ${MAMORI_DATA}"
    ${EndIf}
  ${EndIf}
!macroend

!endif ; BUILD_UNINSTALLER
