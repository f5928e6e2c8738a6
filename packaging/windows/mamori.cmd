@echo off
rem The mamori command on an installed Windows terminal (resources\mamori.cmd):
rem   "C:\Program Files\Mamori\resources\mamori.cmd" agent status
rem Mamori.exe runs as Electron's bundled Node only with ELECTRON_RUN_AS_NODE set.
setlocal
set ELECTRON_RUN_AS_NODE=1
"%~dp0..\Mamori.exe" "%~dp0app.asar\bin\mamori.js" %*
exit /b %ERRORLEVEL%
