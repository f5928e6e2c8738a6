; A stand-in for the programs installer.nsh runs from the installed files (Mamori.exe as the
; mamori CLI, resources\service\mamori-agent.exe as WinSW), for the Wine run: a real Windows
; program that records how it was called and answers as the test tells it.
; - appends "<exe path>|<ELECTRON_RUN_AS_NODE>|<command line>" to C:\mamori-test\calls.log (UTF-16LE)
; - if C:\mamori-test\<exe name>.code exists, exits with the number in it (else 0)
; - if C:\mamori-test\<exe name>.out exists, writes its bytes to stdout
; - if C:\mamori-test\<exe name>.log exists, appends its bytes to C:\ProgramData\Mamori\install.log,
;   as the mamori CLI does with --log
Unicode true
Name "recorder"
OutFile "${OUT_FILE}"
SilentInstall silent
RequestExecutionLevel user
!include LogicLib.nsh

!macro copyBytes FROM TO_HANDLE
  ClearErrors
  FileOpen $5 "${FROM}" r
  ${IfNot} ${Errors}
    ${Do}
      ClearErrors
      FileReadByte $5 $6
      ${If} ${Errors}
        ${Break}
      ${EndIf}
      FileWriteByte ${TO_HANDLE} $6
    ${Loop}
    FileClose $5
  ${EndIf}
!macroend

Function .onInit
  ReadEnvStr $1 ELECTRON_RUN_AS_NODE
  CreateDirectory "C:\mamori-test"
  FileOpen $0 "C:\mamori-test\calls.log" a
  FileSeek $0 0 END
  FileWriteUTF16LE $0 "$EXEPATH|$1|$CMDLINE$\r$\n"
  FileClose $0

  StrCpy $2 0
  ClearErrors
  FileOpen $0 "C:\mamori-test\$EXEFILE.code" r
  ${IfNot} ${Errors}
    FileRead $0 $2
    FileClose $0
    IntOp $2 $2 + 0
  ${EndIf}

  System::Call 'kernel32::GetStdHandle(i -11) p .r3'
  !insertmacro copyBytes "C:\mamori-test\$EXEFILE.out" $3

  ${If} ${FileExists} "C:\mamori-test\$EXEFILE.log"
    CreateDirectory "C:\ProgramData\Mamori"
    FileOpen $4 "C:\ProgramData\Mamori\install.log" a
    FileSeek $4 0 END
    !insertmacro copyBytes "C:\mamori-test\$EXEFILE.log" $4
    FileClose $4
  ${EndIf}

  SetErrorLevel $2
  Quit
FunctionEnd

Section
SectionEnd
