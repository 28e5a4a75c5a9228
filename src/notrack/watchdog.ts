/**
 * The rollback watchdog: a detached process (its own session, not a child
 * ctop waits for) started before the change is loaded. At the deadline it
 * claims the pending record and restores ctop's table from the backup, unless
 * `ctop notrack confirm` claimed the record first. Because it runs apart from
 * the applying ctop, a SIGKILLed ctop still gets rolled back.
 *
 * Usage: node dist/notrack/watchdog.js PENDING_FILE
 */
import { appendFileSync, existsSync, unlinkSync, writeFileSync } from 'node:fs';
import { claim, readJson, type Backup, type Pending } from './state.js';
import { nftLoad, restoreScript } from './nft.js';

const POLL_MS = 200;

function log(file: string, line: string): void {
  try {
    appendFileSync(file, `${new Date().toISOString()} watchdog ${process.pid}: ${line}\n`);
  } catch {
    /* the log is a courtesy */
  }
}

async function main(pendingFile: string): Promise<number> {
  const logFile = pendingFile.replace(/\.pending\.json$/, '.log');
  const p = readJson<Pending>(pendingFile);
  if (!p) return 0; // confirmed or reverted before we started
  // Tell the applying ctop we are watching: it loads the change only then.
  const armed = pendingFile.replace(/\.pending\.json$/, '.armed');
  writeFileSync(armed, `${process.pid}\n`);
  process.on('exit', () => {
    try {
      unlinkSync(armed);
    } catch {
      /* already gone */
    }
  });
  log(logFile, `watching; rollback at ${new Date(p.deadlineMs).toISOString()}`);
  while (Date.now() < p.deadlineMs) {
    if (!existsSync(pendingFile)) {
      log(logFile, 'confirmed or reverted; nothing to do');
      return 0;
    }
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(1, p.deadlineMs - Date.now()))));
  }
  const rollingBack = pendingFile.replace(/\.pending\.json$/, '.rollingback.json');
  if (!claim(pendingFile, rollingBack)) {
    log(logFile, 'confirmed at the deadline; nothing to do');
    return 0;
  }
  try {
    const backup = readJson<Backup>(p.backupFile);
    if (!backup) throw new Error(`backup ${p.backupFile} is missing`);
    nftLoad(restoreScript(backup.table), p.netnsPath);
    log(logFile, `not confirmed in time: restored ctop's table from ${p.backupFile}`);
    unlinkSync(rollingBack);
    return 0;
  } catch (e) {
    // Keep .rollingback.json: `ctop notrack revert` finishes the job.
    log(logFile, `ROLLBACK FAILED: ${e instanceof Error ? e.message : String(e)}; run \`ctop notrack revert\``);
    return 1;
  }
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: watchdog.js PENDING_FILE\n');
  process.exitCode = 2;
} else {
  main(file).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      log(file.replace(/\.pending\.json$/, '.log'), `crashed: ${String(e)}`);
      process.exitCode = 1;
    },
  );
}
