'use strict';
// Appends events to the store given as argv[2] until killed, printing each seq once its append
// has returned (that is, once the agent would consider it committed).
const fs = require('node:fs');
const { openEventStore } = require('../../../dist/agent/store');

const store = openEventStore(process.argv[2]);
fs.writeSync(1, 'ready\n');
for (let i = 0; ; i++) {
  const e = store.append({
    type: 'login.failure',
    payload: { user: `user${i % 7}`, source: 'btmp', line: 'ssh:notty', remoteHost: '10.1.2.3', reason: 'x'.repeat(i % 300) },
  });
  fs.writeSync(1, `${e.seq}\n`);
}
