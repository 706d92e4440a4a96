// `Evaluation`: a model op evaluated on a published dataset with two scorers.
'use strict';

const { weave, init, flush, report, run } = require('./common');

run(async () => {
  const client = await init();
  const dataset = new weave.Dataset({
    name: 'sums',
    rows: [
      { q: '1+1', a: '2' },
      { q: '2+2', a: '5' },
      { q: '3+4', a: '7' },
    ],
  });
  const adder = weave.op(async function adder({ datasetRow }) {
    return String(datasetRow.q.split('+').reduce((s, x) => s + Number(x), 0));
  });
  const exact = weave.op(function exact({ modelOutput, datasetRow }) {
    return modelOutput === datasetRow.a;
  });
  const closeness = weave.op(function closeness({ modelOutput, datasetRow }) {
    return { diff: Math.abs(Number(modelOutput) - Number(datasetRow.a)) };
  });
  const evaluation = new weave.Evaluation({
    name: 'sums-eval',
    dataset,
    scorers: [exact, closeness],
  });
  const summary = await evaluation.evaluate({ model: adder, maxConcurrency: 2 });
  await flush(client);
  report({ summary });
});
