; A stand-in for the script electron-builder generates around packaging/windows/installer.nsh
; (node_modules/app-builder-lib/templates/nsis: installer.nsi, installSection.nsh,
; uninstaller.nsh, multiUser.nsh, common.nsh), reduced to the calls that reach our macros and in
; the same order, so that Debian's makensis can compile it and Wine can run it. electron-builder's
; own script needs its NSIS build and plugins (UAC, StdUtils, nsProcess, SpiderBanner, WinShell),
; which are downloaded; those parts are replaced here by stock NSIS (UserInfo, FileFunc).
;
; Defines, as electron-builder passes them: PRODUCT_NAME, PRODUCT_FILENAME, APP_FILENAME,
; APP_GUID, UNINSTALL_APP_KEY, VERSION; and for this wrapper: EB_INCLUDE (electron-builder's
; include dir), MAMORI_INCLUDE (packaging/windows), OUT_FILE, UNINSTALLER_OUT_FILE, APP_DIR
; (the files to install; installer only). BUILD_UNINSTALLER builds the uninstaller-writer, as
; electron-builder does before the installer.

Unicode true
!addincludedir "${EB_INCLUDE}"
!addincludedir "${MAMORI_INCLUDE}"

!include LogicLib.nsh
!include FileFunc.nsh
!include x64.nsh

; common.nsh / multiUser.nsh
!define APP_EXECUTABLE_FILENAME "${PRODUCT_FILENAME}.exe"
!define UNINSTALL_FILENAME "Uninstall ${PRODUCT_FILENAME}.exe"
!define INSTALL_MODE_PER_ALL_USERS
!define ONE_CLICK
!define APP_64
!define /ifndef INSTALL_REGISTRY_KEY "Software\${APP_GUID}"
!define /ifndef UNINSTALL_REGISTRY_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${UNINSTALL_APP_KEY}"

; NsisScriptGenerator.flags(): ${isUpdated} and friends, with FileFunc in place of StdUtils.
!macro _mamoriTestFlag NAME _a _b _t _f
  ${GetParameters} $R9
  ClearErrors
  ${GetOptions} $R9 "--${NAME}" $R8
  IfErrors `${_f}` `${_t}`
!macroend
!macro _isUpdated _a _b _t _f
  !insertmacro _mamoriTestFlag updated `${_a}` `${_b}` `${_t}` `${_f}`
!macroend
!define isUpdated `"" isUpdated ""`

; UAC.nsh (the UAC plugin is electron-builder's): an administrator token or not.
!macro _UAC_IsAdmin _a _b _t _f
  UserInfo::GetAccountType
  Pop $R9
  StrCmp $R9 "Admin" `${_t}` `${_f}`
!macroend
!define UAC_IsAdmin `"" UAC_IsAdmin ""`

; `nsis.include`: electron-builder includes it in the script header, before its own templates.
!include "${MAMORI_INCLUDE}/installer.nsh"

LoadLanguageFile "${NSISDIR}\Contrib\Language files\English.nlf"
!ifdef MAMORI_WINE_RUN
  ; Wine's tasklist and findstr are stubs (no output, exit 0), so electron-builder's check would
  ; always find the app running and give up. The Wine run starts no tray: this stand-in only
  ; keeps the shape (it still calls GetProcessInfo, as the real check does).
  !macro IS_POWERSHELL_AVAILABLE
  !macroend
  !macro _CHECK_APP_RUNNING
    ${GetProcessInfo} 0 $pid $1 $2 $3 $4
    DetailPrint "running as $3 ($pid)"
  !macroend
  !macro CHECK_APP_RUNNING
    !insertmacro customCheckAppRunning
  !macroend
!else
  ; electron-builder's own check, which installer.nsh's customCheckAppRunning calls.
  LangString appRunning ${LANG_ENGLISH} "${PRODUCT_NAME} is running. Click OK to close it."
  LangString appClosing ${LANG_ENGLISH} "Closing running ${PRODUCT_NAME}..."
  LangString appCannotBeClosed ${LANG_ENGLISH} "${PRODUCT_NAME} cannot be closed."
  !include "allowOnlyOneInstallerInstance.nsh"
!endif

Name "${PRODUCT_NAME}"
OutFile "${OUT_FILE}"
ShowInstDetails nevershow
Var newStartMenuLink
Var newDesktopLink
!ifdef BUILD_UNINSTALLER
  RequestExecutionLevel user
  SilentInstall silent
!else
  RequestExecutionLevel admin
  Var appExe
!endif

!macro quitSuccess
  SetErrorLevel 0
  Quit
!macroend

!macro setLinkVars
  StrCpy $newDesktopLink "$DESKTOP\${PRODUCT_NAME}.lnk"
  StrCpy $newStartMenuLink "$SMPROGRAMS\${PRODUCT_NAME}.lnk"
!macroend

!macro initMultiUser
  SetShellVarContext all
  ReadRegStr $R0 HKLM "${INSTALL_REGISTRY_KEY}" InstallLocation
  ${If} $R0 != ""
    StrCpy $INSTDIR $R0
  ${Else}
    StrCpy $INSTDIR "$PROGRAMFILES64\${APP_FILENAME}"
  ${EndIf}
!macroend

Function .onInit
  SetRegView 64
  !ifdef BUILD_UNINSTALLER
    WriteUninstaller "${UNINSTALLER_OUT_FILE}"
    !insertmacro quitSuccess
  !else
    !insertmacro initMultiUser
    !insertmacro customInit
  !endif
FunctionEnd

Section "install"
  !ifndef BUILD_UNINSTALLER
    StrCpy $appExe "$INSTDIR\${APP_EXECUTABLE_FILENAME}"
    !insertmacro setLinkVars
    !insertmacro CHECK_APP_RUNNING

    ; uninstallOldVersion: the previous version's uninstaller, with --updated.
    ReadRegStr $R1 HKLM "${UNINSTALL_REGISTRY_KEY}" UninstallString
    ${If} $R1 != ""
      InitPluginsDir
      CopyFiles /SILENT "$INSTDIR\${UNINSTALL_FILENAME}" "$PLUGINSDIR\old-uninstaller.exe"
      ExecWait '"$PLUGINSDIR\old-uninstaller.exe" /S /KEEP_APP_DATA /allusers --updated _?=$INSTDIR' $R0
      ${If} $R0 != 0
        SetErrorLevel 2
        Quit
      ${EndIf}
    ${EndIf}

    ; installApplicationFiles and registryAddInstallInfo
    SetOutPath $INSTDIR
    File /r "${APP_DIR}\*.*"
    File "/oname=${UNINSTALL_FILENAME}" "${UNINSTALLER_OUT_FILE}"
    WriteRegStr SHELL_CONTEXT "${INSTALL_REGISTRY_KEY}" InstallLocation "$INSTDIR"
    WriteRegStr SHELL_CONTEXT "${UNINSTALL_REGISTRY_KEY}" DisplayName "${PRODUCT_NAME} ${VERSION}"
    WriteRegStr SHELL_CONTEXT "${UNINSTALL_REGISTRY_KEY}" UninstallString '"$INSTDIR\${UNINSTALL_FILENAME}" /allusers'
    WriteRegStr SHELL_CONTEXT "${UNINSTALL_REGISTRY_KEY}" QuietUninstallString '"$INSTDIR\${UNINSTALL_FILENAME}" /allusers /S'
    WriteRegStr SHELL_CONTEXT "${UNINSTALL_REGISTRY_KEY}" DisplayVersion "${VERSION}"
    CreateShortCut "$newStartMenuLink" "$appExe"
    !insertmacro customInstall
    !insertmacro quitSuccess
  !endif
SectionEnd

!ifdef BUILD_UNINSTALLER
  Function un.checkAppRunning
    !insertmacro CHECK_APP_RUNNING
  FunctionEnd

  Function un.onInit
    SetRegView 64
    ${GetParameters} $R0
    ClearErrors
    ${GetOptions} $R0 "/S" $R1
    ${IfNot} ${Errors}
      SetSilent silent
    ${EndIf}
    Call un.checkAppRunning
    !insertmacro initMultiUser
  FunctionEnd

  Section "un.Uninstall"
    !insertmacro setLinkVars
    !insertmacro customUnInstall
    SetOutPath $TEMP
    RMDir /r $INSTDIR
    ${IfNot} ${isUpdated}
      Delete "$newStartMenuLink"
    ${EndIf}
    DeleteRegKey SHELL_CONTEXT "${UNINSTALL_REGISTRY_KEY}"
    DeleteRegKey SHELL_CONTEXT "${INSTALL_REGISTRY_KEY}"
    !insertmacro quitSuccess
  SectionEnd
!endif
