'use strict';
// electron-builder's `msiProjectCreated` hook (electron-builder.yml): turns the WiX project that
// electron-builder writes from app-builder-lib/templates/msi/template.xml into Mamori's MSI, the
// counterpart of packaging/windows/installer.nsh for IT who deploy MSIs (GPO software
// installation, SCCM, Intune):
//
//   msiexec /i Mamori-<version>.msi /qn COLLECTOR=https://… TOKEN=… SEGMENT=lgwan [PUBKEY=…] /l*v install-msi.log
//
// - COLLECTOR, TOKEN (hidden from logs), SEGMENT, PUBKEY are public, secure properties, handed to
//   `mamori agent provision` (a mamori-provision.json beside the .msi is read too); a bad or
//   missing provision fails the install (msiexec exits 1603) and the reason is written to
//   %ProgramData%\Mamori\install.log;
// - the agent runs as the MamoriAgent service (WinSW, LocalSystem, automatic), registered with
//   Windows Installer's own ServiceInstall/ServiceControl, so upgrades and rollbacks stop and start
//   it; `sc failure`/`failureflag` restart it after any failure and `sc sdset` lets only SYSTEM and
//   Administrators stop it;
// - %ProgramData%\Mamori is created for SYSTEM and Administrators only (it holds the agent token
//   and the unlock secret);
// - the tray starts at every logon (HKLM Run);
// - uninstall (not an upgrade) gives the OS its removable-media controls back
//   (`mamori agent release`) before the service is deleted; if that fails, the uninstall rolls
//   back.
//
// WiX itself is downloaded by electron-builder and cannot run on the closed CI network; the
// edits are checked against the project electron-builder writes there (test/e2e/packaging.test.ts).

const fs = require('node:fs');

const SERVICE = 'MamoriAgent';
// SYSTEM and Administrators control the service; other accounts may only query it.
const SDDL =
  'D:(A;;CCLCSWRPWPDTLOCRRC;;;SY)(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;BA)(A;;CCLCSWLORC;;;IU)(A;;CCLCSWLORC;;;SU)(A;;CCLCSWLORC;;;AU)S:(AU;FA;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;WD)';
const DATA_GUID = '{E890CC28-72F6-4F5F-9C84-A6F61B047485}';
const RUN_GUID = '{7D74BB45-2211-4A17-8201-D99809EAE486}';

/** XML attribute text. */
const attr = (s) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The `mamori` command on the installed files (resources\mamori.cmd sets ELECTRON_RUN_AS_NODE). */
function cli(args) {
  // cmd /s /c strips the outer quotes and runs the rest as typed.
  return `"[System64Folder]cmd.exe" /d /s /c ""[APPLICATIONFOLDER]resources\\mamori.cmd" ${args}"`;
}

const DATA = '[MAMORIDATADIR]';
// A trailing backslash before a closing quote would escape it on a Windows command line: "…\."
const DATA_ARG = `"${DATA}."`;

const CUSTOM_ACTIONS = [
  {
    id: 'MamoriSecureData',
    after: 'CreateFolders',
    // Runs before InstallFiles: the program folder may not exist yet, the data folder does.
    dir: 'MAMORIDATADIR',
    condition: 'NOT REMOVE="ALL"',
    command: `"[System64Folder]icacls.exe" ${DATA_ARG} /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F`,
    check: true,
  },
  {
    id: 'MamoriProvision',
    after: 'InstallFiles',
    condition: 'NOT REMOVE="ALL"',
    command: cli(`agent provision --data-dir ${DATA_ARG} --beside "[OriginalDatabase]" --log "${DATA}install.log" -- "COLLECTOR=[COLLECTOR]" "TOKEN=[TOKEN]" "SEGMENT=[SEGMENT]" "PUBKEY=[PUBKEY]"`),
    check: true,
    // The command line holds the enrollment token: keep it out of the MSI log.
    hideTarget: true,
  },
  {
    id: 'MamoriServiceFailure',
    after: 'InstallServices',
    condition: 'NOT REMOVE="ALL"',
    command: `"[System64Folder]sc.exe" failure ${SERVICE} reset= 3600 actions= restart/2000/restart/10000/restart/60000`,
    check: true,
  },
  {
    id: 'MamoriServiceFailureFlag',
    after: 'MamoriServiceFailure',
    condition: 'NOT REMOVE="ALL"',
    command: `"[System64Folder]sc.exe" failureflag ${SERVICE} 1`,
    check: false,
  },
  {
    id: 'MamoriServiceSecurity',
    after: 'MamoriServiceFailureFlag',
    condition: 'NOT REMOVE="ALL"',
    command: `"[System64Folder]sc.exe" sdset ${SERVICE} ${SDDL}`,
    // Windows' default descriptor already denies non-administrators a stop; ours states it.
    check: false,
  },
  {
    id: 'MamoriRelease',
    after: 'StopServices',
    condition: 'REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE',
    command: cli(`agent release --data-dir ${DATA_ARG} --log "${DATA}install.log"`),
    check: true,
  },
];

/**
 * The WiX project with Mamori's service, provisioning, data folder, tray autostart and release.
 * @param {string} wxs the project electron-builder wrote
 * @returns {string}
 * @throws Error when the project does not look like electron-builder's (its template changed)
 */
function editMsiProject(wxs) {
  const fileTag = /<File\b[^>]*Source="[^"]*[\\/]resources[\\/]service[\\/]mamori-agent\.exe"[^>]*\/>/;
  const must = (re, what) => {
    if (!re.test(wxs)) throw new Error(`msi-project: ${what} not found in the WiX project; electron-builder's MSI template changed`);
  };
  must(fileTag, 'the WinSW file (resources/service/mamori-agent.exe)');
  must(/<Directory Id="APPLICATIONFOLDER"/, 'the APPLICATIONFOLDER directory');
  must(/<Feature Id="ProductFeature"[^>]*>/, 'ProductFeature');
  must(/<\/Product>/, 'the end of Product');

  // The service lives in the component of the WinSW executable, as Windows Installer requires.
  wxs = wxs.replace(
    fileTag,
    (file) =>
      `${file}\n` +
      `        <ServiceInstall Id="MamoriAgentService" Name="${SERVICE}" DisplayName="Mamori Agent" Description="${attr('Mamori endpoint agent: removable media control, device ledger, logon log (守り)')}" Type="ownProcess" Start="auto" ErrorControl="normal" Account="LocalSystem" Vital="yes"/>\n` +
      `        <ServiceControl Id="MamoriAgentControl" Name="${SERVICE}" Start="install" Stop="both" Remove="uninstall" Wait="yes"/>`,
  );

  wxs = wxs.replace(
    /(<Feature Id="ProductFeature"[^>]*>)/,
    '$1\n      <ComponentRef Id="MamoriDataFolder"/>\n      <ComponentRef Id="MamoriTrayAutostart"/>',
  );

  const actions = CUSTOM_ACTIONS.map(
    (a) =>
      `    <CustomAction Id="${a.id}" Directory="${a.dir ?? 'APPLICATIONFOLDER'}" ExeCommand="${attr(a.command)}" Execute="deferred" Impersonate="no" Return="${a.check ? 'check' : 'ignore'}"${a.hideTarget ? ' HideTarget="yes"' : ''}/>`,
  ).join('\n');
  const sequence = CUSTOM_ACTIONS.map((a) => `      <Custom Action="${a.id}" After="${a.after}">${attr(a.condition)}</Custom>`).join('\n');

  const block = `
    <!-- Mamori (packaging/windows/msi-project.js): provisioning, service, data folder, tray, release -->
    <Property Id="COLLECTOR" Secure="yes"/>
    <Property Id="TOKEN" Secure="yes" Hidden="yes"/>
    <Property Id="SEGMENT" Secure="yes"/>
    <Property Id="PUBKEY" Secure="yes"/>
    <DirectoryRef Id="TARGETDIR">
      <Directory Id="CommonAppDataFolder">
        <Directory Id="MAMORIDATADIR" Name="Mamori"/>
      </Directory>
    </DirectoryRef>
    <Component Id="MamoriDataFolder" Directory="MAMORIDATADIR" Guid="${DATA_GUID}">
      <CreateFolder/>
    </Component>
    <Component Id="MamoriTrayAutostart" Directory="APPLICATIONFOLDER" Guid="${RUN_GUID}">
      <RegistryValue Root="HKLM" Key="Software\\Microsoft\\Windows\\CurrentVersion\\Run" Name="Mamori" Type="string" Value="&quot;[APPLICATIONFOLDER]Mamori.exe&quot;" KeyPath="yes"/>
    </Component>
${actions}
    <InstallExecuteSequence>
${sequence}
    </InstallExecuteSequence>
  </Product>`;
  return wxs.replace(/\s*<\/Product>/, block);
}

/** The hook: edits the project file in place. */
async function msiProjectCreated(projectFile) {
  fs.writeFileSync(projectFile, editMsiProject(fs.readFileSync(projectFile, 'utf8')));
}

module.exports = { msiProjectCreated, editMsiProject, CUSTOM_ACTIONS };
