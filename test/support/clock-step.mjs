// Preloaded (NODE_OPTIONS=--import) into ctop's processes by a test: in the
// notrack watchdog only, the wall clock reads CTOP_TEST_CLOCK_STEP_MS later,
// as after an NTP step or `date -s`. Other processes are left alone.
const stepMs = Number(process.env.CTOP_TEST_CLOCK_STEP_MS ?? 0);
if (stepMs !== 0 && /watchdog\.js$/.test(process.argv[1] ?? '')) {
  const realNow = Date.now;
  Date.now = () => realNow() + stepMs;
}
