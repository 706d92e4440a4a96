// Traced functions: nested ops, an op that throws, a call renamed right after it returns.
'use strict';

const { weave, init, flush, report, run } = require('./common');

run(async () => {
  const client = await init();
  const add = weave.op(async function add(a, b) {
    return a + b;
  });
  const sumSquares = weave.op(async function sumSquares(xs) {
    let total = 0;
    for (const x of xs) total = await add(total, x * x);
    return total;
  });
  const fails = weave.op(async function fails(message) {
    throw new Error(message);
  });

  const total = await sumSquares([1, 2, 3]);
  let thrown = null;
  try {
    await fails('boom');
  } catch (e) {
    thrown = e.message;
  }
  // Renamed at once: the rename is sent before the batch holding the call's start.
  const [sum, call] = await add.invoke(20, 22);
  await call.setDisplayName('renamed-at-once');
  await flush(client);
  report({ total, thrown, sum, renamed_id: call.id });
});
