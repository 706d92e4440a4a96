// `EvaluationLogger`: predictions and their scores logged one by one, then a summary.
'use strict';

const { weave, init, flush, report, run } = require('./common');

run(async () => {
  const client = await init();
  const ev = new weave.EvaluationLogger({
    name: 'logged-eval',
    model: { name: 'echo-model' },
    dataset: 'logged-dataset',
    scorers: ['match'],
  });
  const examples = [
    { prompt: 'a', expected: 'a' },
    { prompt: 'b', expected: 'c' },
  ];
  for (const ex of examples) {
    const pred = ev.logPrediction({ prompt: ex.prompt }, ex.prompt);
    await pred.logScore('match', ex.prompt === ex.expected);
    await pred.finish();
  }
  await ev.logSummary({ note: 'done' });
  await flush(client);
  report({ logged: examples.length });
});
