// What every scenario shares: the project from the environment, flushing the SDK's batch, and
// the one line of results the Python test reads (`RESULT {json}`).
'use strict';

const weave = require('weave');

/** Initializes the SDK on WEFT_PROJECT ("entity/project", or a bare project name). */
async function init() {
  const project = process.env.WEFT_PROJECT;
  if (!project) throw new Error('WEFT_PROJECT is not set');
  return weave.init(project);
}

/** Waits until everything the SDK queued has been sent. */
async function flush(client) {
  await client.waitForBatchProcessing();
}

/** Prints the scenario's results for the test to check. */
function report(value) {
  console.log('RESULT ' + JSON.stringify(value));
}

/** Runs `main`, exiting non-zero (with the error) if it throws. */
function run(main) {
  main().then(
    () => process.exit(0),
    err => {
      console.error(err && err.stack ? err.stack : err);
      process.exit(1);
    }
  );
}

module.exports = { weave, init, flush, report, run };
